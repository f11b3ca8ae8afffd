"""App HTTP clients' user agents, the Darwin -> iOS table, and when two OS versions agree."""

from __future__ import annotations

import pytest

from linkgen.domain.errors import InvalidParameter
from linkgen.domain.useragents import (
    DARWIN_TO_IOS,
    OsInfo,
    check_os_version,
    darwin_to_ios,
    os_versions_agree,
    parse_app_user_agent,
    resolve_launch_os,
)

# Real user agents of apps' own HTTP stacks, as they reach an attribution server.
APP_USER_AGENTS = [
    # URLSession on iOS: only the Darwin version names the release.
    ("Shop/3.2 CFNetwork/1494.0.7 Darwin/23.4.0", OsInfo("ios", "17.4")),
    ("Shop/1.0 CFNetwork/1490.0.4 Darwin/23.2.0", OsInfo("ios", "17.2")),
    ("Shop/3.2.1 CFNetwork/1410.0.3 Darwin/22.4.0", OsInfo("ios", "16.4")),
    ("Shop/42 CFNetwork/1335.0.3 Darwin/21.6.0", OsInfo("ios", "15")),  # 15.6 .. 15.8
    ("Shop/42 CFNetwork/1240.0.4 Darwin/20.6.0", OsInfo("ios", "14")),  # 14.7 or 14.8
    ("Shop/42 CFNetwork/1209 Darwin/20.2.0", OsInfo("ios", "14.3")),
    ("Shop/7 CFNetwork/1121.2.2 Darwin/19.3.0", OsInfo("ios", "13.3")),
    ("Shop/7 CFNetwork/978.0.7 Darwin/18.7.0", OsInfo("ios", "12.4")),
    ("Shop/7 CFNetwork/975.0.3 Darwin/18.2.0", OsInfo("ios", "12.1")),
    ("Shop/9 CFNetwork/1568.100.1 Darwin/24.0.0", OsInfo("ios", "18.0")),
    ("Shop/9 CFNetwork/3826.500.131 Darwin/24.5.0", OsInfo("ios", "18.5")),
    ("Shop/9 CFNetwork/3860.100.1 Darwin/25.0.0", OsInfo("ios", "26.0")),
    # App names with spaces (percent-encoded by CFNetwork) and build numbers.
    ("My%20Shop/2024.11.3 CFNetwork/1496.0.7 Darwin/23.5.0", OsInfo("ios", "17.5")),
    # A point release the table does not list yet: the major is still known.
    ("Shop/9 CFNetwork/3826.600.41 Darwin/24.9.0", OsInfo("ios", "18")),
    # A Darwin major the table does not know yet (a new iOS): iOS, version unknown.
    ("Shop/9 CFNetwork/4000.0.1 Darwin/27.0.0", OsInfo("ios", None)),
    # Before iOS 12: iOS, version unknown.
    ("Shop/1 CFNetwork/894 Darwin/17.4.0", OsInfo("ios", None)),
    # A Mac app's URLSession names its architecture: not iOS.
    ("Shop/3.2 CFNetwork/1494.0.7 Darwin/23.4.0 (x86_64)", OsInfo("desktop", None)),
    # HTTP libraries that name iOS themselves.
    ("Shop/3.2 (com.example.shop; build:42; iOS 17.4.1) Alamofire/5.8.0", OsInfo("ios", "17.4.1")),
    ("Shop/3.2 (iPhone; iOS 16.7.2; Scale/3.00)", OsInfo("ios", "16.7.2")),
    # Android: Dalvik names the release; okhttp names nothing.
    (
        "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UQ1A.240205.004)",
        OsInfo("android", "14"),
    ),
    ("Dalvik/2.1.0 (Linux; U; Android 8.1.0; SM-J710F Build/M1AJQ)", OsInfo("android", "8.1.0")),
    (
        "Dalvik/2.1.0 (Linux; U; Android 13; SM-S911B Build/TP1A.220624.014)",
        OsInfo("android", "13"),
    ),
    ("okhttp/4.12.0", OsInfo("android", None)),
    ("okhttp/3.14.9", OsInfo("android", None)),
    ("Shop/3.2 (Android 12; Pixel 6)", OsInfo("android", "12")),
]


@pytest.mark.parametrize(("ua", "expected"), APP_USER_AGENTS)
def test_app_user_agents(ua: str, expected: OsInfo) -> None:
    assert parse_app_user_agent(ua) == expected


@pytest.mark.parametrize(
    "ua",
    [
        None,
        "",
        # Browsers and web views are the browser parser's job.
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UQ1A.240205.004; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/122.0.6261.64 Mobile Safari/537.36",
        # Clients that name no platform.
        "Dart/3.2 (dart:io)",
        "python-httpx/0.27.0",
    ],
)
def test_browsers_and_unknown_clients_are_left_to_the_browser_parser(ua: str | None) -> None:
    assert parse_app_user_agent(ua) is None


def test_the_darwin_table_is_ordered_and_each_major_is_one_ios_major() -> None:
    keys = list(DARWIN_TO_IOS)
    assert keys == sorted(keys)
    majors: dict[int, set[str]] = {}
    for (darwin, _), ios in DARWIN_TO_IOS.items():
        majors.setdefault(darwin, set()).add(ios.split(".")[0])
    assert all(len(ios) == 1 for ios in majors.values())
    # iOS 12 through 18, then 26 (Apple's year numbering): every one is covered.
    assert sorted(int(next(iter(v))) for v in majors.values()) == [12, 13, 14, 15, 16, 17, 18, 26]


@pytest.mark.parametrize(
    ("darwin", "ios"),
    [((23, 4), "17.4"), ((20, 0), "14"), ((24, 7), "18"), ((26, 0), None), ((17, 7), None)],
)
def test_darwin_to_ios(darwin: tuple[int, int], ios: str | None) -> None:
    assert darwin_to_ios(*darwin) == ios


# (platform, click's browser version, launch's version, agree?)
VERSION_CASES = [
    ("ios", "17.4", "17.4", True),
    ("ios", "17.4.1", "17.4", True),  # patch levels are ignored
    ("ios", "17.4", "17", True),  # an ambiguous Darwin version knows only the major
    ("ios", "17.4", "17.5", False),
    ("ios", "16.7", "17.4", False),
    ("ios", "16", "17", False),
    ("ios", None, "17.4", True),  # unknown on one side is no mismatch
    ("ios", "17.4", None, True),
    ("ios", "17.x", "16.0", True),  # not a number: unknown
    # iOS 26 browsers still say 18_6 / 18_7.
    ("ios", "18.6", "26.1", True),
    ("ios", "18.7", "26.2", True),
    ("ios", "18.6", "18.6", True),
    ("ios", "18.6", "18", True),
    ("ios", "18.6", "18.5", False),
    ("ios", "18.6", "17.4", False),
    ("ios", "18.5", "26.0", False),
    # Chrome on Android says "Android 10" on every device.
    ("android", "10", "14", True),
    ("android", "13", "14", False),
    ("android", "14", "14", True),
    ("android", "8.1.0", "8.1", True),
    ("android", "8.0", "8.1", False),
]


@pytest.mark.parametrize(("platform", "click", "launch", "agree"), VERSION_CASES)
def test_os_versions_agree(
    platform: str, click: str | None, launch: str | None, agree: bool
) -> None:
    assert os_versions_agree(platform, click, launch) is agree


@pytest.mark.parametrize("value", ["17", "17.4", "17.4.1", " 14 ", "10.0.0.1"])
def test_check_os_version_accepts_version_numbers(value: str) -> None:
    assert check_os_version(value) == value.strip()


@pytest.mark.parametrize("value", ["", "seventeen", "17.", ".4", "17_4", "17.4.1.2.3", "1234"])
def test_check_os_version_refuses_the_rest(value: str) -> None:
    with pytest.raises(InvalidParameter) as raised:
        check_os_version(value)
    assert raised.value.field == "os_version"


IOS_17 = OsInfo("ios", "17.4")


@pytest.mark.parametrize(
    ("declared", "version", "ua_os", "app", "expected", "sources"),
    [
        # The body wins over the user agent, field by field.
        ("ios", "17.5", IOS_17, "ios", OsInfo("ios", "17.5"), ("body", "body")),
        (None, "17.5", IOS_17, "ios", OsInfo("ios", "17.5"), ("user_agent", "body")),
        ("ios", None, IOS_17, "ios", OsInfo("ios", "17.4"), ("body", "user_agent")),
        (None, None, IOS_17, "ios", IOS_17, ("user_agent", "user_agent")),
        # No mobile user agent: the app's platform, version unknown.
        (None, None, OsInfo("desktop", None), "ios", OsInfo("ios", None), ("app", None)),
        (None, None, None, "android", OsInfo("android", None), ("app", None)),
        (
            None,
            None,
            OsInfo("android", None),
            "android",
            OsInfo("android", None),
            ("user_agent", None),
        ),
        # A user agent of the other platform lends no version to the declared one.
        ("ios", None, OsInfo("android", "14"), "ios", OsInfo("ios", None), ("body", None)),
        (None, None, None, "web", OsInfo("other", None), (None, None)),
    ],
)
def test_resolve_launch_os(
    declared: str | None,
    version: str | None,
    ua_os: OsInfo | None,
    app: str,
    expected: OsInfo,
    sources: tuple[str | None, str | None],
) -> None:
    got, where = resolve_launch_os(
        declared_platform=declared, declared_version=version, user_agent_os=ua_os, app_platform=app
    )
    assert got == expected
    assert (where["platform"], where["os_version"]) == sources


def test_a_declared_os_of_the_other_platform_is_refused() -> None:
    with pytest.raises(InvalidParameter) as raised:
        resolve_launch_os(
            declared_platform="android",
            declared_version=None,
            user_agent_os=None,
            app_platform="ios",
        )
    assert raised.value.field == "os"
