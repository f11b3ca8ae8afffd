// The README's quick start, runnable with Node 18+ against any linkgen:
//   LINKGEN_URL=http://127.0.0.1:8000 LINKGEN_APP_ID=com.example.shop LINKGEN_SDK_KEY=sdk_... \
//   LINK_URL=http://127.0.0.1:8000/Shop/AbCd1234 CLEVERTAP_ID=__ct123 node examples/quickstart.mjs
// It plays the phone: taps the link (Android), "installs" for 10 s, then runs the SDK calls an
// app makes. Prints one JSON line with what linkgen answered.
import { init, MemoryStorage, referrerFromPlayUrl } from "@linkgen/sdk";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name}`);
  return value;
};

// 1. The tap: linkgen records the click and sends Android to Google Play with
//    referrer=af_tranid%3D<click id>; the Play Install Referrer API later gives the app that string.
const tap = await fetch(env("LINK_URL"), {
  redirect: "manual",
  headers: { "User-Agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0 Mobile Safari/537.36" },
});
await tap.arrayBuffer();
const installReferrer = referrerFromPlayUrl(tap.headers.get("location") ?? "");

// 2. The install takes a while (a first launch under 10 s after its click is click injection).
await new Promise((r) => setTimeout(r, 10_500));

// 3. What the app does at start.
const linkgen = init({
  baseUrl: env("LINKGEN_URL"),
  appId: env("LINKGEN_APP_ID"),
  sdkKey: env("LINKGEN_SDK_KEY"),
  storage: new MemoryStorage(), // AsyncStorage in React Native, localStorage in a browser
  platform: { os: "android", osVersion: "14", appVersion: "1.0.0" },
  installReferrer: async () => installReferrer, // playInstallReferrer(PlayInstallReferrer) in React Native
});
await linkgen.setCustomerUserId(env("CLEVERTAP_ID")); // CleverTap's objectId of this user
const started = await linkgen.start();
const purchase = await linkgen.logEvent("af_purchase", { af_revenue: 9.99, af_currency: "USD" });
console.log(JSON.stringify({ launch: started.answer, deepLink: started.deepLink, purchase }));
linkgen.close();
