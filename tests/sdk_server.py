"""A live linkgen for the SDK's node tests: `linkgen serve` on a temporary SQLite database, with
the fake CleverTap (tests/fakes/fake_clevertap.py) as a real HTTP server in this process.

    .venv/bin/python -m tests.sdk_server      (from the repository root)

Prints one JSON line (base URLs, API key, the app's SDK key, the template and a link, the fake
CleverTap's account), then serves until its standard input closes or it gets SIGTERM; it then
stops the server it started (by PID) and the fake, and removes the temporary directory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.fakes.fake_clevertap import FakeCleverTap

ACCOUNT_ID, PASSCODE = "W6K-556-4K6Z", "sdk-test-passcode"
ANDROID_APP, TEMPLATE = "com.example.shop", "Shop"
DEADLINE = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(method: str, url: str, key: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        exc.close()
        raise SystemExit(f"{method} {url}: {exc.code} {detail}") from None


def wait_healthy(base: str, server: subprocess.Popen[bytes]) -> None:
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if server.poll() is not None:
            raise SystemExit(f"linkgen serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("linkgen serve did not answer /healthz in time")


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="linkgen-sdk-"))
    fake = FakeCleverTap({ACCOUNT_ID: PASSCODE})
    server: subprocess.Popen[bytes] | None = None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LINKGEN_")}
        env.update(
            LINKGEN_DATABASE_URL=f"sqlite:///{tmp / 'linkgen.db'}",
            LINKGEN_INSTANCE_PATH=str(tmp / "instance"),
            LINKGEN_SECRET_KEY="sdk-tests-secret",
            LINKGEN_LINK_DOMAINS=f"127.0.0.1:{port}",
            LINKGEN_CLEVERTAP_API_BASE=fake.base_url,  # http://127.0.0.1:PORT/{region}
            LINKGEN_LOG_LEVEL="WARNING",
        )
        linkgen = str(Path(sys.executable).parent / "linkgen")
        subprocess.run([linkgen, "db", "upgrade"], env=env, check=True, capture_output=True)
        made = subprocess.run(
            [linkgen, "create-api-key", "sdk-tests"], env=env, check=True, capture_output=True
        )
        key = made.stdout.decode().strip().splitlines()[-1]
        log = (tmp / "serve.log").open("wb")
        server = subprocess.Popen(
            [linkgen, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_healthy(base, server)
        api = f"{base}/api/v1"
        # Probabilistic matching off: every test client shares 127.0.0.1, so only deterministic
        # matches (referrer, device id, customer user id, deep link) may decide a test's outcome.
        app = call(
            "POST",
            f"{api}/apps",
            key,
            {"app_id": ANDROID_APP, "name": "Shop", "probabilistic_matching": False},
        )
        call(
            "PUT",
            f"{api}/apps/{ANDROID_APP}/integrations/clevertap",
            key,
            {
                "active": True,
                "account_id": ACCOUNT_ID,
                "account_passcode": PASSCODE,
                "region": "EU1",
                "default_postbacks": "all_sources",
                "identity_field": "objectId",
                "in_app_events": {
                    "enabled": True,
                    "mappings": [
                        {
                            "sdk_event": "af_purchase",
                            "partner_event": "Charged",
                            "sending_option": "all_sources",
                            "send_revenue": "values_and_revenue",
                        }
                    ],
                },
            },
        )
        call(
            "POST",
            f"{api}/templates",
            key,
            {
                "template_id": TEMPLATE,
                "domain": f"127.0.0.1:{port}",
                "android_app_id": ANDROID_APP,
                "app_links": True,
                "web_fallback_url": "https://www.example.com/",
                "redirect_allowlist": ["example.com"],
            },
        )
        link = call(
            "POST",
            f"{api}/links",
            key,
            {
                "template_id": TEMPLATE,
                "channel": "email",
                "campaign": "spring_sale",
                "params": {"deep_link_value": "shoes", "deep_link_sub1": "red"},
                "short": True,
            },
        )
        fixture = {
            "baseUrl": base,
            "apiKey": key,
            "appId": ANDROID_APP,
            "sdkKey": app["sdk_key"],
            "templateId": TEMPLATE,
            "linkDomain": f"127.0.0.1:{port}",
            "link": {"id": link["id"], "shortUrl": link["short_url"], "longUrl": link["long_url"]},
            "clevertap": {
                "baseUrl": fake.base_url.replace("/{region}", ""),
                "accountId": ACCOUNT_ID,
                "passcode": PASSCODE,
            },
            "serverPid": server.pid,
        }
        print(json.dumps(fixture), flush=True)

        def wait_for_stdin_eof() -> None:
            sys.stdin.read()
            stop.set()

        threading.Thread(target=wait_for_stdin_eof, daemon=True).start()
        stop.wait()
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
