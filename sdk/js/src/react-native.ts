/** React Native entry point: the SDK plus adapters for the usual React Native modules. The
 * modules are passed in, so the SDK itself depends on none of them. */

import type { PlatformInfo } from "./types.js";

export * from "./index.js";

/** The shape of `react-native-play-install-referrer`'s `PlayInstallReferrer`. */
export interface PlayInstallReferrerModule {
  getInstallReferrerInfo(
    callback: (info: { installReferrer?: string | null } | null, error: unknown) => void,
  ): void;
}

/** An `installReferrer` function for `init` from `react-native-play-install-referrer`: the raw
 * referrer string (`af_tranid=...&pid=...`), or null when there is none (iOS, no Play Store). */
export function playInstallReferrer(module: PlayInstallReferrerModule): () => Promise<string | null> {
  return () =>
    new Promise((resolve) => {
      try {
        module.getInstallReferrerInfo((info, error) => {
          resolve(error || !info?.installReferrer ? null : info.installReferrer);
        });
      } catch {
        resolve(null);
      }
    });
}

/** The shape of React Native's `Platform`. */
export interface ReactNativePlatform {
  OS: string;
  Version: string | number;
  constants?: { Release?: string; osVersion?: string };
}

/** `platform` for `init` from React Native's `Platform`: on Android `Platform.Version` is the API
 * level (34), so the OS version comes from `Platform.constants.Release` ("14"). */
export function platformFromReactNative(platform: ReactNativePlatform, appVersion?: string): PlatformInfo {
  const osVersion =
    platform.OS === "android"
      ? platform.constants?.Release
      : platform.constants?.osVersion ?? String(platform.Version);
  const info: PlatformInfo = { os: platform.OS };
  if (osVersion) info.osVersion = String(osVersion);
  if (appVersion) info.appVersion = appVersion;
  return info;
}
