import assert from "node:assert/strict";
import { test } from "node:test";
import { backoffDelay, classify, parseRetryAfter, retryDelay } from "../../dist/index.js";

test("2xx is done, 429 and 5xx are retried, every other 4xx is refused", () => {
  const now = 0;
  assert.equal(classify(200, null, now).kind, "done");
  assert.equal(classify(201, null, now).kind, "done");
  for (const s of [429, 500, 502, 503, 504]) assert.equal(classify(s, null, now).kind, "retry", String(s));
  for (const s of [400, 401, 403, 404, 408, 409, 413, 422]) assert.equal(classify(s, null, now).kind, "refused", String(s));
});

test("Retry-After is read as seconds or as an HTTP date", () => {
  const now = Date.parse("2026-12-02T10:00:00Z");
  assert.equal(parseRetryAfter("7", now), 7000);
  assert.equal(parseRetryAfter("Wed, 02 Dec 2026 10:00:30 GMT", now), 30_000);
  assert.equal(parseRetryAfter("soon", now), null);
  assert.equal(parseRetryAfter(null, now), null);
  assert.deepEqual(classify(429, "12", now), { kind: "retry", retryAfterMs: 12_000 });
});

test("backoff doubles from the base up to the cap, with jitter in [half, full]", () => {
  const mid = () => 0.5;
  assert.equal(backoffDelay(1, 1000, 300_000, mid), 750);
  assert.equal(backoffDelay(2, 1000, 300_000, mid), 1500);
  assert.equal(backoffDelay(3, 1000, 300_000, mid), 3000);
  assert.equal(backoffDelay(30, 1000, 300_000, mid), 225_000);
  assert.equal(backoffDelay(3, 1000, 300_000, () => 0), 2000);
  assert.equal(backoffDelay(3, 1000, 300_000, () => 1), 4000);
});

test("a longer Retry-After wins over the backoff, capped at an hour", () => {
  assert.equal(retryDelay(1, 60_000, 1000, 300_000, () => 0.5), 60_000);
  assert.equal(retryDelay(5, 10, 1000, 300_000, () => 0.5), 12_000);
  assert.equal(retryDelay(1, 10 * 3_600_000, 1000, 300_000, () => 0.5), 3_600_000);
});
