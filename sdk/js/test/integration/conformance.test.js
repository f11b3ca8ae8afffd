// The language-neutral conformance suite (sdk/conformance/*.json) against a live linkgen serve;
// tests/integration/test_sdk_conformance.py runs the same cases through Flask's test client.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { newId, queryParams } from "../../dist/index.js";
import { REPO, sleep, startServer } from "./fixture.js";

const DIR = join(REPO, "sdk/conformance");
const USER_AGENTS = {
  android:
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.6422.113 Mobile Safari/537.36",
  ios: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
};
const PLACEHOLDER = /\{([a-z_]+)\}/g;

function substitute(value, names) {
  if (typeof value === "string") {
    const whole = /^\{([a-z_]+)\}$/.exec(value);
    if (whole && whole[1] in names) return names[whole[1]];
    return value.replace(PLACEHOLDER, (m, name) => (name in names ? String(names[name]) : m));
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, names));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, names)]));
  }
  return value;
}

function atPath(body, path) {
  let value = body;
  for (const part of path.split(".")) {
    assert.ok(value && typeof value === "object" && part in value, `${path} missing in ${JSON.stringify(body)}`);
    value = value[part];
  }
  return value;
}

function typeOf(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

function check(expect, status, body, bodies) {
  assert.equal(status, expect.status, JSON.stringify(body));
  for (const [path, want] of Object.entries(expect.fields ?? {})) {
    assert.deepStrictEqual(atPath(body, path), want, `${path} in ${JSON.stringify(body)}`);
  }
  for (const [path, kind] of Object.entries(expect.types ?? {})) {
    assert.equal(typeOf(atPath(body, path)), kind, `${path} in ${JSON.stringify(body)}`);
  }
  if ("same_body_as_step" in expect) assert.deepStrictEqual(body, bodies[expect.same_body_as_step]);
}

function savedFromLocation(location, save) {
  const referrer = queryParams(location).referrer ?? "";
  const inner = queryParams(`?${referrer}`);
  const out = {};
  for (const [name, source] of Object.entries(save ?? {})) {
    if (source === "referrer") out[name] = referrer;
    else {
      assert.ok(source.startsWith("referrer."), source);
      out[name] = inner[source.slice("referrer.".length)];
    }
  }
  return out;
}

const files = readdirSync(DIR).filter((f) => f.endsWith(".json")).sort();

describe("conformance", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  for (const file of files) {
    const { cases } = JSON.parse(readFileSync(join(DIR, file), "utf8"));
    for (const kase of cases) {
      test(`${file.replace(/\.json$/, "")}:${kase.name}`, async () => {
        const names = {
          app_id: server.appId,
          sdk_key: server.sdkKey,
          template_id: server.templateId,
          link_base: server.baseUrl,
          uid: newId().slice(0, 12),
        };
        const bodies = [];
        for (const step of kase.steps) {
          if (step.wait_seconds) await sleep(step.wait_seconds * 1000);
          names.now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
          const expect = substitute(step.expect, names);
          if (step.click) {
            const click = substitute(step.click, names);
            const res = await fetch(server.baseUrl + click.path, {
              redirect: "manual",
              headers: { "User-Agent": USER_AGENTS[click.user_agent] },
            });
            await res.arrayBuffer();
            check(expect, res.status, null, bodies);
            Object.assign(names, savedFromLocation(res.headers.get("location"), step.save));
            bodies.push(null);
            continue;
          }
          const request = substitute(step.request, names);
          const res = await fetch(server.baseUrl + request.path, {
            method: request.method,
            headers: { ...request.headers, "Content-Type": "application/json" },
            body: JSON.stringify(request.body),
          });
          const text = await res.text();
          let body = null;
          try {
            body = JSON.parse(text);
          } catch {
            body = null;
          }
          check(expect, res.status, body, bodies);
          bodies.push(body);
        }
      });
    }
  }
});
