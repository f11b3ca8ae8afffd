import assert from "node:assert/strict";
import { test } from "node:test";
import { deepLinkFromUrl, openedUrl, queryParams, referrerFromPlayUrl } from "../../dist/index.js";

test("query parameters are decoded, first value wins, the fragment is ignored", () => {
  assert.deepEqual(queryParams("https://go.example.com/AbCd/x?a=1&b=two%20words&a=3&c=x+y#frag=1"), {
    a: "1",
    b: "two words",
    c: "x y",
  });
  assert.deepEqual(queryParams("myapp://product"), {});
  assert.deepEqual(queryParams("https://x/?bad=%E0%A4%A"), { bad: "%E0%A4%A" });
});

test("a URL's deep-link values: deep_link_value and deep_link_sub1..10 only", () => {
  assert.deepEqual(
    deepLinkFromUrl("https://go.example.com/AbCd/x7?deep_link_value=shoes&deep_link_sub1=red&deep_link_sub10=z&pid=Email"),
    { status: "FOUND", deep_link_value: "shoes", deep_link_sub1: "red", deep_link_sub10: "z" },
  );
  assert.deepEqual(deepLinkFromUrl("https://go.example.com/AbCd/x7?pid=Email"), { status: "NOT_FOUND" });
});

test("a push payload's wzrk_dl is the URL opened", () => {
  const link = "https://go.example.com/AbCd/x7?deep_link_value=shoes";
  assert.equal(openedUrl({ wzrk_dl: link, wzrk_pn: "true" }), link);
  assert.equal(openedUrl(link), link);
  assert.equal(openedUrl(`myapp://push?wzrk_dl=${encodeURIComponent(link)}`), link);
  assert.equal(openedUrl({ nothing: 1 }), null);
  assert.equal(openedUrl("  "), null);
});

test("the Play Store URL's referrer is the raw install referrer string", () => {
  const play = "https://play.google.com/store/apps/details?id=com.example.shop&referrer=af_tranid%3Dck_123%26pid%3DEmail";
  assert.equal(referrerFromPlayUrl(play), "af_tranid=ck_123&pid=Email");
  assert.equal(referrerFromPlayUrl("https://play.google.com/store/apps/details?id=x"), null);
});
