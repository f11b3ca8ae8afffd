// Starts tests/sdk_server.py (a live `linkgen serve` and the fake CleverTap) and stops it by
// its PID. The Python is the repo's .venv (`make test` / `make install-test` creates it), or
// $LINKGEN_PYTHON.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, "../../../..");

export async function startServer() {
  const python = process.env.LINKGEN_PYTHON || join(REPO, ".venv/bin/python");
  if (!existsSync(python)) throw new Error(`${python} not found: run \`make install-test\` in ${REPO} first`);
  const child = spawn(python, ["-m", "tests.sdk_server"], {
    cwd: REPO,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout });
  const fixture = await new Promise((resolveLine, reject) => {
    const timer = setTimeout(() => reject(new Error("server fixture did not start within 120 s")), 120_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server fixture exited with ${code}`));
    });
    lines.once("line", (line) => {
      clearTimeout(timer);
      resolveLine(JSON.parse(line));
    });
  });
  const exited = new Promise((r) => child.once("exit", r));
  return {
    ...fixture,
    async stop() {
      lines.close();
      child.stdin.end(); // the fixture stops its server and the fake when its stdin closes
      const timer = setTimeout(() => process.kill(child.pid, "SIGTERM"), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Call linkgen's admin API with the fixture's API key. */
export async function api(server, method, path, body) {
  const res = await fetch(`${server.baseUrl}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${server.apiKey}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll `probe` until it returns a truthy value (generous deadline; no timing assertion). */
export async function waitFor(probe, what, deadlineMs = 60_000) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}
