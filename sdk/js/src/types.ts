/** Public types of the linkgen SDK. */

/** What the SDK may send: `full` every identifier the app supplies; `reduced` the install id,
 * the install referrer, the Customer User ID and the deep-link URL, never an advertising or
 * vendor id (idfa, gaid, idfv); `none` nothing at all (no request leaves the device). */
export type Consent = "full" | "reduced" | "none";

/** An AsyncStorage-like key/value store (React Native's AsyncStorage, `window.localStorage`
 * and `MemoryStorage` all fit). Calls may be synchronous or return promises. */
export interface StorageAdapter {
  getItem(key: string): Promise<string | null> | string | null;
  setItem(key: string, value: string): Promise<void> | void;
  removeItem?(key: string): Promise<void> | void;
}

/** The device the app runs on. `os` is sent only when it is `ios` or `android`. */
export interface PlatformInfo {
  os?: "ios" | "android" | string;
  osVersion?: string;
  appVersion?: string;
  userAgent?: string;
}

/** Device identifiers the app is allowed to read (leave out what it may not). */
export interface DeviceIds {
  idfa?: string | null;
  idfv?: string | null;
  gaid?: string | null;
}

export type Provider<T> = T | (() => T | Promise<T>);

/** Timers the SDK schedules retries with (tests pass fakes). */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export type FetchLike = (
  input: string,
  init: { method: string; headers: Record<string, string>; body: string; signal?: AbortSignal },
) => Promise<{
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}>;

export interface InitOptions {
  /** Where linkgen answers, e.g. `https://go.example.com` (no trailing `/api/v1`). */
  baseUrl: string;
  /** The app id as created in linkgen: `com.example.shop` or `id123456789`. */
  appId: string;
  /** The app's SDK key (app page in linkgen's web UI, or `sdk_key` of `POST /api/v1/apps`). */
  sdkKey: string;
  storage: StorageAdapter;
  platform?: PlatformInfo;
  /** The raw Play Install Referrer string (Android), e.g. from `playInstallReferrer(...)`. */
  installReferrer?: () => Promise<string | null | undefined> | string | null | undefined;
  deviceIds?: Provider<DeviceIds | null | undefined>;
  consent?: Consent;
  fetch?: FetchLike;
  clock?: Clock;
  /** Most requests kept while offline (oldest events dropped first); default 1000. */
  maxQueueSize?: number;
  /** Timeout of one request in ms; default 10000. */
  requestTimeoutMs?: number;
  /** First retry delay in ms (doubles each attempt); default 1000. */
  retryBaseMs?: number;
  /** Longest retry delay in ms; default 300000 (5 minutes). */
  retryMaxMs?: number;
  /** How long to wait for the install referrer in ms; default 3000. */
  installReferrerTimeoutMs?: number;
  random?: () => number;
  /** Called with every launch answer (also those delivered after a retry). */
  onLaunch?: (answer: LaunchAnswer) => void;
  /** Called when linkgen refused a request (4xx other than 429): it is not retried. */
  onError?: (error: LinkgenError) => void;
}

export interface Attribution {
  is_organic: boolean;
  media_source: string | null;
  campaign: string | null;
  channel: string | null;
  match_type: string | null;
  click_id: string | null;
  click_time: string | null;
  link_id: string | null;
}

export interface DeepLink {
  status: "FOUND" | "NOT_FOUND";
  deep_link_value?: string;
  [key: string]: string | undefined;
}

export interface LaunchAnswer {
  launch_id: string;
  type: "install" | "reinstall" | "reattribution" | "reengagement" | "open";
  attribution: Attribution;
  deep_link: DeepLink;
}

export interface StartResult {
  /** `sent`: linkgen answered; `queued`: offline or failing, retried later (see `onLaunch`);
   * `refused`: linkgen refused it (4xx other than 429; see `onError`), not retried;
   * `skipped`: consent is `none`. */
  status: Delivery;
  firstLaunch: boolean;
  answer: LaunchAnswer | null;
  /** The deferred deep link (first launch) or the link the launch reports. */
  deepLink: DeepLink;
}

export type Delivery = "sent" | "queued" | "refused" | "skipped";

export interface OpenResult {
  status: Delivery;
  url: string;
  /** From linkgen's answer when it came, else read from the URL itself. */
  deepLink: DeepLink;
  answer: LaunchAnswer | null;
}

export interface EventReceipt {
  eventId: string;
  status: Delivery;
}

export class LinkgenError extends Error {
  readonly status: number;
  readonly code: string | null;
  readonly field: string | null;
  readonly path: string;

  constructor(status: number, path: string, code: string | null, message: string, field: string | null) {
    super(message);
    this.name = "LinkgenError";
    this.status = status;
    this.path = path;
    this.code = code;
    this.field = field;
  }
}
