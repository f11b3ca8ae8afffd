import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryStorage, newId } from "../../dist/index.js";
import { makeClient } from "./helpers.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test("ids are v4 UUIDs, with and without crypto.randomUUID", () => {
  assert.match(newId(), UUID);
  const saved = Object.getOwnPropertyDescriptor(globalThis, "crypto");
  Object.defineProperty(globalThis, "crypto", { value: undefined, configurable: true });
  try {
    const seen = new Set(Array.from({ length: 50 }, () => newId()));
    assert.equal(seen.size, 50);
    for (const id of seen) assert.match(id, UUID);
  } finally {
    Object.defineProperty(globalThis, "crypto", saved);
  }
});

test("the device id is made once and kept in storage", async () => {
  const storage = new MemoryStorage();
  const a = makeClient({ storage }).client;
  const first = await a.getDeviceId();
  assert.match(first, UUID);
  const b = makeClient({ storage }).client;
  assert.equal(await b.getDeviceId(), first);
  const other = makeClient({}).client;
  assert.notEqual(await other.getDeviceId(), first);
});

test("logEvent generates an event id when none is given and keeps a given one", async () => {
  const { client, requests } = makeClient();
  const made = await client.logEvent("af_purchase", { af_revenue: 9.99, af_currency: "USD" });
  assert.match(made.eventId, UUID);
  assert.equal(made.status, "sent");
  const given = await client.logEvent("af_purchase", {}, { eventId: "order-42" });
  assert.equal(given.eventId, "order-42");
  assert.deepEqual(requests.map((r) => r.body.event_id), [made.eventId, "order-42"]);
  const body = requests[0].body;
  assert.equal(body.event_name, "af_purchase");
  assert.equal(body.device_id, await client.getDeviceId());
  assert.deepEqual(body.event_values, { af_revenue: 9.99, af_currency: "USD" });
  assert.equal(body.ts, "2026-12-02T10:00:00.000Z");
  assert.equal(requests[0].url, "https://go.example.com/api/v1/sdk/com.example.shop/events");
  assert.equal(requests[0].headers["X-SDK-Key"], "sdk_test");
});

test("bad arguments throw before anything is queued", async () => {
  const { client } = makeClient();
  await assert.rejects(client.logEvent(""), TypeError);
  await assert.rejects(client.logEvent("x", [], {}), TypeError);
  await assert.rejects(client.logEvent("x", {}, { eventId: " " }), TypeError);
  await assert.rejects(client.handleOpen({}), TypeError);
  assert.equal(await client.pendingCount(), 0);
  assert.throws(() => makeClient({ options: { sdkKey: "" } }), /sdkKey/);
  assert.throws(() => makeClient({ options: { consent: "some" } }), /consent/);
});
