/** The SDK client: launches, opens, events, consent, and the queue that delivers them. */

import { classify, retryDelay } from "./backoff.js";
import { applyConsent, isConsent } from "./consent.js";
import { newId } from "./ids.js";
import { PersistentQueue, type QueueItem } from "./queue.js";
import { deepLinkFromUrl, openedUrl } from "./urls.js";
import { SDK_NAME } from "./version.js";
import {
  LinkgenError,
  type Clock,
  type Consent,
  type DeepLink,
  type DeviceIds,
  type EventReceipt,
  type FetchLike,
  type InitOptions,
  type LaunchAnswer,
  type OpenResult,
  type StartResult,
} from "./types.js";

const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const handle = setTimeout(fn, ms) as unknown as { unref?: () => void };
    handle.unref?.(); // never keep a Node process alive just for a retry
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

type Sent =
  | { kind: "answer"; status: number; body: unknown }
  | { kind: "refused"; error: LinkgenError }
  | { kind: "retry" };

export interface FlushResult {
  sent: number;
  refused: number;
  pending: number;
}

const NOT_FOUND: DeepLink = { status: "NOT_FOUND" };

// Milliseconds kept: the click-injection rule compares click and install to the 10 s.
function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function delivery(sent: Sent | undefined): "sent" | "queued" | "refused" {
  if (sent === undefined) return "queued";
  return sent.kind === "answer" ? "sent" : sent.kind === "refused" ? "refused" : "queued";
}

function validOs(os: unknown): os is "ios" | "android" {
  return os === "ios" || os === "android";
}

function trimmed(value: unknown, max: number): string | undefined {
  if (typeof value !== "string") return undefined;
  const text = value.trim();
  return text && text.length <= max ? text : undefined;
}

/** One app's connection to linkgen. Create it with `init`. */
export class LinkgenClient {
  private readonly options: InitOptions;
  private readonly fetchImpl: FetchLike;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly prefix: string;
  private readonly queue: PersistentQueue;
  private loaded: Promise<void> | null = null;
  private chain: Promise<FlushResult> = Promise.resolve({ sent: 0, refused: 0, pending: 0 });
  private timer: unknown = null;
  private readonly answers = new Map<string, Sent>();
  private deviceId: string | null = null;
  private customerUserId: string | null = null;
  private consent: Consent;
  private firstLaunchSent = false;
  private closed = false;

  constructor(options: InitOptions) {
    for (const name of ["baseUrl", "appId", "sdkKey"] as const) {
      if (typeof options[name] !== "string" || !options[name].trim()) {
        throw new TypeError(`init: ${name} is required`);
      }
    }
    if (!options.storage || typeof options.storage.getItem !== "function") {
      throw new TypeError("init: storage (getItem/setItem) is required");
    }
    if (options.consent !== undefined && !isConsent(options.consent)) {
      throw new TypeError("init: consent must be full, reduced or none");
    }
    const fetchImpl = options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
    if (!fetchImpl) throw new TypeError("init: no fetch on this platform; pass options.fetch");
    this.options = { ...options, baseUrl: options.baseUrl.replace(/\/+$/, "") };
    this.fetchImpl = fetchImpl;
    this.clock = options.clock ?? realClock;
    this.random = options.random ?? Math.random;
    this.prefix = `linkgen:${options.appId}:`;
    this.queue = new PersistentQueue(options.storage, `${this.prefix}queue`, options.maxQueueSize ?? 1000);
    this.consent = options.consent ?? "full";
  }

  // ---- state ---------------------------------------------------------------------------------

  private ready(): Promise<void> {
    if (!this.loaded) this.loaded = this.load();
    return this.loaded;
  }

  private async load(): Promise<void> {
    const s = this.options.storage;
    await this.queue.load();
    this.deviceId = await s.getItem(`${this.prefix}device_id`);
    if (!this.deviceId) {
      this.deviceId = newId(this.random);
      await s.setItem(`${this.prefix}device_id`, this.deviceId);
    }
    this.customerUserId = await s.getItem(`${this.prefix}customer_user_id`);
    this.firstLaunchSent = (await s.getItem(`${this.prefix}first_launch`)) === "sent";
    const saved = await s.getItem(`${this.prefix}consent`);
    if (this.options.consent === undefined && isConsent(saved)) this.consent = saved;
  }

  /** The install id sent as `device_id`: made once, kept in storage, new after a reinstall. */
  async getDeviceId(): Promise<string> {
    await this.ready();
    return this.deviceId as string;
  }

  /** The number of requests waiting to be sent. */
  async pendingCount(): Promise<number> {
    await this.ready();
    return this.queue.items.length;
  }

  /** Set the Customer User ID: the CleverTap ID (or `identity`) of the user, so postbacks can
   * name the CleverTap profile. Sent with every launch and event from now on. */
  async setCustomerUserId(id: string | null): Promise<void> {
    await this.ready();
    const value = id == null ? null : trimmed(id, 200);
    if (id != null && value === undefined) throw new TypeError("setCustomerUserId: 1 to 200 characters");
    this.customerUserId = value ?? null;
    const s = this.options.storage;
    if (this.customerUserId) await s.setItem(`${this.prefix}customer_user_id`, this.customerUserId);
    else if (s.removeItem) await s.removeItem(`${this.prefix}customer_user_id`);
    else await s.setItem(`${this.prefix}customer_user_id`, "");
  }

  /** Change the consent level. Lowering it applies to requests already queued too: `none`
   * drops them, `reduced` sends them without advertising and vendor ids. */
  async setConsent(level: Consent): Promise<void> {
    if (!isConsent(level)) throw new TypeError("setConsent: full, reduced or none");
    await this.ready();
    this.consent = level;
    await this.options.storage.setItem(`${this.prefix}consent`, level);
    if (level === "none") await this.queue.clear();
    else if (level === "reduced") {
      for (const item of this.queue.items) item.body = applyConsent("reduced", item.body) ?? {};
      await this.queue.save();
    }
  }

  getConsent(): Consent {
    return this.consent;
  }

  // ---- calls ---------------------------------------------------------------------------------

  /** Report this app start. The first start after an install sends `first_launch: true` with
   * the install referrer; its answer carries the deferred deep link. */
  async start(): Promise<StartResult> {
    await this.ready();
    const firstLaunch = !this.firstLaunchSent;
    if (this.consent === "none") {
      return { status: "skipped", firstLaunch, answer: null, deepLink: NOT_FOUND };
    }
    // A first launch already waiting in the queue (sent before, answer not yet seen) is the
    // one to deliver: a second copy would carry the same device_id and mean the same thing.
    let item = this.queue.items.find((i) => i.kind === "first_launch");
    if (!item) {
      const body = await this.launchBody(firstLaunch, null);
      if (firstLaunch) body.install_referrer = await this.installReferrer();
      item = this.item(firstLaunch ? "first_launch" : "launch", "launches", body);
      await this.enqueue(item);
    }
    await this.flush();
    const sent = this.take(item.id);
    const answer = sent?.kind === "answer" ? (sent.body as LaunchAnswer) : null;
    return {
      status: delivery(sent),
      firstLaunch,
      answer,
      deepLink: answer?.deep_link ?? NOT_FOUND,
    };
  }

  /** Report an open from a Universal Link, App Link, custom scheme or push (`wzrk_dl`, or the
   * push payload itself) and return its deep-link values: linkgen's when it answered, else
   * those the URL carries. */
  async handleOpen(input: string | { wzrk_dl?: unknown; url?: unknown }): Promise<OpenResult> {
    const url = openedUrl(input);
    if (!url) throw new TypeError("handleOpen: a URL or a push payload with wzrk_dl");
    await this.ready();
    const local = deepLinkFromUrl(url);
    if (this.consent === "none") return { status: "skipped", url, deepLink: local, answer: null };
    // Opened from a link before the first launch went out (a cold start from an App Link
    // right after the install): the URL rides on the first launch, with the referrer.
    const first = !this.firstLaunchSent && !this.queue.has("first_launch");
    const body = await this.launchBody(first, url);
    if (first) body.install_referrer = await this.installReferrer();
    const item = this.item(first ? "first_launch" : "open", "launches", body);
    await this.enqueue(item);
    await this.flush();
    const sent = this.take(item.id);
    const answer = sent?.kind === "answer" ? (sent.body as LaunchAnswer) : null;
    const deepLink = answer && answer.deep_link.status === "FOUND" ? answer.deep_link : local;
    return { status: delivery(sent), url, deepLink, answer };
  }

  /** Log an in-app event (`af_purchase` with `af_revenue` and `af_currency` becomes CleverTap's
   * `Charged` when the integration maps it). The event id makes retries safe: linkgen stores
   * and reports an event id once. One is generated when none is given. */
  async logEvent(
    name: string,
    values: Record<string, unknown> = {},
    options: { eventId?: string } = {},
  ): Promise<EventReceipt> {
    const eventName = trimmed(name, 200);
    if (!eventName) throw new TypeError("logEvent: name is 1 to 200 characters");
    if (typeof values !== "object" || values === null || Array.isArray(values)) {
      throw new TypeError("logEvent: values must be an object");
    }
    const eventId = options.eventId === undefined ? newId(this.random) : trimmed(options.eventId, 200);
    if (!eventId) throw new TypeError("logEvent: eventId is 1 to 200 characters");
    await this.ready();
    if (this.consent === "none") return { eventId, status: "skipped" };
    const body: Record<string, unknown> = {
      event_id: eventId,
      device_id: this.deviceId,
      customer_user_id: this.customerUserId || undefined,
      event_name: eventName,
      event_values: { ...values },
      ts: iso(this.clock.now()),
    };
    const item = { ...this.item("event", "events", body), id: eventId };
    await this.enqueue(item);
    await this.flush();
    const sent = this.take(eventId);
    return { eventId, status: delivery(sent) };
  }

  /** Send what is due now; later retries run on their own timer. */
  flush(): Promise<FlushResult> {
    this.chain = this.chain.then(
      () => this.flushOnce(),
      () => this.flushOnce(),
    );
    return this.chain;
  }

  /** Stop the retry timer (the queue stays saved for the next start). */
  close(): void {
    this.closed = true;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  // ---- internals -----------------------------------------------------------------------------

  private item(kind: QueueItem["kind"], path: QueueItem["path"], body: Record<string, unknown>): QueueItem {
    return { id: newId(this.random), kind, path, body, attempts: 0, nextAt: 0 };
  }

  private async enqueue(item: QueueItem): Promise<void> {
    const consented = applyConsent(this.consent, item.body);
    if (!consented) return;
    item.body = consented; // what is stored is what may be sent
    await this.queue.add(item);
  }

  private take(id: string): Sent | undefined {
    const sent = this.answers.get(id);
    this.answers.delete(id);
    return sent;
  }

  private async launchBody(firstLaunch: boolean, deepLinkUrl: string | null): Promise<Record<string, unknown>> {
    const platform = this.options.platform ?? {};
    const ids = await this.deviceIds();
    return {
      device_id: this.deviceId,
      customer_user_id: this.customerUserId || undefined,
      first_launch: firstLaunch,
      deep_link_url: deepLinkUrl ?? undefined,
      idfa: trimmed(ids.idfa, 64),
      idfv: trimmed(ids.idfv, 64),
      gaid: trimmed(ids.gaid, 64),
      user_agent: trimmed(platform.userAgent, 1000),
      os: validOs(platform.os) ? platform.os : undefined,
      os_version: trimmed(platform.osVersion, 32),
      app_version: trimmed(platform.appVersion, 64),
      sdk: SDK_NAME,
      ts: iso(this.clock.now()),
    };
  }

  private async deviceIds(): Promise<DeviceIds> {
    const provider = this.options.deviceIds;
    if (!provider) return {};
    try {
      const ids = typeof provider === "function" ? await provider() : provider;
      return ids ?? {};
    } catch {
      return {}; // an id the platform refused to give is an id not sent
    }
  }

  private async installReferrer(): Promise<string | undefined> {
    const get = this.options.installReferrer;
    if (!get) return undefined;
    const timeoutMs = this.options.installReferrerTimeoutMs ?? 3000;
    let handle: unknown = null;
    try {
      const timeout = new Promise<undefined>((resolve) => {
        handle = this.clock.setTimeout(() => resolve(undefined), timeoutMs);
      });
      const value = await Promise.race([Promise.resolve(get()), timeout]);
      return trimmed(value ?? undefined, 2000);
    } catch {
      return undefined; // no Play Store, or the referrer service is unavailable
    } finally {
      if (handle !== null) this.clock.clearTimeout(handle);
    }
  }

  private async flushOnce(): Promise<FlushResult> {
    await this.ready();
    const result: FlushResult = { sent: 0, refused: 0, pending: 0 };
    while (this.queue.items.length > 0 && !this.closed) {
      const item = this.queue.items[0];
      const now = this.clock.now();
      if (item.nextAt > now) {
        this.schedule(item.nextAt - now);
        break;
      }
      const body = applyConsent(this.consent, item.body);
      if (!body) {
        await this.queue.remove(item.id);
        continue;
      }
      const sent = await this.send(item, body);
      if (sent.kind === "retry") {
        item.attempts += 1;
        await this.queue.save();
        this.schedule(item.nextAt - this.clock.now());
        break;
      }
      if (sent.kind === "refused" && sent.error.field === "ts" && "ts" in item.body) {
        // The device clock is far off (ts over 5 min ahead or a year back): the same request
        // without ts is stamped by linkgen's clock instead of being lost.
        delete item.body.ts;
        await this.queue.save();
        continue;
      }
      // Answered (or refused for good): off the queue before anything else is sent, so no
      // request is ever sent again after linkgen has answered it.
      await this.queue.remove(item.id);
      this.answers.set(item.id, sent);
      if (sent.kind === "answer") {
        result.sent += 1;
        if (item.kind === "first_launch") await this.markFirstLaunchSent();
        if (item.path === "launches") this.options.onLaunch?.(sent.body as LaunchAnswer);
      } else {
        // A refused first launch (bad key, bad field) is not marked sent: the next start
        // tries again with what the app fixed.
        result.refused += 1;
        this.options.onError?.(sent.error);
      }
    }
    result.pending = this.queue.items.length;
    return result;
  }

  private async markFirstLaunchSent(): Promise<void> {
    this.firstLaunchSent = true;
    await this.options.storage.setItem(`${this.prefix}first_launch`, "sent");
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, Math.max(0, ms));
  }

  private async send(item: QueueItem, body: Record<string, unknown>): Promise<Sent> {
    const path = `/api/v1/sdk/${encodeURIComponent(this.options.appId)}/${item.path}`;
    const base = this.options.retryBaseMs ?? 1000;
    const max = this.options.retryMaxMs ?? 300_000;
    const retryIn = (retryAfterMs: number | null): Sent => {
      item.nextAt = this.clock.now() + retryDelay(item.attempts + 1, retryAfterMs, base, max, this.random);
      return { kind: "retry" };
    };
    const controller = typeof AbortController === "function" ? new AbortController() : null;
    const timer = controller
      ? this.clock.setTimeout(() => controller.abort(), this.options.requestTimeoutMs ?? 10_000)
      : null;
    let status: number;
    let text: string;
    let retryAfter: string | null;
    try {
      const response = await this.fetchImpl(this.options.baseUrl + path, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "X-SDK-Key": this.options.sdkKey,
        },
        body: JSON.stringify(body),
        ...(controller ? { signal: controller.signal } : {}),
      });
      status = response.status;
      retryAfter = response.headers.get("Retry-After");
      text = await response.text();
    } catch {
      return retryIn(null); // network error or timeout: the request may or may not have landed
    } finally {
      if (timer !== null) this.clock.clearTimeout(timer);
    }
    const outcome = classify(status, retryAfter, this.clock.now());
    if (outcome.kind === "retry") return retryIn(outcome.retryAfterMs);
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    if (outcome.kind === "done") return { kind: "answer", status, body: parsed };
    const err = (parsed as { error?: { code?: string; message?: string; field?: string } } | null)?.error;
    return {
      kind: "refused",
      error: new LinkgenError(
        status,
        path,
        err?.code ?? null,
        err?.message ?? `linkgen answered ${status}`,
        err?.field ?? null,
      ),
    };
  }
}

/** Create the client for one app (call once, at app start). */
export function init(options: InitOptions): LinkgenClient {
  return new LinkgenClient(options);
}
