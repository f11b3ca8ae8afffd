"""A real HTTP fake of CleverTap's upload and Get Events APIs, served on 127.0.0.1.

    with FakeCleverTap(accounts={"ACC-1": "secret-pass"}) as fake:
        url = upload_endpoint("EU1", fake.base_url)   # http://127.0.0.1:PORT/eu1/1/upload
        ...
        assert fake.received_linkgen_ids() == {"lg-1": 1}

Routes: `POST /{region}/1/upload`, `GET /{region}/v1/connect`, and the Get Events API:
`POST /{region}/1/events.json?batch_size=N` with `{"event_name", "from": YYYYMMDD, "to":
YYYYMMDD}` answers `{"status": "success", "cursor": ...}`; `GET /{region}/1/events.json?cursor=`
answers `{"status": "success", "records": [...], "next_cursor": ...}` (no `next_cursor` on the
last page). Its records are the events this fake processed for that account, of that event name,
whose `ts` (or arrival time when the record had none) falls on those days in UTC, shaped like
CleverTap's export: `{"profile": {"objectId" | "identity": ...}, "ts": YYYYMMDDHHMMSS,
"event_props": evtData, "session_props": {}}`. A cursor lists what was stored when it was made.

Credentials are checked against `accounts` (account id -> passcode; with `accounts=None` any
non-empty pair passes) and, when an account is bound to a region, against the region in the path
(a wrong region is a 401, as with CleverTap). Records without `objectId`/`identity` come back
`unprocessed` with code 523.

Behaviour: upload and connect answers are taken from a queue (`enqueue(Behaviour...)`); when it
is empty, a fault is drawn with probability `fault_ratio` (seeded, reproducible) from
`fault_statuses`, otherwise the upload succeeds. A fault is an HTTP status, `"timeout"` (the
records are stored and no answer comes, as when CleverTap's answer is lost) or `"hang"` (nothing
is stored and no answer comes). Both wait `timeout_delay` seconds (past the client's timeout) and
then until the client hangs up, so the client times out however slowly it runs. A slow behaviour sleeps before answering; records of a slow success count
as received even if the client gave up (CleverTap would have stored them too). Get Events
requests have their own queue (`enqueue_events`) and fault ratio (`events_fault_ratio`).

Standalone: `python -m tests.fakes.fake_clevertap --port 9000 [--account ID:PASSCODE ...]`.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import parse_qs, urlsplit

RecordPredicate = Callable[[Mapping[str, Any]], bool]
Fault = int | str  # an HTTP status, "timeout" or "hang"
# The longest a lost answer or a hang waits for its client to hang up.
HANG_UP_DEADLINE = 60.0
UPLOAD, CONNECT, EVENTS = "1/upload", "v1/connect", "1/events.json"
MAX_EVENTS_BATCH = 5000


@dataclass(frozen=True)
class Behaviour:
    """How the fake answers one upload (or connect) request."""

    status: int = 200
    delay: float = 0.0
    unprocessed_when: RecordPredicate | None = None
    code: int = 523
    error: str = "Identity not set"
    body: Any = None
    store_first: bool = False  # store the records, then wait `delay` before answering
    # Meant to outlast the client's timeout: after `delay`, hold the answer until the client
    # hangs up (bounded by HANG_UP_DEADLINE), whatever the machine's speed; it never arrives.
    outlasts_client: bool = False

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

    @classmethod
    def hang(cls, seconds: float, then: Behaviour | None = None) -> Behaviour:
        """Store nothing and give no answer: wait `seconds` (past the client's timeout), then
        until the client has hung up; `then` is what the request is recorded as answering."""
        base = then or cls()
        return cls(base.status, seconds, body=base.body, outlasts_client=True)

    @classmethod
    def lost_answer(cls, seconds: float) -> Behaviour:
        """Store the records at once, then give no answer: wait `seconds` (past the client's
        timeout), then until the client has hung up. CleverTap has the records, the client
        never learns it."""
        return cls(delay=seconds, store_first=True, outlasts_client=True)


@dataclass
class RecordedRequest:
    """One request the fake received (the passcode is kept only for assertions)."""

    method: str
    path: str
    region: str | None
    headers: dict[str, str]
    body: Any
    status: int = 0
    delay: float = 0.0  # seconds the fake waited before answering (a slow or timeout fault)

    @property
    def records(self) -> list[dict[str, Any]]:
        """The `d` list of an upload body."""
        if isinstance(self.body, dict) and isinstance(self.body.get("d"), list):
            return list(self.body["d"])
        return []

    @property
    def route(self) -> str:
        """The path after the region: "1/upload", "v1/connect", "1/events.json", ..."""
        parts = [p for p in urlsplit(self.path).path.split("/") if p]
        return "/".join(parts[1:])


@dataclass
class _Stored:
    """An event record the fake processed, as the Get Events API can list it."""

    account_id: str
    record: dict[str, Any]
    arrived: float


@dataclass
class _Cursor:
    account_id: str
    records: list[dict[str, Any]]
    offset: int
    batch_size: int


@dataclass
class _State:
    accounts: dict[str, str] | None
    account_regions: dict[str, str] = field(default_factory=dict)
    queue: list[Behaviour] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    received: Counter[str] = field(default_factory=Counter)
    processed_records: list[dict[str, Any]] = field(default_factory=list)
    stored: list[_Stored] = field(default_factory=list)
    cursors: dict[str, _Cursor] = field(default_factory=dict)
    fault_ratio: float = 0.0
    fault_statuses: tuple[Fault, ...] = (429, 500, 503)
    timeout_delay: float = 3.0
    events_queue: list[Behaviour] = field(default_factory=list)
    events_fault_ratio: float = 0.0
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
        fault_statuses: Iterable[Fault] = (429, 500, 503),
        timeout_delay: float = 3.0,
        events_fault_ratio: float = 0.0,
    ) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._state = _State(
            accounts=dict(accounts) if accounts is not None else None,
            fault_ratio=fault_ratio,
            fault_statuses=tuple(fault_statuses),
            timeout_delay=timeout_delay,
            events_fault_ratio=events_fault_ratio,
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

    def enqueue_events(self, *behaviours: Behaviour) -> None:
        """Answer the next Get Events requests (cursor or page) with these, in order."""
        with self._lock:
            self._state.events_queue.extend(behaviours)

    def set_fault_ratio(
        self,
        ratio: float,
        *,
        seed: int | None = None,
        statuses: Iterable[Fault] | None = None,
        timeout_delay: float | None = None,
    ) -> None:
        """Fail this share of unqueued uploads with a fault drawn from `statuses`."""
        with self._lock:
            self._state.fault_ratio = ratio
            if timeout_delay is not None:
                self._state.timeout_delay = timeout_delay
            if seed is not None:
                self._state.rng = random.Random(seed)
            if statuses is not None:
                self._state.fault_statuses = tuple(statuses)

    def set_events_fault_ratio(self, ratio: float) -> None:
        """Fail this share of unqueued Get Events requests with 429 / 500 / 503."""
        with self._lock:
            self._state.events_fault_ratio = ratio

    # --- inspection ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far."""
        with self._lock:
            return list(self._state.requests)

    def uploads(self) -> list[RecordedRequest]:
        """The upload requests received so far."""
        return [r for r in self.requests if r.method == "POST" and r.route == UPLOAD]

    def events_requests(self) -> list[RecordedRequest]:
        """The Get Events requests (cursor POSTs and page GETs) received so far."""
        return [r for r in self.requests if r.route == EVENTS]

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
            self._state.stored.clear()
            self._state.cursors.clear()
            self._state.events_queue.clear()

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
                    return self._fault(rng.choice(self._state.fault_statuses))
        return Behaviour.success()

    def _fault(self, fault: Fault) -> Behaviour:
        delay = self._state.timeout_delay
        if fault == "timeout":
            return Behaviour.lost_answer(delay)
        if fault == "hang":
            return Behaviour.hang(delay, then=Behaviour.http_error(504))
        return Behaviour.http_error(int(fault))

    def _next_events_behaviour(self) -> Behaviour:
        with self._lock:
            if self._state.events_queue:
                return self._state.events_queue.pop(0)
            rng = self._state.rng
            if self._state.events_fault_ratio > 0 and rng.random() < self._state.events_fault_ratio:
                return Behaviour.http_error(rng.choice((429, 500, 503)))
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
        self, records: list[Any], behaviour: Behaviour, account_id: str
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
            arrived = time.time()
            self._state.stored.extend(_Stored(account_id, r, arrived) for r in accepted)
        return processed, unprocessed

    # --- the Get Events API -------------------------------------------------------------------

    def _open_cursor(self, account_id: str, body: Any, query: str) -> tuple[int, Any]:
        """`POST 1/events.json`: validate, snapshot the matching events, answer a cursor."""
        params = parse_qs(query)
        raw_size = (params.get("batch_size") or ["10"])[0]
        if not raw_size.isdigit() or not 1 <= int(raw_size) <= MAX_EVENTS_BATCH:
            return 400, {"status": "fail", "error": f"batch_size must be 1..{MAX_EVENTS_BATCH}"}
        if not isinstance(body, dict) or not isinstance(body.get("event_name"), str):
            return 400, {"status": "fail", "error": "event_name is required"}
        days = [_parse_day(body.get("from")), _parse_day(body.get("to"))]
        first, last = days
        if first is None or last is None or first > last:
            return 400, {"status": "fail", "error": "from and to must be dates as YYYYMMDD"}
        name = body["event_name"]
        with self._lock:
            matching = [
                _export(s)
                for s in self._state.stored
                if s.account_id == account_id
                and s.record.get("evtName") == name
                and first <= _event_day(s) <= last
            ]
            cursor = secrets.token_urlsafe(12)
            self._state.cursors[cursor] = _Cursor(account_id, matching, 0, int(raw_size))
        return 200, {"status": "success", "cursor": cursor}

    def _page(self, account_id: str, query: str) -> tuple[int, Any]:
        """`GET 1/events.json?cursor=`: one batch, and the next cursor while more remain."""
        token = (parse_qs(query).get("cursor") or [""])[0]
        with self._lock:
            cursor = self._state.cursors.pop(token, None)
            if cursor is None or cursor.account_id != account_id:
                return 400, {"status": "fail", "error": "Invalid or expired cursor"}
            end = cursor.offset + cursor.batch_size
            out: dict[str, Any] = {
                "status": "success",
                "records": cursor.records[cursor.offset : end],
            }
            if end < len(cursor.records):
                following = secrets.token_urlsafe(12)
                self._state.cursors[following] = _Cursor(
                    account_id, cursor.records, end, cursor.batch_size
                )
                out["next_cursor"] = following
        return 200, out

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
                if len(parts) >= 2 and "/".join(parts[1:]) in (UPLOAD, CONNECT, EVENTS):
                    return parts[0], "/".join(parts[1:])
                return None, path

            def _headers_dict(self) -> dict[str, str]:
                return {k.lower(): v for k, v in self.headers.items()}

            def _wait_for_hang_up(self) -> None:
                """Until the client closes the connection (or the fake stops, or at most
                HANG_UP_DEADLINE seconds): a client that was slow to start its timeout clock
                still times out, and nothing is answered to a client still listening."""
                sock = self.connection
                deadline = time.monotonic() + HANG_UP_DEADLINE
                while time.monotonic() < deadline and not fake._stopping.is_set():
                    readable, _, _ = select.select([sock], [], [], 0.05)
                    if not readable:
                        continue
                    try:
                        if not sock.recv(1, socket.MSG_PEEK):
                            return  # EOF: the client hung up
                    except OSError:
                        return  # reset: the client hung up
                    time.sleep(0.05)  # it sent more: still connected

            def _answer(self, recorded: RecordedRequest, status: int, body: Any) -> None:
                recorded.status = status
                self._send_json(status, body)

            def _respond(self, method: str, body: Any, raw_ok: bool) -> None:
                region, route = self._route()
                headers = self._headers_dict()
                recorded = RecordedRequest(method, self.path, region, headers, body)
                fake._record(recorded)
                known = {("POST", UPLOAD), ("GET", CONNECT), ("POST", EVENTS), ("GET", EVENTS)}
                if (method, route) not in known:
                    self._answer(recorded, 404, {"status": "fail", "error": "Not found"})
                    return
                if route == EVENTS:
                    behaviour = fake._next_events_behaviour()
                else:
                    behaviour = fake._next_behaviour(upload=route == UPLOAD)
                authorised = fake._authorised(region, headers)
                records = body.get("d") if isinstance(body, dict) else None
                early: tuple[int, list[dict[str, Any]]] | None = None
                storable = raw_ok and isinstance(records, list) and len(records) <= 1000
                if behaviour.store_first and authorised and route == UPLOAD and storable:
                    account = headers.get("x-clevertap-account-id", "")
                    early = fake._process(cast(list[Any], records), behaviour, account)
                recorded.delay = behaviour.delay
                if behaviour.delay and fake._stopping.wait(behaviour.delay):
                    return  # shutting down: drop the answer
                if behaviour.outlasts_client:
                    self._wait_for_hang_up()
                    recorded.status = behaviour.status  # what it would have answered
                    self.close_connection = True
                    return
                if not authorised:
                    self._answer(
                        recorded,
                        401,
                        {"status": "fail", "error": "Invalid Credentials", "code": 401},
                    )
                    return
                if behaviour.status != 200:
                    default = {"status": "fail", "error": f"Fake error {behaviour.status}"}
                    body_out = behaviour.body if behaviour.body is not None else default
                    self._answer(recorded, behaviour.status, body_out)
                    return
                account_id = headers.get("x-clevertap-account-id", "")
                query = urlsplit(self.path).query
                if route == CONNECT:
                    self._answer(recorded, 200, {"status": "success"})
                elif route == EVENTS:
                    if method == "POST" and not raw_ok:
                        self._answer(recorded, 400, {"status": "fail", "error": "Malformed body"})
                    elif method == "POST":
                        self._answer(recorded, *fake._open_cursor(account_id, body, query))
                    else:
                        self._answer(recorded, *fake._page(account_id, query))
                elif not raw_ok or not isinstance(records, list):
                    self._answer(
                        recorded, 400, {"status": "fail", "error": "Malformed request body"}
                    )
                elif len(records) > 1000:
                    self._answer(
                        recorded,
                        400,
                        {"status": "fail", "error": "At most 1000 records per request"},
                    )
                else:
                    processed, unprocessed = early or fake._process(records, behaviour, account_id)
                    self._answer(
                        recorded,
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


def _parse_day(value: Any) -> date | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 10_000_101:
        return None
    try:
        return date(value // 10_000, value // 100 % 100, value % 100)
    except ValueError:
        return None


def _event_time(stored: _Stored) -> datetime:
    ts = stored.record.get("ts")
    seconds = ts if isinstance(ts, int | float) and not isinstance(ts, bool) else stored.arrived
    return datetime.fromtimestamp(seconds, UTC)


def _event_day(stored: _Stored) -> date:
    return _event_time(stored).date()


def _export(stored: _Stored) -> dict[str, Any]:
    """A stored upload record in the Get Events API's shape."""
    record = stored.record
    profile = {k: record[k] for k in ("objectId", "identity") if record.get(k)}
    when = _event_time(stored)
    return {
        "profile": profile,
        "ts": int(when.strftime("%Y%m%d%H%M%S")),
        "event_props": dict(record.get("evtData") or {}),
        "session_props": {},
    }


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
