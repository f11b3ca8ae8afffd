"""A real HTTP fake of CleverTap's upload API, served on 127.0.0.1.

    with FakeCleverTap(accounts={"ACC-1": "secret-pass"}) as fake:
        url = upload_endpoint("EU1", fake.base_url)   # http://127.0.0.1:PORT/eu1/1/upload
        ...
        assert fake.received_linkgen_ids() == {"lg-1": 1}

Routes: `POST /{region}/1/upload` and `GET /{region}/v1/connect`. Credentials are checked
against `accounts` (account id -> passcode; with `accounts=None` any non-empty pair passes) and,
when an account is bound to a region, against the region in the path (a wrong region is a 401,
as with CleverTap). Records without `objectId`/`identity` come back `unprocessed` with code 523.

Behaviour: answers are taken from a queue (`enqueue(Behaviour...)`); when it is empty, a fault
is drawn with probability `fault_ratio` (seeded, reproducible) from `fault_statuses`, otherwise
the upload succeeds. A slow behaviour sleeps before answering; records of a slow success count as
received even if the client gave up (CleverTap would have stored them too).

Standalone: `python -m tests.fakes.fake_clevertap --port 9000 [--account ID:PASSCODE ...]`.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

RecordPredicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Behaviour:
    """How the fake answers one upload (or connect) request."""

    status: int = 200
    delay: float = 0.0
    unprocessed_when: RecordPredicate | None = None
    code: int = 523
    error: str = "Identity not set"
    body: Any = None

    @classmethod
    def success(cls) -> Behaviour:
        """Process every valid record."""
        return cls()

    @classmethod
    def partial(
        cls, predicate: RecordPredicate, code: int = 523, error: str = "Identity not set"
    ) -> Behaviour:
        """200, with the records matching `predicate` returned as `unprocessed`."""
        return cls(unprocessed_when=predicate, code=code, error=error)

    @classmethod
    def http_error(cls, status: int, body: Any = None) -> Behaviour:
        """Answer `status` (401, 429, 500, ...) without processing anything."""
        return cls(status=status, body=body)

    @classmethod
    def slow(cls, seconds: float, then: Behaviour | None = None) -> Behaviour:
        """Sleep, then behave like `then` (success by default)."""
        base = then or cls()
        return cls(base.status, seconds, base.unprocessed_when, base.code, base.error, base.body)


@dataclass
class RecordedRequest:
    """One request the fake received (the passcode is kept only for assertions)."""

    method: str
    path: str
    region: str | None
    headers: dict[str, str]
    body: Any
    status: int = 0

    @property
    def records(self) -> list[dict[str, Any]]:
        """The `d` list of an upload body."""
        if isinstance(self.body, dict) and isinstance(self.body.get("d"), list):
            return list(self.body["d"])
        return []


@dataclass
class _State:
    accounts: dict[str, str] | None
    account_regions: dict[str, str] = field(default_factory=dict)
    queue: list[Behaviour] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    received: Counter[str] = field(default_factory=Counter)
    processed_records: list[dict[str, Any]] = field(default_factory=list)
    fault_ratio: float = 0.0
    fault_statuses: tuple[int, ...] = (429, 500, 503)
    rng: random.Random = field(default_factory=lambda: random.Random(0))


class FakeCleverTap:
    """CleverTap's upload API on 127.0.0.1, in a background thread."""

    def __init__(
        self,
        accounts: Mapping[str, str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        fault_ratio: float = 0.0,
        seed: int = 0,
        fault_statuses: Iterable[int] = (429, 500, 503),
    ) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._state = _State(
            accounts=dict(accounts) if accounts is not None else None,
            fault_ratio=fault_ratio,
            fault_statuses=tuple(fault_statuses),
            rng=random.Random(seed),
        )
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False  # slow handlers must not hold up stop()
        self._thread = threading.Thread(
            # A short poll interval keeps stop() (and so every test using the fake) fast.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-clevertap",
            daemon=True,
        )
        self._thread.start()

    # --- configuration ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the fake listens on."""
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """A value for `LINKGEN_CLEVERTAP_API_BASE`: `http://127.0.0.1:PORT/{region}`."""
        host = str(self._server.server_address[0])
        return f"http://{host}:{self.port}/{{region}}"

    def add_account(self, account_id: str, passcode: str, region: str | None = None) -> None:
        """Accept an account (bound to a lowercase region such as "eu1" when given)."""
        with self._lock:
            if self._state.accounts is None:
                self._state.accounts = {}
            self._state.accounts[account_id] = passcode
            if region is not None:
                self._state.account_regions[account_id] = region.lower()

    def enqueue(self, *behaviours: Behaviour) -> None:
        """Answer the next requests with these behaviours, in order."""
        with self._lock:
            self._state.queue.extend(behaviours)

    def set_fault_ratio(
        self, ratio: float, *, seed: int | None = None, statuses: Iterable[int] | None = None
    ) -> None:
        """Fail this share of unqueued uploads with a status drawn from `statuses`."""
        with self._lock:
            self._state.fault_ratio = ratio
            if seed is not None:
                self._state.rng = random.Random(seed)
            if statuses is not None:
                self._state.fault_statuses = tuple(statuses)

    # --- inspection ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far."""
        with self._lock:
            return list(self._state.requests)

    def uploads(self) -> list[RecordedRequest]:
        """The upload requests received so far."""
        return [r for r in self.requests if r.method == "POST"]

    def received_linkgen_ids(self) -> Counter[str]:
        """How many times each `linkgen_id` was processed (more than 1 is a duplicate)."""
        with self._lock:
            return Counter(self._state.received)

    def processed_records(self) -> list[dict[str, Any]]:
        """Every record processed, in arrival order."""
        with self._lock:
            return list(self._state.processed_records)

    def reset(self) -> None:
        """Forget requests, received records and queued behaviours."""
        with self._lock:
            self._state.queue.clear()
            self._state.requests.clear()
            self._state.received.clear()
            self._state.processed_records.clear()

    # --- life cycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- request handling ---------------------------------------------------------------------

    def _next_behaviour(self, upload: bool) -> Behaviour:
        with self._lock:
            if self._state.queue:
                return self._state.queue.pop(0)
            if upload and self._state.fault_ratio > 0:
                rng = self._state.rng
                if rng.random() < self._state.fault_ratio:
                    return Behaviour.http_error(rng.choice(self._state.fault_statuses))
        return Behaviour.success()

    def _authorised(self, region: str | None, headers: Mapping[str, str]) -> bool:
        account_id = headers.get("x-clevertap-account-id", "")
        passcode = headers.get("x-clevertap-passcode", "")
        with self._lock:
            accounts = self._state.accounts
            bound_region = self._state.account_regions.get(account_id)
        if not account_id or not passcode:
            return False
        if accounts is not None and accounts.get(account_id) != passcode:
            return False
        return bound_region is None or bound_region == region

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._state.requests.append(request)

    def _process(
        self, records: list[Any], behaviour: Behaviour
    ) -> tuple[int, list[dict[str, Any]]]:
        processed = 0
        unprocessed: list[dict[str, Any]] = []
        accepted: list[dict[str, Any]] = []
        for record in records:
            if not isinstance(record, dict) or not (
                record.get("objectId") or record.get("identity")
            ):
                unprocessed.append(
                    {"status": "fail", "code": 523, "error": "Identity not set", "record": record}
                )
            elif behaviour.unprocessed_when is not None and behaviour.unprocessed_when(record):
                unprocessed.append(
                    {
                        "status": "fail",
                        "code": behaviour.code,
                        "error": behaviour.error,
                        "record": record,
                    }
                )
            else:
                processed += 1
                accepted.append(record)
        with self._lock:
            for record in accepted:
                data = record.get("evtData")
                if isinstance(data, dict) and isinstance(data.get("linkgen_id"), str):
                    self._state.received[data["linkgen_id"]] += 1
            self._state.processed_records.extend(accepted)
        return processed, unprocessed

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body in one write, without Nagle: otherwise each keep-alive answer
            # waits ~40 ms for a delayed ACK, which would skew the fault benchmark.
            wbufsize = 64 * 1024
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: tests read `fake.requests` instead

            def _send_json(self, status: int, body: Any) -> None:
                payload = json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _route(self) -> tuple[str | None, str]:
                path = urlsplit(self.path).path
                parts = [p for p in path.split("/") if p]
                if len(parts) >= 2 and "/".join(parts[1:]) in ("1/upload", "v1/connect"):
                    return parts[0], "/".join(parts[1:])
                return None, path

            def _headers_dict(self) -> dict[str, str]:
                return {k.lower(): v for k, v in self.headers.items()}

            def _respond(self, method: str, body: Any, raw_ok: bool) -> None:
                region, route = self._route()
                headers = self._headers_dict()
                recorded = RecordedRequest(method, self.path, region, headers, body)
                fake._record(recorded)
                expected = "1/upload" if method == "POST" else "v1/connect"
                if route != expected:
                    recorded.status = 404
                    self._send_json(404, {"status": "fail", "error": "Not found"})
                    return
                behaviour = fake._next_behaviour(upload=method == "POST")
                if behaviour.delay and fake._stopping.wait(behaviour.delay):
                    return  # shutting down: drop the answer
                if not fake._authorised(region, headers):
                    recorded.status = 401
                    self._send_json(
                        401, {"status": "fail", "error": "Invalid Credentials", "code": 401}
                    )
                    return
                if behaviour.status != 200:
                    recorded.status = behaviour.status
                    default = {"status": "fail", "error": f"Fake error {behaviour.status}"}
                    body_out = behaviour.body if behaviour.body is not None else default
                    self._send_json(behaviour.status, body_out)
                    return
                if method == "GET":
                    recorded.status = 200
                    self._send_json(200, {"status": "success"})
                    return
                records = body.get("d") if isinstance(body, dict) else None
                if not raw_ok or not isinstance(records, list):
                    recorded.status = 400
                    self._send_json(400, {"status": "fail", "error": "Malformed request body"})
                    return
                if len(records) > 1000:
                    recorded.status = 400
                    self._send_json(
                        400, {"status": "fail", "error": "At most 1000 records per request"}
                    )
                    return
                processed, unprocessed = fake._process(records, behaviour)
                recorded.status = 200
                self._send_json(
                    200,
                    {"status": "success", "processed": processed, "unprocessed": unprocessed},
                )

            def do_GET(self) -> None:
                self._respond("GET", None, True)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw.decode("utf-8")) if raw else None
                    raw_ok = True
                except (UnicodeDecodeError, json.JSONDecodeError):
                    body, raw_ok = None, False
                self._respond("POST", body, raw_ok)

        return Handler


def main(argv: list[str] | None = None) -> None:
    """Serve the fake until interrupted."""
    parser = argparse.ArgumentParser(description="A fake CleverTap upload API for linkgen.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="ID:PASSCODE",
        help="accept this account (repeatable); without any, every id/passcode pair passes",
    )
    parser.add_argument("--fault-ratio", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    accounts = dict(a.split(":", 1) for a in args.account) if args.account else None
    fake = FakeCleverTap(
        accounts, host=args.host, port=args.port, fault_ratio=args.fault_ratio, seed=args.seed
    )
    print(f"fake CleverTap on {fake.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
