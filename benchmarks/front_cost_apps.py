"""The bare apps `front_cost.py --bare` serves: no linkgen work, only what serving a request costs.

Each reads a small JSON body and answers 200 with a small JSON body:

- `wsgi`: a WSGI function, for granian's WSGI interface (the body read on granian's thread);
- `front`: the same function behind linkgen's RSGI front (linkgen/web/front.py), as
  `linkgen serve` runs every request that is not a click in memory: the body read on the loop,
  then a pool thread;
- `loop_body`: an RSGI app answering on the loop once it has read the body (no thread);
- `loop_bare`: an RSGI app answering on the loop without reading the body.

Imported by granian in the benchmark's subprocesses (`benchmarks.front_cost_apps:front`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from linkgen.web.front import RSGIFront

BODY = b'{"ok":true}'
HEADERS = [("content-type", "application/json")]


def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Read the body, answer 200."""
    environ["wsgi.input"].read()
    start_response("200 OK", [*HEADERS, ("content-length", str(len(BODY)))])
    return [BODY]


class _Loop:
    """An RSGI app answering on the event loop, with or without reading the body first."""

    def __init__(self, *, read_body: bool) -> None:
        self.read_body = read_body

    def __rsgi_init__(self, loop: Any) -> None:
        """Nothing to prepare."""

    def __rsgi_del__(self, loop: Any) -> None:
        """Nothing to let go."""

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if self.read_body:
            await protocol()
        protocol.response_bytes(200, HEADERS, BODY)


front = RSGIFront(wsgi, threads=40, body_timeout=10.0, max_body=1024 * 1024)
loop_body = _Loop(read_body=True)
loop_bare = _Loop(read_body=False)
