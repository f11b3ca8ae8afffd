"""In-process token buckets for the endpoints worth throttling.

An app-level `before_request` looks the endpoint name up in `ENDPOINT_BUCKETS`; everything else
(the link domain's clicks above all: they never reach Flask) pays nothing. Link creation is keyed
by API key (a hash of the Authorization header, so no raw key is kept), the SDK endpoints by app
and client IP. A throttled request gets 429 `rate_limited` with `Retry-After` (whole seconds).

Limits are per process (each server process has its own buckets) and generous by default: they
stop a runaway script, not a benchmark. Change them on the running app with
`rate_limiter(app).configure("link_create", rate=..., burst=...)`, or at start through
`Settings.extra["rate_limits"] = {"link_create": (rate, burst), ...}`.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flask import Flask, request

from linkgen.domain.errors import Throttled
from linkgen.domain.validate import bearer_token
from linkgen.runtime import get_runtime


@dataclass(frozen=True)
class Limit:
    """`rate` tokens a second, at most `burst` saved up."""

    rate: float
    burst: float


DEFAULT_LIMITS: dict[str, Limit] = {
    "link_create": Limit(rate=3000.0, burst=6000.0),  # per API key
    "link_bulk": Limit(rate=50.0, burst=100.0),  # per API key; a request holds up to many rows
    "sdk": Limit(rate=2000.0, burst=4000.0),  # per app and client IP (carrier NATs share IPs)
}

ENDPOINT_BUCKETS: dict[str, str] = {
    "api.create_link": "link_create",
    "api.create_links_bulk": "link_bulk",
    "sdk.post_launch": "sdk",
    "sdk.post_event": "sdk",
}

MAX_KEYS = 100_000  # buckets kept per limit before idle (full) ones are dropped


class RateLimiter:
    """Token buckets per (limit name, caller key); thread-safe."""

    def __init__(
        self,
        limits: Mapping[str, Limit] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits: dict[str, Limit] = dict(DEFAULT_LIMITS)
        self.limits.update(limits or {})
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, dict[str, list[float]]] = {}

    def configure(self, name: str, *, rate: float, burst: float) -> None:
        """Change one limit (its buckets start full again)."""
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        with self._lock:
            self.limits[name] = Limit(rate=rate, burst=burst)
            self._buckets.pop(name, None)

    def reset(self) -> None:
        """Forget every bucket."""
        with self._lock:
            self._buckets.clear()

    def take(self, name: str, key: str) -> float:
        """Take a token: 0.0 when allowed, else the seconds until one is available."""
        limit = self.limits.get(name)
        if limit is None:
            return 0.0
        now = self.clock()
        with self._lock:
            buckets = self._buckets.setdefault(name, {})
            bucket = buckets.get(key)
            if bucket is None:
                if len(buckets) >= MAX_KEYS:
                    self._prune(buckets, limit, now)
                bucket = buckets[key] = [limit.burst, now]
            tokens = min(limit.burst, bucket[0] + (now - bucket[1]) * limit.rate)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return 0.0
            bucket[0] = tokens
            return (1.0 - tokens) / limit.rate

    def give_back(self, name: str, key: str) -> None:
        """Return the token `take` just granted (the request was handed on before it ran)."""
        limit = self.limits.get(name)
        if limit is None:
            return
        with self._lock:
            bucket = self._buckets.get(name, {}).get(key)
            if bucket is not None:
                bucket[0] = min(limit.burst, bucket[0] + 1.0)

    @staticmethod
    def _prune(buckets: dict[str, list[float]], limit: Limit, now: float) -> None:
        refill = limit.burst / limit.rate
        for key in [k for k, (_, seen) in buckets.items() if now - seen >= refill]:
            del buckets[key]
        if len(buckets) >= MAX_KEYS:  # every caller is active: start over rather than grow
            buckets.clear()


def rate_limiter(app: Flask | None = None) -> RateLimiter:
    """The app's rate limiter."""
    limiter = get_runtime(app).rate_limiter
    assert limiter is not None, "ratelimit.init_app(app) has not run"
    return limiter


def _caller_key(bucket: str) -> str:
    return caller_key(
        bucket,
        remote_addr=request.remote_addr,
        app_id=(request.view_args or {}).get("app_id", ""),
        authorization=request.headers.get("Authorization", ""),
    )


def caller_key(bucket: str, *, remote_addr: str | None, app_id: str, authorization: str) -> str:
    """Whose bucket a request takes from: app and client IP for the SDK, else the API key."""
    ip = remote_addr or "-"
    if bucket == "sdk":
        return f"{app_id}|{ip}"
    token = bearer_token(authorization)
    if token is None:  # refused by authentication anyway: the address's bucket
        return f"ip:{ip}"
    return "key:" + hashlib.sha256(token.encode()).hexdigest()


def init_app(app: Flask) -> None:
    """Create the app's limiter and throttle the endpoints in ENDPOINT_BUCKETS."""
    runtime = get_runtime(app)
    configured = runtime.settings.extra.get("rate_limits") or {}
    limiter = RateLimiter({name: Limit(*pair) for name, pair in configured.items()})
    runtime.rate_limiter = limiter

    @app.before_request
    def _throttle() -> None:
        bucket = ENDPOINT_BUCKETS.get(request.endpoint or "")
        if bucket is not None:
            throttle(limiter, bucket, _caller_key(bucket))


def throttle(limiter: RateLimiter, bucket: str, key: str) -> None:
    """Take a token from `key`'s bucket, or raise `Throttled` with the seconds to wait (the
    Flask hook above and linkgen/web/edge.py both call it)."""
    wait = limiter.take(bucket, key)
    if wait > 0.0:
        raise Throttled(
            "Too many requests; slow down and retry.", retry_after=max(1, math.ceil(wait))
        )
