import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryStorage } from "../../dist/index.js";
import { makeClient } from "./helpers.js";

const IDS = { idfa: "IDFA-1", idfv: "IDFV-1", gaid: "GAID-1" };

async function launchBody(consent) {
  const { client, requests } = makeClient({
    options: { consent, deviceIds: IDS, installReferrer: () => "af_tranid=ck_1" },
  });
  await client.setCustomerUserId("ct-1");
  const result = await client.start();
  await client.logEvent("af_purchase", {});
  return { result, requests };
}

test("full consent sends every identifier the app supplies", async () => {
  const { requests } = await launchBody("full");
  const body = requests[0].body;
  assert.equal(body.idfa, "IDFA-1");
  assert.equal(body.idfv, "IDFV-1");
  assert.equal(body.gaid, "GAID-1");
  assert.equal(body.customer_user_id, "ct-1");
  assert.equal(body.install_referrer, "af_tranid=ck_1");
});

test("reduced consent never sends advertising or vendor ids", async () => {
  const { requests } = await launchBody("reduced");
  const body = requests[0].body;
  for (const key of ["idfa", "idfv", "gaid"]) assert.equal(key in body, false, key);
  assert.equal(typeof body.device_id, "string");
  assert.equal(body.customer_user_id, "ct-1");
  assert.equal(body.install_referrer, "af_tranid=ck_1");
  assert.equal(requests.length, 2);
});

test("no consent sends nothing at all", async () => {
  const { result, requests } = await launchBody("none");
  assert.equal(result.status, "skipped");
  assert.equal(requests.length, 0);
});

test("lowering consent applies to what is already queued", async () => {
  const storage = new MemoryStorage();
  const { client, clock, requests } = makeClient({ storage, script: ["network"], options: { deviceIds: IDS } });
  await client.start();
  assert.equal(requests[0].body.gaid, "GAID-1");
  await client.setConsent("reduced");
  assert.equal(storage.getItem("linkgen:com.example.shop:queue").includes("GAID-1"), false);
  clock.advance(1000);
  await client.flush();
  assert.equal("gaid" in requests[1].body, false);
  await client.logEvent("x", {});
  await client.setConsent("none");
  assert.equal(await client.pendingCount(), 0);
  await client.logEvent("y", {});
  assert.equal(requests.length, 3);
});

test("the consent level set by the app is remembered when init gives none", async () => {
  const storage = new MemoryStorage();
  const first = makeClient({ storage });
  await first.client.setConsent("none");
  const second = makeClient({ storage });
  await second.client.start();
  assert.equal(second.client.getConsent(), "none");
  assert.equal(second.requests.length, 0);
});
