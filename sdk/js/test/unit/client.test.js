import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryStorage } from "../../dist/index.js";
import { playInstallReferrer, platformFromReactNative } from "../../dist/react-native.js";
import { makeClient } from "./helpers.js";

const DEFERRED = {
  launch_id: "ln_2",
  type: "install",
  attribution: { is_organic: false, media_source: "Email", match_type: "referrer" },
  deep_link: { status: "FOUND", deep_link_value: "shoes" },
};

test("the first start sends first_launch with the raw referrer and returns the deferred deep link", async () => {
  let asked = 0;
  const { client, requests } = makeClient({
    script: [{ status: 200, body: DEFERRED }],
    options: {
      installReferrer: async () => (asked++, "af_tranid=ck_1&pid=Email"),
      platform: { os: "android", osVersion: "14", appVersion: "3.2.0" },
    },
  });
  const result = await client.start();
  assert.equal(result.status, "sent");
  assert.equal(result.firstLaunch, true);
  assert.deepEqual(result.deepLink, { status: "FOUND", deep_link_value: "shoes" });
  const body = requests[0].body;
  assert.equal(requests[0].url, "https://go.example.com/api/v1/sdk/com.example.shop/launches");
  assert.equal(body.first_launch, true);
  assert.equal(body.install_referrer, "af_tranid=ck_1&pid=Email");
  assert.equal(body.device_id, await client.getDeviceId());
  assert.equal(body.os, "android");
  assert.equal(body.os_version, "14");
  assert.equal(body.app_version, "3.2.0");
  assert.match(body.sdk, /^linkgen-js\/\d+\.\d+\.\d+$/);
  assert.equal("deep_link_url" in body, false, "absent values are not sent as null");
  const second = await client.start();
  assert.equal(second.firstLaunch, false);
  assert.equal(requests[1].body.first_launch, false);
  assert.equal("install_referrer" in requests[1].body, false);
  assert.equal(asked, 1, "the referrer is read on the first launch only");
});

test("an os other than ios/android is not sent (the server reads the user agent)", async () => {
  const { client, requests } = makeClient({ options: { platform: { os: "web", osVersion: "1" } } });
  await client.start();
  assert.equal("os" in requests[0].body, false);
});

test("a first launch that could not be sent is sent, once, by the next start", async () => {
  const storage = new MemoryStorage();
  const offline = makeClient({ storage, script: ["network"], options: { installReferrer: () => "af_tranid=ck_9" } });
  const first = await offline.client.start();
  assert.equal(first.status, "queued");
  offline.client.close();
  const launches = [];
  const online = makeClient({ storage, options: { onLaunch: (a) => launches.push(a) } });
  const result = await online.client.start();
  assert.equal(result.firstLaunch, true);
  assert.equal(result.status, "sent");
  assert.equal(online.requests.length, 1);
  assert.equal(online.requests[0].body.first_launch, true);
  assert.equal(online.requests[0].body.install_referrer, "af_tranid=ck_9");
  assert.equal(launches.length, 1);
  const later = makeClient({ storage });
  await later.client.start();
  assert.equal(later.requests[0].body.first_launch, false);
});

test("a refused first launch (bad key) is tried again as a first launch", async () => {
  const storage = new MemoryStorage();
  const bad = makeClient({ storage, script: [401] });
  assert.equal((await bad.client.start()).status, "refused");
  const good = makeClient({ storage });
  await good.client.start();
  assert.equal(good.requests[0].body.first_launch, true);
});

test("a slow install referrer does not hold up the launch", async () => {
  const { client, clock, requests } = makeClient({
    options: { installReferrer: () => new Promise(() => {}), installReferrerTimeoutMs: 5 },
  });
  const started = client.start();
  // The fake clock fires the referrer timeout by hand.
  await new Promise((r) => setImmediate(r));
  const timeout = clock.timers.find((t) => t.at - clock.now() === 5);
  timeout.fn();
  await started;
  assert.equal(requests.length, 1);
  assert.equal("install_referrer" in requests[0].body, false);
});

test("handleOpen reports the URL as deep_link_url and returns linkgen's deep link", async () => {
  const url = "https://go.example.com/AbCd/x7?deep_link_value=shoes";
  const answer = { ...DEFERRED, type: "reengagement", deep_link: { status: "FOUND", deep_link_value: "shoes", af_sub1: "x" } };
  const { client, requests } = makeClient({ script: [200, { status: 200, body: answer }] });
  await client.start();
  const opened = await client.handleOpen({ wzrk_dl: url });
  assert.equal(opened.status, "sent");
  assert.equal(opened.url, url);
  assert.deepEqual(opened.deepLink, answer.deep_link);
  assert.equal(requests[1].body.deep_link_url, url);
  assert.equal(requests[1].body.first_launch, false);
});

test("offline, handleOpen returns the URL's own values and queues the report", async () => {
  const { client } = makeClient({ script: [200, "network"] });
  await client.start();
  const opened = await client.handleOpen("myapp://product?deep_link_value=shoes&deep_link_sub1=red");
  assert.equal(opened.status, "queued");
  assert.deepEqual(opened.deepLink, { status: "FOUND", deep_link_value: "shoes", deep_link_sub1: "red" });
  assert.equal(await client.pendingCount(), 1);
});

test("setCustomerUserId is kept and sent with launches and events", async () => {
  const storage = new MemoryStorage();
  const { client, requests } = makeClient({ storage });
  await client.setCustomerUserId("__h1a2b3c");
  await client.logEvent("af_level", {});
  await client.start();
  assert.equal(requests[0].body.customer_user_id, "__h1a2b3c");
  assert.equal(requests[1].body.customer_user_id, "__h1a2b3c");
  const next = makeClient({ storage });
  await next.client.logEvent("x", {});
  assert.equal(next.requests[0].body.customer_user_id, "__h1a2b3c");
  await next.client.setCustomerUserId(null);
  await next.client.logEvent("y", {});
  assert.equal("customer_user_id" in next.requests[1].body, false);
});

test("react-native adapters: Play Install Referrer and Platform", async () => {
  const module = { getInstallReferrerInfo: (cb) => cb({ installReferrer: "af_tranid=ck_7" }, null) };
  assert.equal(await playInstallReferrer(module)(), "af_tranid=ck_7");
  const failing = { getInstallReferrerInfo: (cb) => cb(null, { message: "FEATURE_NOT_SUPPORTED" }) };
  assert.equal(await playInstallReferrer(failing)(), null);
  assert.deepEqual(platformFromReactNative({ OS: "android", Version: 34, constants: { Release: "14" } }, "3.2"), {
    os: "android",
    osVersion: "14",
    appVersion: "3.2",
  });
  assert.deepEqual(platformFromReactNative({ OS: "ios", Version: "17.4" }), { os: "ios", osVersion: "17.4" });
});

test("an open before the first launch went out is the first launch, with the referrer and the URL", async () => {
  const url = "https://go.example.com/AbCd/x7?deep_link_value=shoes";
  const { client, requests } = makeClient({ options: { installReferrer: () => "af_tranid=ck_3" } });
  const opened = await client.handleOpen(url);
  assert.equal(opened.status, "sent");
  assert.equal(requests[0].body.first_launch, true);
  assert.equal(requests[0].body.deep_link_url, url);
  assert.equal(requests[0].body.install_referrer, "af_tranid=ck_3");
  const started = await client.start();
  assert.equal(started.firstLaunch, false);
  assert.equal(requests[1].body.first_launch, false);
});
