// Fakes for the unit tests: a fetch that answers from a script, and a clock moved by hand.
import { init, MemoryStorage } from "../../dist/index.js";

export class FakeClock {
  constructor(start = Date.parse("2026-12-02T10:00:00Z")) {
    this.t = start;
    this.timers = [];
  }
  now() {
    return this.t;
  }
  setTimeout(fn, ms) {
    const timer = { fn, at: this.t + ms };
    this.timers.push(timer);
    return timer;
  }
  clearTimeout(handle) {
    this.timers = this.timers.filter((t) => t !== handle);
  }
  /** The delay of the latest retry timer (request timeouts are cleared once answered). */
  pendingDelays() {
    return this.timers.map((t) => t.at - this.t);
  }
  advance(ms) {
    this.t += ms;
  }
}

/** A fetch answering each request with the next scripted reply: a status number, an object
 * {status, body, headers}, or "network" (throws). Records every request. */
export function fakeFetch(script = []) {
  const requests = [];
  const fetch = async (url, init) => {
    const body = JSON.parse(init.body);
    requests.push({ url, headers: init.headers, body });
    let reply = script.length ? script.shift() : 200;
    if (reply === "network") throw new TypeError("fetch failed");
    if (typeof reply === "number") reply = { status: reply };
    const status = reply.status;
    const answer =
      reply.body ??
      (status < 300
        ? url.endsWith("/events")
          ? { event_id: body.event_id, event_name: body.event_name, attribution: null }
          : {
              launch_id: "ln_1",
              type: body.first_launch ? "install" : "open",
              attribution: { is_organic: true },
              deep_link: { status: "NOT_FOUND" },
            }
        : { error: { code: "invalid_parameter", message: "bad", field: "device_id" } });
    const headers = reply.headers ?? {};
    return {
      status,
      headers: { get: (name) => headers[name] ?? headers[name.toLowerCase()] ?? null },
      text: async () => JSON.stringify(answer),
    };
  };
  return { fetch, requests };
}

export function makeClient(overrides = {}) {
  const clock = overrides.clock ?? new FakeClock();
  const storage = overrides.storage ?? new MemoryStorage();
  const { fetch, requests } = overrides.fake ?? fakeFetch(overrides.script ?? []);
  const client = init({
    baseUrl: "https://go.example.com/",
    appId: "com.example.shop",
    sdkKey: "sdk_test",
    storage,
    fetch,
    clock,
    random: () => 0.5,
    ...overrides.options,
  });
  return { client, clock, storage, requests };
}
