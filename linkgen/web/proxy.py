"""Who the client is behind a reverse proxy: the one place linkgen decides it.

`ClientAddress` is the outermost WSGI layer (installed by linkgen/factory.py in front of the
edge and the click handler). When the TCP peer (`REMOTE_ADDR`) is one of
`LINKGEN_TRUSTED_PROXIES`, it rewrites the environ before anything else looks at it:

* `REMOTE_ADDR`: the right-most address of `X-Forwarded-For` (every header line, comma lists)
  that is not itself a trusted proxy; with no `X-Forwarded-For`, the same walk over RFC 7239
  `Forwarded` (`for=`, quoted, `"[v6]:port"`). An entry that is no address (garbage, `unknown`,
  an obfuscated `_name`) ends the walk: what lies left of it cannot be vouched for, so the
  client is the last trusted hop reached. When both headers are present and name different
  clients, neither is believed (a proxy that writes one may pass the client's own copy of the
  other through) and the client is the peer.
* `wsgi.url_scheme` from the right-most `X-Forwarded-Proto` when it is `http` or `https`;
* `HTTP_HOST` from the right-most `X-Forwarded-Host` when it is a valid host[:port].

From any other peer these headers are ignored entirely, so nobody can choose the address their
clicks, launches, rate-limit bucket and login throttle are filed under. Everything downstream
(click records, attribution's request ip, burst detection, rate limits, the login throttle, the
access log, HSTS and the Secure cookie, the preview's og:url) reads `REMOTE_ADDR` and the scheme
and host from the environ, so they all see the same client. The TCP peer stays in the environ
under `PEER_ENVIRON_KEY`.

werkzeug's `ProxyFix` is not used: it believes a fixed number of hops from whoever connects (a
client that reaches the server directly, bypassing the proxy, chooses its address), knows no
trusted address list, and does not read `Forwarded`.

`is_local_client` is the check for the doors only the machine itself (or its proxies) may open,
/metrics and /setup: the resolved client must be loopback (or, where asked, a trusted proxy),
and a request that carries forwarding headers its peer is not trusted to send is never local,
because a proxy on loopback that is not listed in `LINKGEN_TRUSTED_PROXIES` would otherwise make
every public client look like 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from flask import Flask, request

from linkgen.config import Network
from linkgen.runtime import get_runtime

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The TCP peer's address, as the server gave it (before any rewrite here).
PEER_ENVIRON_KEY = "linkgen.peer_addr"
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")
MAX_HOPS = 32  # entries looked at, right to left: a longer chain is cut, not walked
HOST_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?"
)


@lru_cache(maxsize=4096)
def parse_address(raw: str) -> IPAddress | None:
    """An address from a forwarding entry: `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]:80`."""
    value = raw.strip().strip('"').strip()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        value = value[1:end]
    elif value.count(":") == 1:  # IPv4 with a port (IPv6 has at least two colons)
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


class TrustedProxies:
    """The networks of `LINKGEN_TRUSTED_PROXIES`, with a cached membership test."""

    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)
        self.trusts_address = lru_cache(maxsize=4096)(self._trusts)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def _trusts(self, addr: IPAddress) -> bool:
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr.version == n.version and addr in n for n in self.networks)

    def trusts(self, raw: str | None) -> bool:
        """Is this address (a string, as REMOTE_ADDR holds it) a trusted proxy?"""
        addr = parse_address(raw) if raw else None
        return addr is not None and self.trusts_address(addr)

    def client_from(self, peer: str, hops: list[str]) -> str:
        """Walk `hops` (left = farthest) from the right; the first untrusted address wins."""
        client = peer
        for raw in reversed(hops[-MAX_HOPS:]):
            addr = parse_address(raw)
            if addr is None:
                break  # not an address: nothing left of it can be vouched for
            client = str(addr)
            if not self.trusts_address(addr):
                break
        return client


def _list(value: str | None) -> list[str]:
    return [part.strip() for part in value.split(",")] if value else []


def forwarded_for(value: str | None) -> list[str]:
    """The `for=` values of an RFC 7239 `Forwarded` header, in order (left = farthest).

    An element without `for=` counts as an unknown hop, so the walk stops there too.
    """
    hops: list[str] = []
    for element in _split_quoted(value or "", ","):
        found = "unknown"
        for pair in _split_quoted(element, ";"):
            name, eq, raw = pair.partition("=")
            if eq and name.strip().lower() == "for":
                found = raw.strip()
        hops.append(found)
    return hops


def _split_quoted(value: str, sep: str) -> list[str]:
    """Split on `sep` outside double quotes (a quoted `for="[::1]:80"` holds colons)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def resolve(environ: dict[str, Any], proxies: TrustedProxies) -> None:
    """Rewrite REMOTE_ADDR, scheme and host from a trusted peer's headers (in place).

    Once per request: an environ already resolved is left alone (a click the event loop could
    not answer goes on to the WSGI stack, `ClientAddress` included, already resolved)."""
    if PEER_ENVIRON_KEY in environ:
        return
    peer = environ.get("REMOTE_ADDR")
    environ[PEER_ENVIRON_KEY] = peer
    if not peer or not proxies.trusts(str(peer)):
        return
    peer = str(peer)
    xff = environ.get("HTTP_X_FORWARDED_FOR")
    fwd = environ.get("HTTP_FORWARDED")
    if xff is not None:
        client = proxies.client_from(peer, _list(xff))
        if fwd is not None and proxies.client_from(peer, forwarded_for(fwd)) != client:
            client = peer  # two stories: believe neither
    elif fwd is not None:
        client = proxies.client_from(peer, forwarded_for(fwd))
    else:
        client = peer
    environ["REMOTE_ADDR"] = client
    protos = _list(environ.get("HTTP_X_FORWARDED_PROTO"))
    if protos and protos[-1].lower() in ("http", "https"):
        environ["wsgi.url_scheme"] = protos[-1].lower()
    hosts = _list(environ.get("HTTP_X_FORWARDED_HOST"))
    if hosts and len(hosts[-1]) <= 260 and HOST_RE.fullmatch(hosts[-1]):
        environ["HTTP_HOST"] = hosts[-1].lower()


class ClientAddress:
    """WSGI middleware: `resolve` every request, then pass it on."""

    def __init__(self, app: WSGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        resolve(environ, self.proxies)
        return self.app(environ, start_response)


def is_local_client(
    environ: dict[str, Any], proxies: TrustedProxies, *, or_proxy: bool = False
) -> bool:
    """The resolved client is this machine (loopback) or, with `or_proxy`, a trusted proxy;
    never when forwarding headers came from a peer not trusted to send them."""
    peer = environ.get(PEER_ENVIRON_KEY, environ.get("REMOTE_ADDR"))
    if not proxies.trusts(peer) and any(environ.get(h) for h in FORWARDING_HEADERS):
        return False  # an unlisted proxy forwarded it: the real client is unknown
    client = parse_address(str(environ.get("REMOTE_ADDR") or ""))
    if client is None:
        return False
    if isinstance(client, ipaddress.IPv6Address) and client.ipv4_mapped is not None:
        client = client.ipv4_mapped
    return client.is_loopback or (or_proxy and proxies.trusts_address(client))


def trusted_proxies(app: Flask | None = None) -> TrustedProxies:
    """The app's trusted proxies (empty when none are configured)."""
    proxies = get_runtime(app).trusted_proxies
    assert proxies is not None, "proxy.install(app) has not run"
    return proxies


def request_is_local(*, or_proxy: bool = False) -> bool:
    """`is_local_client` for the current Flask request."""
    return is_local_client(request.environ, trusted_proxies(), or_proxy=or_proxy)


def install(app: Flask) -> None:
    """Put `ClientAddress` outermost (call last, after the edge and the click handler).

    With no trusted proxy nothing is installed: every forwarding header is ignored anyway.
    """
    runtime = get_runtime(app)
    proxies = TrustedProxies(runtime.settings.trusted_proxies)
    runtime.trusted_proxies = proxies
    if proxies:
        app.wsgi_app = ClientAddress(app.wsgi_app, proxies)  # type: ignore[method-assign]
