// The whole journey against a live linkgen serve and the fake CleverTap, driven by the SDK:
// click -> first launch (Play install referrer) -> deferred deep link -> open -> af_purchase ->
// Charged in CleverTap, once, even when an answer is lost and the event is sent again.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { init, MemoryStorage, referrerFromPlayUrl } from "../../dist/index.js";
import { api, sleep, startServer, waitFor } from "./fixture.js";

const ANDROID_UA =
  "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.6422.113 Mobile Safari/537.36";
const CLICK_INJECTION_MS = 10_000; // linkgen/domain/attribution.py CLICK_INJECTION_THRESHOLD

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

function ymd(date = new Date()) {
  return date.toISOString().slice(0, 10).replace(/-/g, "");
}

/** The records of `eventName` the fake CleverTap stored today, through its Get Events API. */
async function cleverTapEvents(eventName) {
  const { baseUrl, accountId, passcode } = server.clevertap;
  const headers = {
    "X-CleverTap-Account-Id": accountId,
    "X-CleverTap-Passcode": passcode,
    "Content-Type": "application/json",
  };
  const opened = await fetch(`${baseUrl}/eu1/1/events.json?batch_size=1000`, {
    method: "POST",
    headers,
    body: JSON.stringify({ event_name: eventName, from: Number(ymd()), to: Number(ymd()) }),
  });
  const { cursor } = await opened.json();
  const page = await fetch(`${baseUrl}/eu1/1/events.json?cursor=${encodeURIComponent(cursor)}`, { headers });
  const body = await page.json();
  return body.records;
}

function client(options = {}) {
  return init({
    baseUrl: server.baseUrl,
    appId: server.appId,
    sdkKey: server.sdkKey,
    storage: new MemoryStorage(),
    platform: { os: "android", osVersion: "14", appVersion: "3.2.0" },
    retryBaseMs: 50,
    ...options,
  });
}

test("click -> install with deferred deep link -> open -> purchase -> Charged in CleverTap", async () => {
  const click = await fetch(server.link.shortUrl, { redirect: "manual", headers: { "User-Agent": ANDROID_UA } });
  await click.arrayBuffer();
  const clickedAt = Date.now(); // the click's stored time is no later than this
  assert.equal(click.status, 302);
  const play = click.headers.get("location");
  assert.match(play, /^https:\/\/play\.google\.com\//);
  const referrer = referrerFromPlayUrl(play);
  const clickId = new URLSearchParams(referrer).get("af_tranid");
  assert.ok(clickId, play);

  // An install takes longer than 10 s; a launch sooner than that is passed over (click injection).
  await sleep(Math.max(0, clickedAt + CLICK_INJECTION_MS + 250 - Date.now()));

  const launches = [];
  const sdk = client({ installReferrer: async () => referrer, onLaunch: (a) => launches.push(a) });
  const ctid = `__ct${Date.now()}`;
  await sdk.setCustomerUserId(ctid);
  const started = await sdk.start();
  assert.equal(started.status, "sent");
  assert.equal(started.firstLaunch, true);
  assert.equal(started.answer.type, "install");
  assert.equal(started.answer.attribution.match_type, "referrer");
  assert.equal(started.answer.attribution.click_id, clickId);
  assert.equal(started.answer.attribution.link_id, server.link.id);
  assert.equal(started.answer.attribution.media_source, "Email");
  assert.equal(started.answer.attribution.campaign, "spring_sale");
  assert.deepEqual(started.deepLink, { status: "FOUND", deep_link_value: "shoes", deep_link_sub1: "red" });
  assert.equal(launches.length, 1);

  // A push (CleverTap's wzrk_dl) opening the same link in the running app.
  const opened = await sdk.handleOpen({ wzrk_dl: server.link.shortUrl, wzrk_pn: "true" });
  assert.equal(opened.status, "sent");
  assert.equal(opened.url, server.link.shortUrl);
  assert.equal(opened.deepLink.status, "FOUND");
  assert.equal(opened.deepLink.deep_link_value, "shoes");
  assert.ok(["open", "reengagement"].includes(opened.answer.type), opened.answer.type);

  const purchase = await sdk.logEvent("af_purchase", { af_revenue: 9.99, af_currency: "USD" });
  assert.equal(purchase.status, "sent");
  const again = await sdk.logEvent("af_purchase", { af_revenue: 9.99, af_currency: "USD" }, { eventId: purchase.eventId });
  assert.equal(again.status, "sent", "a repeat is answered 200 and counts as delivered");

  const charged = await waitFor(async () => {
    const records = (await cleverTapEvents("Charged")).filter((r) => r.profile.objectId === ctid);
    return records.length ? records : null;
  }, "the Charged postback in the fake CleverTap");
  assert.equal(charged.length, 1);
  assert.equal(charged[0].event_props.Amount, 9.99);
  const installs = (await cleverTapEvents("App Install Attributed")).filter((r) => r.profile.objectId === ctid);
  assert.equal(installs.length, 1);

  const postbacks = await api(server, "GET", `/postbacks?app_id=${server.appId}&kind=event`);
  assert.equal(postbacks.status, 200);
  sdk.close();
});

test("an event whose answer was lost is sent again with its event id and reaches CleverTap once", async () => {
  let lose = true;
  const lossy = async (url, request) => {
    const res = await fetch(url, request);
    if (lose && url.endsWith("/events")) {
      lose = false;
      await res.text();
      throw new TypeError("connection reset"); // the server stored it; the app never heard
    }
    return res;
  };
  const sdk = client({ fetch: lossy });
  const ctid = `__lost${Date.now()}`;
  await sdk.setCustomerUserId(ctid);
  await sdk.start();
  const receipt = await sdk.logEvent("af_purchase", { af_revenue: "4.50", af_currency: "EUR" });
  assert.equal(receipt.status, "queued");
  await waitFor(async () => (await sdk.pendingCount()) === 0, "the retried event to be delivered");
  const charged = await waitFor(async () => {
    const records = (await cleverTapEvents("Charged")).filter((r) => r.profile.objectId === ctid);
    return records.length ? records : null;
  }, "the Charged postback");
  // Give the worker a further pass: a second copy, if any, would be sent by now.
  await waitFor(async () => {
    const res = await api(server, "GET", `/postbacks?app_id=${server.appId}&kind=event&status=queued`);
    return res.body.items.length === 0;
  }, "no queued event postback");
  assert.equal((await cleverTapEvents("Charged")).filter((r) => r.profile.objectId === ctid).length, 1);
  assert.equal(charged[0].event_props.Amount, 4.5);
  sdk.close();
});

test("a wrong SDK key is refused (401) and not retried", async () => {
  const errors = [];
  let sent = 0;
  const counting = async (url, request) => {
    sent += 1;
    return fetch(url, request);
  };
  const sdk = client({ sdkKey: "sdk_wrong", fetch: counting, onError: (e) => errors.push(e) });
  const result = await sdk.start();
  assert.equal(result.status, "refused");
  assert.equal(errors.length, 1);
  assert.equal(errors[0].status, 401);
  assert.equal(await sdk.pendingCount(), 0);
  await sleep(300);
  assert.equal(sent, 1);
  sdk.close();
});

test("the README's quick start (examples/quickstart.mjs) gives an attributed install and a Charged postback", async () => {
  const ctid = `__quick${Date.now()}`;
  const script = join(dirname(fileURLToPath(import.meta.url)), "../../examples/quickstart.mjs");
  const { stdout } = await promisify(execFile)(process.execPath, [script], {
    env: {
      ...process.env,
      LINKGEN_URL: server.baseUrl,
      LINKGEN_APP_ID: server.appId,
      LINKGEN_SDK_KEY: server.sdkKey,
      LINK_URL: server.link.shortUrl,
      CLEVERTAP_ID: ctid,
    },
    timeout: 120_000,
  });
  const out = JSON.parse(stdout.trim().split("\n").pop());
  assert.equal(out.launch.type, "install");
  assert.equal(out.launch.attribution.is_organic, false);
  assert.equal(out.launch.attribution.match_type, "referrer");
  assert.equal(out.deepLink.deep_link_value, "shoes");
  assert.equal(out.purchase.status, "sent");
  const charged = await waitFor(async () => {
    const records = (await cleverTapEvents("Charged")).filter((r) => r.profile.objectId === ctid);
    return records.length ? records : null;
  }, "the quick start's Charged postback");
  assert.equal(charged.length, 1);
});
