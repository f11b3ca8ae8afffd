/** The SDK's name and version, sent as `sdk` on launches. */
export const SDK_VERSION = "0.1.0";
export const SDK_NAME = `linkgen-js/${SDK_VERSION}`;
