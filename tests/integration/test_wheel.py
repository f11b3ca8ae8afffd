"""The built wheel is the whole product: installed in a fresh virtual environment, away from
this checkout, `linkgen serve` serves the login page (templates and static files are package
data) and a redirect."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import venv
from pathlib import Path

import pytest

from benchmarks.common import free_port, server_env

REPO = Path(__file__).resolve().parents[2]
API_KEY = "lg_wheel_test_key_0123456789abcdef"


def _request(url: str, body: object = None, *, redirects: bool = True) -> tuple[int, str, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    req.add_header("Authorization", f"Bearer {API_KEY}")
    req.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(
        *(
            []
            if redirects
            else [
                type(
                    "NoRedirect",
                    (urllib.request.HTTPRedirectHandler,),
                    {"redirect_request": lambda *args, **kwargs: None},
                )()
            ]
        )
    )
    try:
        with opener.open(req, timeout=10) as resp:
            return (
                resp.status,
                resp.read().decode(),
                {k.lower(): v for k, v in resp.headers.items()},
            )
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode(), {k.lower(): v for k, v in exc.headers.items()}


def test_the_wheel_serves_pages_and_redirects_from_a_fresh_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("linkgen-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    # The dependencies come from this test environment's site-packages (a plain path: its .pth
    # files, this checkout's editable install among them, are not read), linkgen from the wheel.
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    found = subprocess.run(
        [str(python), "-c", "import linkgen; print(linkgen.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout.strip()
    assert found.startswith(str(site)), found  # the wheel's copy, not this checkout's

    port = free_port()
    env = server_env(tmp_path / "instance", port=port, api_key=API_KEY)
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(env_dir / "bin" / "linkgen"), "serve", "--no-worker", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _request(base + "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        status, page, _ = _request(base + "/login")
        assert status in (200, 302)
        if status == 200:
            assert "<form" in page
        status, setup, _ = _request(base + "/setup")
        assert status == 200 and "/static/css/app.css" in setup, setup[:500]
        status, css, headers = _request(base + "/static/css/app.css")
        assert status == 200 and "text/css" in headers["content-type"] and ".pb-head" in css
        assert (
            _request(base + "/api/v1/apps", {"app_id": "com.example.shop", "name": "Shop"})[0]
            == 201
        )
        template = {
            "template_id": "Whl1",
            "domain": f"127.0.0.1:{port}",
            "android_app_id": "com.example.shop",
            "web_fallback_url": "https://example.com/",
        }
        assert _request(base + "/api/v1/templates", template)[0] == 201
        status, _, headers = _request(base + "/Whl1?pid=Email&c=wheel", redirects=False)
        assert status == 302 and headers["location"] == "https://example.com/"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    if server.returncode not in (0, -15):
        pytest.fail(f"serve exited {server.returncode}:\n{log_path.read_text()[-3000:]}")
