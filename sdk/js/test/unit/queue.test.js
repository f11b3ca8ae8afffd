import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryStorage } from "../../dist/index.js";
import { FakeClock, fakeFetch, makeClient } from "./helpers.js";

test("a network error keeps the event queued and retries it after the backoff", async () => {
  const { client, clock, requests } = makeClient({ script: ["network", 201] });
  const receipt = await client.logEvent("af_purchase", {});
  assert.equal(receipt.status, "queued");
  assert.equal(await client.pendingCount(), 1);
  assert.deepEqual(clock.pendingDelays(), [750]);
  clock.advance(749);
  await client.flush();
  assert.equal(requests.length, 1, "not before its time");
  clock.advance(1);
  const result = await client.flush();
  assert.deepEqual(result, { sent: 1, refused: 0, pending: 0 });
  assert.deepEqual(requests.map((r) => r.body.event_id), [receipt.eventId, receipt.eventId]);
});

test("5xx backs off exponentially; 429 waits for Retry-After", async () => {
  const { client, clock, requests } = makeClient({
    script: [503, 500, { status: 429, headers: { "Retry-After": "30" } }, 201],
  });
  await client.logEvent("af_level", {});
  assert.deepEqual(clock.pendingDelays(), [750]);
  clock.advance(750);
  await client.flush();
  assert.deepEqual(clock.pendingDelays(), [1500]);
  clock.advance(1500);
  await client.flush();
  assert.deepEqual(clock.pendingDelays(), [30_000]);
  clock.advance(30_000);
  await client.flush();
  assert.equal(requests.length, 4);
  assert.equal(await client.pendingCount(), 0);
  assert.equal(new Set(requests.map((r) => r.body.event_id)).size, 1);
});

test("a 4xx is never retried: the request is dropped and onError told", async () => {
  const errors = [];
  const { client, clock, requests } = makeClient({
    script: [{ status: 400, body: { error: { code: "invalid_parameter", message: "bad revenue", field: "event_values.af_revenue" } } }, 201],
    options: { onError: (e) => errors.push(e) },
  });
  const receipt = await client.logEvent("af_purchase", {});
  assert.equal(receipt.status, "refused");
  assert.equal(await client.pendingCount(), 0);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].status, 400);
  assert.equal(errors[0].field, "event_values.af_revenue");
  assert.equal(errors[0].code, "invalid_parameter");
  assert.deepEqual(clock.pendingDelays(), []);
  clock.advance(3_600_000);
  await client.flush();
  assert.equal(requests.length, 1);
});

test("the event_id rule: a 200 for a repeat counts as delivered", async () => {
  const { client, requests } = makeClient({ script: [200] });
  const receipt = await client.logEvent("af_purchase", {}, { eventId: "order-1" });
  assert.equal(receipt.status, "sent");
  assert.equal(requests.length, 1);
  assert.equal(await client.pendingCount(), 0);
});

test("order is kept: nothing overtakes a request being retried", async () => {
  const { client, clock, requests } = makeClient({ script: ["network", 201, 201, 201] });
  await client.logEvent("e1", {}, { eventId: "1" });
  await client.logEvent("e2", {}, { eventId: "2" });
  await client.logEvent("e3", {}, { eventId: "3" });
  assert.deepEqual(requests.map((r) => r.body.event_id), ["1"]);
  clock.advance(750);
  await client.flush();
  assert.deepEqual(requests.map((r) => r.body.event_id), ["1", "1", "2", "3"]);
});

test("concurrent flushes send each request once", async () => {
  const clock = new FakeClock();
  const inner = fakeFetch([]);
  let release;
  const gate = new Promise((r) => (release = r));
  const slow = async (url, init) => {
    await gate;
    return inner.fetch(url, init);
  };
  const { client } = makeClient({ clock, fake: { fetch: slow, requests: inner.requests } });
  const pending = [client.logEvent("a", {}, { eventId: "a" }), client.logEvent("b", {}, { eventId: "b" })];
  const flushes = [client.flush(), client.flush(), client.flush()];
  release();
  await Promise.all([...pending, ...flushes]);
  assert.deepEqual(inner.requests.map((r) => r.body.event_id).sort(), ["a", "b"]);
});

test("the queue survives a restart and is sent, with the same event ids, by the next client", async () => {
  const storage = new MemoryStorage();
  const offline = makeClient({ storage, script: ["network", "network"] });
  const a = await offline.client.logEvent("af_purchase", { af_revenue: "1.50" });
  const b = await offline.client.logEvent("af_level", {});
  offline.client.close();
  const online = makeClient({ storage });
  assert.equal(await online.client.pendingCount(), 2);
  const result = await online.client.flush();
  assert.equal(result.sent, 2);
  assert.deepEqual(online.requests.map((r) => r.body.event_id), [a.eventId, b.eventId]);
  assert.equal(online.requests[0].body.event_values.af_revenue, "1.50");
  const again = makeClient({ storage });
  assert.equal(await again.client.pendingCount(), 0);
});

test("the queue is bounded: the oldest events go first, the first launch stays", async () => {
  const dead = Array.from({ length: 20 }, () => "network");
  const { client } = makeClient({ script: dead, options: { maxQueueSize: 3 } });
  await client.start();
  for (const id of ["1", "2", "3", "4"]) await client.logEvent("e", {}, { eventId: id });
  assert.equal(await client.pendingCount(), 3);
  const storage = client.options.storage;
  const saved = JSON.parse(storage.getItem("linkgen:com.example.shop:queue"));
  assert.deepEqual(saved.map((i) => i.kind === "event" ? i.id : i.kind), ["first_launch", "3", "4"]);
});

test("an unreadable saved queue starts afresh", async () => {
  const storage = new MemoryStorage();
  storage.setItem("linkgen:com.example.shop:queue", "{not json");
  const { client } = makeClient({ storage });
  assert.equal(await client.pendingCount(), 0);
  await client.logEvent("e", {});
  assert.equal(await client.pendingCount(), 0);
});

test("a ts refused as out of range (device clock far off) is resent once without ts", async () => {
  const tsError = { status: 400, body: { error: { code: "invalid_parameter", message: "future", field: "ts" } } };
  const errors = [];
  const { client, requests } = makeClient({ script: [tsError, 201], options: { onError: (e) => errors.push(e) } });
  const receipt = await client.logEvent("af_purchase", {}, { eventId: "e-ts" });
  assert.equal(receipt.status, "sent");
  assert.equal(requests.length, 2);
  assert.equal(typeof requests[0].body.ts, "string");
  assert.equal("ts" in requests[1].body, false);
  assert.equal(requests[1].body.event_id, "e-ts");
  assert.deepEqual(errors, []);
});

test("a second ts refusal, or any other 400, is final", async () => {
  const tsError = { status: 400, body: { error: { code: "invalid_parameter", message: "bad", field: "ts" } } };
  const { client, requests } = makeClient({ script: [tsError, tsError, 201] });
  const receipt = await client.logEvent("af_purchase", {});
  assert.equal(receipt.status, "refused");
  assert.equal(requests.length, 2);
  assert.equal(await client.pendingCount(), 0);
});
