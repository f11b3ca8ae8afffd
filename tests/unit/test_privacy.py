"""What stored records keep of an address and a user agent (linkgen/domain/privacy.py)."""

from __future__ import annotations

import pytest

from linkgen.config import Settings, SettingsError
from linkgen.domain.privacy import StoragePolicy, stored_address, stored_user_agent

TRUNCATED = StoragePolicy(address="truncated")
NONE = StoragePolicy(address="none")
PARSED = StoragePolicy(user_agent="parsed")


@pytest.mark.parametrize(
    ("ip", "policy", "stored"),
    [
        ("203.0.113.77", StoragePolicy(), "203.0.113.77"),
        ("203.0.113.77", TRUNCATED, "203.0.113.0"),
        ("203.0.113.0", TRUNCATED, "203.0.113.0"),
        ("2001:db8:abcd:12:1:2:3:4", TRUNCATED, "2001:db8:abcd::"),
        ("::ffff:198.51.100.7", TRUNCATED, "198.51.100.0"),  # an IPv4 client via an IPv6 socket
        ("not-an-address", TRUNCATED, None),  # never keep more than the setting allows
        ("203.0.113.77", NONE, None),
        (None, TRUNCATED, None),
    ],
)
def test_stored_address(ip: str | None, policy: StoragePolicy, stored: str | None) -> None:
    assert stored_address(ip, policy) == stored


UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro Build/UD1A) Chrome/125.0 Mobile Safari/537.36"


@pytest.mark.parametrize(
    ("policy", "parts", "stored"),
    [
        (StoragePolicy(), ("android", "Android", "14", "Chrome Mobile"), UA),
        (
            PARSED,
            ("android", "Android", "14", "Chrome Mobile"),
            "android; Android 14; Chrome Mobile",
        ),
        (PARSED, ("ios", "iOS", "17.4", None), "ios; iOS 17.4"),
        (PARSED, ("other", None, None, None), "other"),
    ],
)
def test_stored_user_agent(
    policy: StoragePolicy, parts: tuple[str, str | None, str | None, str | None], stored: str
) -> None:
    platform, os_family, os_version, browser = parts
    got = stored_user_agent(
        UA, policy, platform=platform, os_family=os_family, os_version=os_version, browser=browser
    )
    assert got == stored


def test_no_user_agent_stays_none() -> None:
    assert (
        stored_user_agent(
            None, PARSED, platform="other", os_family=None, os_version=None, browser=None
        )
        is None
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [("LINKGEN_CLIENT_ADDRESS_STORAGE", "anonymised"), ("LINKGEN_USER_AGENT_STORAGE", "none")],
)
def test_bad_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({variable: value})
    assert info.value.variable == variable
