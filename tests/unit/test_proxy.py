"""Who the client is behind trusted proxies (linkgen/web/proxy.py) and the settings it reads."""

from __future__ import annotations

from typing import Any

import pytest

from linkgen.config import Settings, SettingsError, parse_trusted_proxies
from linkgen.web.proxy import (
    PEER_ENVIRON_KEY,
    TrustedProxies,
    forwarded_for,
    is_local_client,
    resolve,
)

PROXIES = TrustedProxies(parse_trusted_proxies("10.0.0.0/8, 192.0.2.1 ,2001:db8:ffff::/48"))


def _resolved(peer: str, **headers: str) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REMOTE_ADDR": peer,
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "internal:8000",
    }
    environ.update({"HTTP_" + k.upper(): v for k, v in headers.items()})
    resolve(environ, PROXIES)
    return environ


def test_settings_parse_addresses_and_cidrs_of_both_families() -> None:
    settings = Settings.from_env(
        {
            "LINKGEN_TRUSTED_PROXIES": "127.0.0.1, 10.1.0.0/16,::1,fd00::/8,",
            "LINKGEN_SECRET_KEY": "x",
        }
    )
    assert [str(n) for n in settings.trusted_proxies] == [
        "127.0.0.1/32",
        "10.1.0.0/16",
        "::1/128",
        "fd00::/8",
    ]
    assert Settings.from_env({}).trusted_proxies == ()


@pytest.mark.parametrize("bad", ["10.0.0.300", "nginx", "10.0.0.0/33", "::g"])
def test_a_bad_entry_is_refused_naming_the_variable_and_the_entry(bad: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"LINKGEN_TRUSTED_PROXIES": f"127.0.0.1,{bad}"})
    assert err.value.variable == "LINKGEN_TRUSTED_PROXIES"
    assert repr(bad) in str(err.value)


def test_the_metrics_token_is_checked_and_never_printed() -> None:
    token = "metrics-token-0123456789"
    settings = Settings.from_env({"LINKGEN_METRICS_TOKEN": token})
    assert settings.metrics_token == token
    assert token not in repr(settings)
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"LINKGEN_METRICS_TOKEN": "short"})
    assert err.value.variable == "LINKGEN_METRICS_TOKEN"


def test_from_a_trusted_peer_the_right_most_untrusted_address_wins() -> None:
    # client-sent spoof, the real client (appended by the edge proxy), then an inner proxy
    env = _resolved("10.0.0.2", x_forwarded_for="6.6.6.6, 203.0.113.7, 10.9.9.9")
    assert env["REMOTE_ADDR"] == "203.0.113.7"
    assert env[PEER_ENVIRON_KEY] == "10.0.0.2"


def test_every_header_line_counts_and_ports_and_brackets_are_read() -> None:
    # A server joins repeated header lines with commas (PEP 3333).
    assert _resolved("10.0.0.2", x_forwarded_for="1.1.1.1,203.0.113.8:5555")["REMOTE_ADDR"] == (
        "203.0.113.8"
    )
    env = _resolved("10.0.0.2", x_forwarded_for="[2001:db8::7]:443, 10.0.0.3")
    assert env["REMOTE_ADDR"] == "2001:db8::7"


def test_from_an_untrusted_peer_every_forwarding_header_is_ignored() -> None:
    env = _resolved(
        "198.51.100.4",
        x_forwarded_for="203.0.113.7",
        forwarded="for=203.0.113.7;proto=https",
        x_forwarded_proto="https",
        x_forwarded_host="go.example.com",
    )
    assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"], env["HTTP_HOST"]) == (
        "198.51.100.4",
        "http",
        "internal:8000",
    )


def test_a_chain_of_only_trusted_hops_resolves_to_the_farthest() -> None:
    assert _resolved("10.0.0.2", x_forwarded_for="10.0.0.5, 192.0.2.1")["REMOTE_ADDR"] == (
        "10.0.0.5"
    )
    assert _resolved("10.0.0.2")["REMOTE_ADDR"] == "10.0.0.2"


@pytest.mark.parametrize("junk", ["unknown", "_hidden", "not-an-ip", "", "1.2.3"])
def test_an_entry_that_is_no_address_ends_the_walk_at_the_last_trusted_hop(junk: str) -> None:
    env = _resolved("10.0.0.2", x_forwarded_for=f"203.0.113.7, {junk}, 10.0.0.8")
    assert env["REMOTE_ADDR"] == "10.0.0.8"  # 203.0.113.7 lies beyond what can be vouched for


def test_rfc7239_forwarded_is_read_with_quotes_v6_and_ports() -> None:
    value = 'for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https;by=10.0.0.2, for=10.0.0.9'
    assert forwarded_for(value) == ["6.6.6.6", '"[2001:db8:cafe::17]:4711"', "10.0.0.9"]
    assert _resolved("10.0.0.2", forwarded=value)["REMOTE_ADDR"] == "2001:db8:cafe::17"
    assert _resolved("10.0.0.2", forwarded='For="203.0.113.9"')["REMOTE_ADDR"] == "203.0.113.9"
    obfuscated = "for=203.0.113.7, for=_proxy1;by=10.0.0.2"
    assert _resolved("10.0.0.2", forwarded=obfuscated)["REMOTE_ADDR"] == "10.0.0.2"
    assert _resolved("10.0.0.2", forwarded="proto=https")["REMOTE_ADDR"] == "10.0.0.2"


def test_two_headers_that_disagree_are_both_disbelieved() -> None:
    agree = _resolved("10.0.0.2", x_forwarded_for="203.0.113.7", forwarded="for=203.0.113.7")
    assert agree["REMOTE_ADDR"] == "203.0.113.7"
    # A proxy writing one header may pass the client's own copy of the other through.
    disagree = _resolved("10.0.0.2", x_forwarded_for="6.6.6.6", forwarded="for=203.0.113.7")
    assert disagree["REMOTE_ADDR"] == "10.0.0.2"


def test_scheme_and_host_come_from_a_trusted_peer_only_when_valid() -> None:
    env = _resolved("10.0.0.2", x_forwarded_proto="http, HTTPS", x_forwarded_host="Go.Example.com")
    assert (env["wsgi.url_scheme"], env["HTTP_HOST"]) == ("https", "go.example.com")
    assert _resolved("10.0.0.2", x_forwarded_host="[2001:db8::1]:8443")["HTTP_HOST"] == (
        "[2001:db8::1]:8443"
    )
    for proto in ("ftp", "https;x", "javascript"):
        assert _resolved("10.0.0.2", x_forwarded_proto=proto)["wsgi.url_scheme"] == "http"
    for host in ("evil.com/path", "a b", "x@evil.com", "évil.com", "a" * 300, "host:port"):
        assert _resolved("10.0.0.2", x_forwarded_host=host)["HTTP_HOST"] == "internal:8000"


def test_an_ipv4_mapped_peer_is_its_ipv4_address() -> None:
    assert _resolved("::ffff:10.0.0.2", x_forwarded_for="203.0.113.7")["REMOTE_ADDR"] == (
        "203.0.113.7"
    )


def test_a_very_long_chain_is_cut_not_walked() -> None:
    hops = ", ".join(["203.0.113.1"] + ["10.0.0.1"] * 100)
    assert _resolved("10.0.0.2", x_forwarded_for=hops)["REMOTE_ADDR"] == "10.0.0.1"


@pytest.mark.parametrize(
    ("peer", "headers", "or_proxy", "local"),
    [
        ("127.0.0.1", {}, False, True),
        ("::1", {}, False, True),
        ("127.0.0.2", {}, False, True),
        ("203.0.113.5", {}, True, False),
        # a proxy on loopback that is not trusted: the real client is unknown
        ("127.0.0.1", {"x_forwarded_for": "203.0.113.5"}, True, False),
        ("127.0.0.1", {"forwarded": "for=127.0.0.1"}, True, False),
        # through a trusted proxy: the resolved client decides
        ("10.0.0.2", {"x_forwarded_for": "203.0.113.5"}, True, False),
        ("10.0.0.2", {"x_forwarded_for": "127.0.0.1"}, False, True),
        ("10.0.0.2", {}, True, True),
        ("10.0.0.2", {}, False, False),
    ],
)
def test_who_is_local(peer: str, headers: dict[str, str], or_proxy: bool, local: bool) -> None:
    env = _resolved(peer, **headers)
    assert is_local_client(env, PROXIES, or_proxy=or_proxy) is local
