/** linkgen SDK: install attribution, deferred deep links, opens and in-app events. */

export { init, LinkgenClient, type FlushResult } from "./client.js";
export { MemoryStorage } from "./storage.js";
export { newId } from "./ids.js";
export { classify, backoffDelay, retryDelay, parseRetryAfter, type Outcome } from "./backoff.js";
export { applyConsent, CONSENT_LEVELS, REDUCED_DROPS } from "./consent.js";
export { deepLinkFromUrl, openedUrl, queryParams, referrerFromPlayUrl, DEEP_LINK_KEYS } from "./urls.js";
export { PersistentQueue, type QueueItem, type ItemKind } from "./queue.js";
export { SDK_NAME, SDK_VERSION } from "./version.js";
export * from "./types.js";
