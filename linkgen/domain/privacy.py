"""What stored click and launch records keep of a client's address and user agent.

The one place that turns the full value, which detection and attribution use in memory, into
the stored one (`LINKGEN_CLIENT_ADDRESS_STORAGE`, `LINKGEN_USER_AGENT_STORAGE`):

- address `full`: as received; `truncated`: the network of an IPv4 /24 or an IPv6 /48
  (`203.0.113.0`, `2001:db8:1::`), as Google Analytics' IP anonymisation and most European
  guidance do; `none`: nothing.
- user agent `full`: as received; `parsed`: only the platform, the OS and its version and the
  browser family (`android; Android 14; Chrome Mobile`), nothing that singles out a device
  build or an app install.

Probabilistic matching compares a launch's address with the stored clicks' addresses, so a
launch's address goes through `stored_address` too before it is compared: like with like.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

AddressStorage = Literal["full", "truncated", "none"]
UserAgentStorage = Literal["full", "parsed"]
ADDRESS_STORAGE: tuple[AddressStorage, ...] = ("full", "truncated", "none")
USER_AGENT_STORAGE: tuple[UserAgentStorage, ...] = ("full", "parsed")
IPV4_PREFIX = 24
IPV6_PREFIX = 48


@dataclass(frozen=True)
class StoragePolicy:
    """How much of a client's address and user agent a stored record keeps."""

    address: AddressStorage = "full"
    user_agent: UserAgentStorage = "full"


FULL = StoragePolicy()


def stored_address(ip: str | None, policy: StoragePolicy) -> str | None:
    """The address as a stored record keeps it (None for no or an unparseable address when
    truncating: never keep more than the setting allows)."""
    if ip is None or policy.address == "none":
        return None
    if policy.address == "full":
        return ip
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def parsed_user_agent(
    platform: str, os_family: str | None, os_version: str | None, browser: str | None
) -> str:
    """`platform; OS version; browser family`, leaving out what is unknown."""
    os_part = " ".join(p for p in (os_family, os_version) if p)
    return "; ".join(p for p in (platform, os_part, browser) if p)


def stored_user_agent(
    ua: str | None,
    policy: StoragePolicy,
    *,
    platform: str,
    os_family: str | None,
    os_version: str | None,
    browser: str | None,
) -> str | None:
    """The user agent as a stored record keeps it (the parsed parts come from the caller's
    classification of the full value)."""
    if ua is None or policy.user_agent == "full":
        return ua
    return parsed_user_agent(platform, os_family, os_version, browser)
