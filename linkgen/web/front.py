"""The RSGI front of `linkgen serve`: bodies are read on the event loop, then a thread runs WSGI.

granian's own WSGI interface takes one of its blocking threads for a request as soon as the
headers are in, and the app then reads the body on that thread: 41 clients trickling a body in
one byte at a time held all 40 threads and stopped every click and health check (issue 14).
granian has a deadline for the headers (`header_read_timeout`, read by Rust without a thread)
but none for a WSGI body.

So `linkgen serve` runs granian's RSGI interface with this front in the worker's event loop:

- a request's body is read here, on the loop, without a thread, within `body_timeout` seconds
  of the headers (408 and the connection closed when it is late; nothing runs in the app);
  a `Content-Length` over the app's `MAX_CONTENT_LENGTH` is not read at all: Flask answers
  its 413 from the header, as it does today. Only a request whose body is complete takes a
  thread, and the WSGI app reads it from memory;
- the threads come from two pools: the link domain's (clicks, the app association files,
  `/healthz`) and everyone else's (API, SDK, pages), so whatever keeps the API side busy,
  clicks and health checks still have their threads;
- a click whose template and link are in memory takes no thread at all: it is answered here,
  on the loop, by the click handler's `answer` (`clicks`), which awaits the click's group
  commit; the writer wakes the loop once per batch. Waiting on a thread for each click (40 of
  them, each woken by the writer and then waking the loop) cost about a third of the server's
  time in hand-offs, and let 40 waiting clicks hold every thread of the link pool;
- on SQLite, the edge's calls (SDK launches and events, single link creation: `api_on_loop`)
  run on the loop first, through the same WSGI app, with `NO_WAIT` set: a writer there takes
  the write lock at once or raises `WouldWait` before writing anything, and the request then
  runs from the start on a thread. On a thread, each cost 0.13-0.28 ms more CPU (the wake-ups
  meeting app threads that hold the GIL; benchmarks/RESULTS.md). On PostgreSQL every statement
  waits for a round trip, so they take a thread there;
- the WSGI app (Flask behind the click handler and the edge) runs unchanged for the rest: a
  click is still committed before its answer leaves, because the answer is sent only once the
  app has returned it. A streamed answer (the CSV export) is sent chunk by chunk from its
  thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import io
import itertools
import json
import logging
import queue
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from flask import Flask

from linkgen.clicks.handler import Answer, click_route
from linkgen.runtime import get_runtime
from linkgen.storage.db import NO_WAIT, WouldWait
from linkgen.threads import Thread
from linkgen.web.proxy import resolve

log = logging.getLogger("linkgen")

# Threads per pool and web process that may block on the database: clicks wait for their
# group commit on these, so there must be at least as many as concurrent connections to batch
# well. More only adds GIL contention and memory (measured: 33 and 64 give the same throughput).
THREADS = 40

# Bodies held in memory by one web process at once (read, or waiting for a thread), counted by
# their declared length (a chunked body counts as the largest allowed). A request whose body
# does not fit waits, within its body deadline, until others are done. Bodies up to SMALL_BODY
# (every SDK call, a single link) are not counted: with at most MAX_CONNECTIONS connections
# (linkgen/cli/serve.py) they cannot add up to more than that many times SMALL_BODY.
BODY_BUDGET = 256 * 1024 * 1024
SMALL_BODY = 64 * 1024

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Headers = list[tuple[str, str]]
# A click's answer on the loop, or None to run the WSGI app on a thread (see `clicks_on_loop`).
LoopClicks = Callable[[dict[str, Any]], Awaitable[Answer | None]]

# Paths of the link domain besides the clicks themselves (answered from the link pool).
LINK_DOMAIN_PATHS = frozenset(
    {
        "/healthz",
        "/.well-known/apple-app-site-association",
        "/apple-app-site-association",
        "/.well-known/assetlinks.json",
    }
)
_BASE_ENVIRON: dict[str, Any] = {
    "GATEWAY_INTERFACE": "CGI/1.1",
    "SCRIPT_NAME": "",
    "SERVER_SOFTWARE": "Granian",
    "wsgi.errors": sys.stderr,
    "wsgi.input_terminated": True,
    "wsgi.multiprocess": False,
    "wsgi.multithread": True,
    "wsgi.run_once": False,
    "wsgi.version": (1, 0),
}


def api_on_loop(app: Flask) -> Callable[[str], bool] | None:
    """Which `POST` paths run on the event loop first: the edge's (SDK launches and events, single
    link creation), on SQLite only. There they take the write lock at once or not at all
    (`NO_WAIT`); on PostgreSQL every statement waits for a round trip, so they take a thread."""
    runtime = get_runtime(app)
    if runtime.edge is None or runtime.db.dialect != "sqlite":
        return None
    return runtime.edge.answers


def clicks_on_loop(app: Flask) -> LoopClicks | None:
    """The app's clicks as the loop answers them: who the client is, as `ClientAddress` says
    (outermost in the app's WSGI stack; the edge between it and the click handler passes every
    GET on), then the click handler's `answer`."""
    runtime = get_runtime(app)
    handler, proxies = runtime.click_handler, runtime.trusted_proxies
    if handler is None:
        return None
    if not proxies:
        return handler.answer

    async def answer(environ: dict[str, Any]) -> Answer | None:
        resolve(environ, proxies)
        return await handler.answer(environ)

    return answer


class Pool:
    """`size` threads running jobs from one queue, started at the first job.

    Lighter than `concurrent.futures.ThreadPoolExecutor` (no future per job: the job tells
    the event loop itself), which cost a measurable share of a click.
    """

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self.name = name
        self.jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self.threads: list[Thread] = []
        self.lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        """Run `job` on a thread of this pool."""
        if not self.threads:
            self._start()
        self.jobs.put(job)

    def _start(self) -> None:
        with self.lock:
            for n in range(len(self.threads), self.size):
                thread = Thread(target=self._run, name=f"{self.name}-{n}", daemon=True)
                thread.start()
                self.threads.append(thread)

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            try:
                job()
            except Exception:
                log.exception("error in a %s thread", self.name)

    def shutdown(self) -> None:
        """Let each thread finish its job and end; wait for them."""
        with self.lock:
            for _ in self.threads:
                self.jobs.put(None)
            for thread in self.threads:
                thread.join()


class ByteBudget:
    """Bytes that requests reserve before their bodies are read; used on the event loop only."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def take(self, wanted: int) -> int:
        """Reserve `wanted` bytes (at most the whole budget), waiting until they are free."""
        wanted = min(wanted, self.limit)
        while self.used + wanted > self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            finally:
                with contextlib.suppress(ValueError):
                    self.waiters.remove(waiter)
        self.used += wanted
        return wanted

    def give(self, taken: int) -> None:
        """Release what `take` reserved; the waiting requests check again."""
        self.used -= taken
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)


class RSGIFront:
    """An RSGI application running a WSGI app on threads, each request's body read first."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        threads: int,
        body_timeout: float,
        max_body: int,
        clicks: LoopClicks | None = None,
        api: Callable[[str], bool] | None = None,
    ) -> None:
        self.app = app
        self.clicks = clicks
        self.api = api
        self.body_timeout = body_timeout
        self.max_body = max_body
        self.budget = ByteBudget(BODY_BUDGET)
        self.link_pool = Pool(threads, "linkgen-link")
        self.app_pool = Pool(threads, "linkgen-app")

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Nothing to prepare (the pools start their threads on demand)."""

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        """The server is stopping and has answered its requests: let the threads go."""
        self.link_pool.shutdown()
        self.app_pool.shutdown()

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":  # no websockets here
            protocol.close(1008)
            return
        headers = scope.headers
        reserved: list[int] = []  # what this request took from the budget
        try:
            body = b""
            if "content-length" in headers or "transfer-encoding" in headers:
                try:
                    # asyncio.timeout, not wait_for: no task of its own per request.
                    async with asyncio.timeout(self.body_timeout):
                        body = await self._body(headers, protocol, reserved)
                except TimeoutError:
                    protocol.response_bytes(408, *_timeout_answer(self.body_timeout))
                    return
                except Exception:  # noqa: BLE001 - the client went away while sending its body
                    return
            await self._run(scope, headers, body, protocol)
        finally:
            if reserved:
                self.budget.give(reserved[0])

    async def _run(self, scope: Any, headers: Any, body: bytes, protocol: Any) -> None:
        """Run the app on a thread of the request's pool; back once the answer went out."""
        environ = _environ(scope, headers, body)
        method = scope.method
        is_click = click_route(method, environ["PATH_INFO"]) is not None
        if is_click and self.clicks is not None:
            try:
                answer = await self.clicks(environ)
            except Exception:
                log.exception("unhandled error answering %s", environ.get("PATH_INFO"))
                answer = 500, [("content-type", "text/plain")], b"Internal Server Error"
            if answer is not None:
                protocol.response_bytes(*answer)
                return
        if self.api is not None and method == "POST" and self.api(environ["PATH_INFO"]):
            answer = self._answer_on_loop(environ, protocol, asyncio.get_running_loop())
            if answer is not None:
                protocol.response_bytes(*answer)
                return
            environ = _environ(scope, headers, body)  # afresh: the thread runs it from the start
        link_side = is_click or (
            method in ("GET", "HEAD") and environ["PATH_INFO"] in LINK_DOMAIN_PATHS
        )
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        (self.link_pool if link_side else self.app_pool).submit(
            functools.partial(self._call, environ, protocol, loop, done)
        )
        await done

    async def _body(self, headers: Any, protocol: Any, reserved: list[int]) -> bytes:
        """The whole body; none past MAX_CONTENT_LENGTH + 1 bytes (Flask answers 413).

        A body over SMALL_BODY is read once its size is reserved in the budget (appended to
        `reserved`, for the caller to give back).
        """
        length = headers.get("content-length")
        if length is None and "chunked" not in headers.get("transfer-encoding", "").lower():
            return b""
        declared = self.max_body + 1  # chunked: as large as it may be
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return b""  # Flask decides what a malformed length means
            if declared <= 0 or declared > self.max_body:
                return b""  # Flask's 413 comes from the header alone
        if declared > SMALL_BODY:
            reserved.append(await self.budget.take(declared))
        if length is not None:
            return bytes(await protocol())  # at most MAX_CONTENT_LENGTH: read in one call
        chunks: list[bytes] = []
        size = 0
        async for chunk in protocol:
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_body:
                break
        return b"".join(chunks)

    def _answer_on_loop(
        self, environ: dict[str, Any], protocol: Any, loop: asyncio.AbstractEventLoop
    ) -> tuple[int, Headers, bytes] | None:
        """The WSGI app's answer, run here on the loop where it may not wait for the database's
        write lock (`NO_WAIT`); None when it would have (`WouldWait`, raised before anything was
        written): then a thread runs the request instead."""
        token = NO_WAIT.set(True)
        try:
            return self._answer(environ, protocol, loop)
        except WouldWait:
            return None
        finally:
            NO_WAIT.reset(token)

    def _call(
        self,
        environ: dict[str, Any],
        protocol: Any,
        loop: asyncio.AbstractEventLoop,
        done: asyncio.Future[None],
    ) -> None:
        """Run the WSGI app and send its answer (on a pool thread), then tell the loop."""
        try:
            answer = self._answer(environ, protocol, loop)
            if answer is not None:
                protocol.response_bytes(*answer)
        finally:
            loop.call_soon_threadsafe(done.set_result, None)

    def _answer(
        self, environ: dict[str, Any], protocol: Any, loop: asyncio.AbstractEventLoop
    ) -> tuple[int, Headers, bytes] | None:
        """Run the WSGI app; its answer, or None once it was streamed."""
        started: list[Any] = []

        def start_response(status: str, headers: Headers, exc_info: Any = None) -> None:
            started[:] = [int(status.split(" ", 1)[0]), headers]

        try:
            result = self.app(environ, start_response)
        except WouldWait:
            raise  # tried on the loop: a thread answers it (`_answer_on_loop`)
        except Exception:
            log.exception("unhandled error answering %s", environ.get("PATH_INFO"))
            return 500, [("content-type", "text/plain")], b"Internal Server Error"
        try:
            chunks: list[bytes] = []
            iterator = iter(result)
            for chunk in iterator:
                if chunk:
                    chunks.append(chunk)
                if len(chunks) > 1:  # a streamed answer: send it as it comes
                    self._stream(protocol, loop, started, chunks, iterator)
                    return None
            return started[0], started[1], b"".join(chunks)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    @staticmethod
    def _stream(
        protocol: Any,
        loop: asyncio.AbstractEventLoop,
        started: list[Any],
        chunks: list[bytes],
        rest: Iterable[bytes],
    ) -> None:
        """Send a streamed answer from this thread, each chunk once the last has gone."""

        async def _open() -> Any:
            return protocol.response_stream(started[0], started[1])

        async def _send(transport: Any, chunk: bytes) -> None:
            await transport.send_bytes(chunk)  # an awaitable, not a coroutine

        transport = asyncio.run_coroutine_threadsafe(_open(), loop).result()
        for chunk in itertools.chain(chunks, rest):
            if chunk:
                asyncio.run_coroutine_threadsafe(_send(transport, chunk), loop).result()


def _environ(scope: Any, headers: Any, body: bytes) -> dict[str, Any]:
    """The WSGI environ granian's WSGI interface builds, with the body already in memory."""
    server_host, _, server_port = scope.server.rpartition(":")
    environ = dict(_BASE_ENVIRON)
    environ.update(
        {
            "SERVER_PROTOCOL": "HTTP/" + scope.http_version,
            "SERVER_NAME": server_host.strip("[]"),
            "SERVER_PORT": server_port,
            "REMOTE_ADDR": scope.client.rpartition(":")[0].strip("[]"),
            "REQUEST_METHOD": scope.method,
            # RSGI gives the path percent-decoded as UTF-8; WSGI wants the bytes as latin-1
            "PATH_INFO": scope.path.encode("utf-8", "surrogateescape").decode("latin-1"),
            "QUERY_STRING": scope.query_string,
            "wsgi.url_scheme": scope.scheme,
            "wsgi.input": io.BytesIO(body),
        }
    )
    for name, value in headers.items():
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
            continue
        if name == "content-length":
            environ["CONTENT_LENGTH"] = value
            continue
        key = "HTTP_" + name.upper().replace("-", "_")
        if key in environ:
            environ[key] += (";" if name == "cookie" else ",") + value
        else:
            environ[key] = value
    if "HTTP_HOST" not in environ and scope.authority:
        environ["HTTP_HOST"] = scope.authority
    return environ


def _timeout_answer(seconds: float) -> tuple[Headers, bytes]:
    """The 408 for a body that did not arrive in time (the connection is closed after it)."""
    body = json.dumps(
        {
            "error": {
                "code": "request_timeout",
                "message": f"the request body did not arrive within {seconds:g} seconds",
            }
        }
    ).encode()
    headers = [
        ("content-type", "application/json"),
        ("connection", "close"),
        ("x-content-type-options", "nosniff"),
    ]
    return headers, body
