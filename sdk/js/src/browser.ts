/** Browser entry point: the SDK plus `window.localStorage` and the page's own details. */

import type { PlatformInfo, StorageAdapter } from "./types.js";

export * from "./index.js";

/** `window.localStorage` as the SDK's storage (it already has the right shape). */
export function localStorageAdapter(storage: StorageAdapter = (globalThis as { localStorage?: StorageAdapter }).localStorage as StorageAdapter): StorageAdapter {
  if (!storage) throw new TypeError("localStorageAdapter: no localStorage here");
  return storage;
}

/** A browser sends no `os`: linkgen reads the platform from the request's user agent. */
export function browserPlatform(appVersion?: string): PlatformInfo {
  return appVersion ? { appVersion } : {};
}
