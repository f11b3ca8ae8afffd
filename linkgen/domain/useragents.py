"""Platform and OS version of an app launch, and when two OS versions count as the same device.

A launch reaches linkgen from the app's own HTTP client, not from a browser, so its user agent is
not a browser's (the contract, "Field behaviour / SDK launches"):

* iOS apps using URLSession send ``Shop/3.2 CFNetwork/1494.0.7 Darwin/23.4.0``: no iOS version,
  only the Darwin kernel version, which `DARWIN_TO_IOS` maps to iOS (Darwin 23.4 = iOS 17.4).
  Some HTTP libraries name iOS themselves (Alamofire: ``Shop/3.2 (...; iOS 17.4.1) Alamofire/5.8``).
  A ``(x86_64)`` / ``Macintosh`` token marks a Mac app: platform desktop, version unknown.
* Android apps send Dalvik's ``Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/...)`` (Android
  14) or okhttp's ``okhttp/4.12.0``, which names no OS at all: platform android, version unknown.

`parse_app_user_agent` reads those; a user agent starting ``Mozilla/`` is a browser's (or a web
view's) and is left to the browser parser (linkgen/clicks/detect.py), as are unknown clients.
`resolve_launch_os` then picks the launch's platform and version: the body's `os` / `os_version`
first, else the user agent's, else the app's own platform with an unknown version.

Darwin versions (our choice where Apple publishes no table; maintained by hand, one row per iOS
release, from the Darwin version each release's CFNetwork user agent carries):

* A Darwin major.minor shared by several iOS minors (Darwin 20.0 is iOS 14.0 and 14.1; the last
  minor of each major carries the later point releases: Darwin 23.6 is 17.6 and 17.7) maps to
  the iOS major only ("14"), so either minor still agrees with it.
* A minor of a known major that is not in the table yet (a new point release) maps to the major.
* A Darwin major that is not in the table (a new iOS) maps to no version: the platform is still
  iOS and an unknown version never causes a mismatch, so matching goes on by address and
  platform until a row is added. Darwin majors before 18 (iOS 11 and older) are unknown too.

Comparing versions (`os_versions_agree`): two versions agree unless both are known and they
differ in the major, or both know the minor and the minors differ; patch levels are ignored
("17.4.1" agrees with "17.4" and with "17"). Two frozen browser versions are read as unknown:

* iOS 26 Safari (and the other iOS 26 browsers, which share its web view) still says
  ``iPhone OS 18_6`` (later ``18_7``): a click reporting iOS 18.6 or 18.7 agrees with any launch
  of iOS 18.6 or later;
* Chrome on Android reduced its user agent to ``Android 10; K`` for every device: a click
  reporting exactly Android 10 agrees with any Android launch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from linkgen.domain.errors import InvalidParameter

__all__ = [
    "DARWIN_TO_IOS",
    "OsInfo",
    "check_os_version",
    "darwin_to_ios",
    "os_versions_agree",
    "parse_app_user_agent",
    "resolve_launch_os",
]

Platform = Literal["ios", "android", "desktop", "other"]
MOBILE: tuple[Platform, ...] = ("ios", "android")

# (Darwin major, minor) -> iOS version; a major-only value means that kernel shipped with
# several iOS minors (see the module docstring). Ordered by Darwin version.
DARWIN_TO_IOS: dict[tuple[int, int], str] = {
    (18, 0): "12.0",
    (18, 2): "12.1",
    (18, 5): "12.2",
    (18, 6): "12.3",
    (18, 7): "12.4",
    (19, 0): "13",  # 13.0, 13.1
    (19, 2): "13",  # 13.2, 13.3
    (19, 3): "13.3",  # 13.3.1
    (19, 4): "13.4",
    (19, 5): "13.5",
    (19, 6): "13",  # 13.6, 13.7
    (20, 0): "14",  # 14.0, 14.1
    (20, 1): "14.2",
    (20, 2): "14.3",
    (20, 3): "14.4",
    (20, 4): "14.5",
    (20, 5): "14.6",
    (20, 6): "14",  # 14.7, 14.8
    (21, 0): "15.0",
    (21, 1): "15.1",
    (21, 2): "15.2",
    (21, 3): "15.3",
    (21, 4): "15.4",
    (21, 5): "15.5",
    (21, 6): "15",  # 15.6, 15.7, 15.8
    (22, 0): "16.0",
    (22, 1): "16.1",
    (22, 2): "16.2",
    (22, 3): "16.3",
    (22, 4): "16.4",
    (22, 5): "16.5",
    (22, 6): "16",  # 16.6, 16.7
    (23, 0): "17.0",
    (23, 1): "17.1",
    (23, 2): "17.2",
    (23, 3): "17.3",
    (23, 4): "17.4",
    (23, 5): "17.5",
    (23, 6): "17",  # 17.6, 17.7
    (24, 0): "18.0",
    (24, 1): "18.1",
    (24, 2): "18.2",
    (24, 3): "18.3",
    (24, 4): "18.4",
    (24, 5): "18.5",
    (24, 6): "18",  # 18.6, 18.7
    (25, 0): "26.0",  # Apple numbers iOS by year from here: iOS 19 was never released
    (25, 1): "26.1",
    (25, 2): "26.2",
}
# Darwin major -> iOS major, for minors the table does not list yet.
_IOS_MAJOR = {darwin: int(ios.split(".")[0]) for (darwin, _), ios in DARWIN_TO_IOS.items()}

# A version as the body may give it: "17", "17.4", "17.4.1" (at most four numeric parts).
_OS_VERSION_RE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,4}){0,3}\Z")
_CFNETWORK_RE = re.compile(r"\bCFNetwork/[0-9][0-9.]*\s+Darwin/([0-9]{1,3})\.([0-9]{1,3})")
_MAC_RE = re.compile(r"\((?:x86_64|i386)\)|Macintosh|\bmacOS\b|Mac OS X", re.IGNORECASE)
_IOS_TOKEN_RE = re.compile(r"\b(?:iOS|iPadOS|iPhone OS)[ /]([0-9]{1,3}(?:[._][0-9]{1,4}){0,2})\b")
_ANDROID_TOKEN_RE = re.compile(r"\bAndroid[ /]([0-9]{1,3}(?:\.[0-9]{1,4}){0,2})\b")
_DALVIK_RE = re.compile(r"^Dalvik/", re.IGNORECASE)
_OKHTTP_RE = re.compile(r"\bokhttp/", re.IGNORECASE)

# Browsers that froze the OS version in their user agent (see the module docstring).
_FROZEN_IOS = ((18, 6), (18, 7))
_FIRST_FROZEN_IOS = (18, 6)
_FROZEN_ANDROID_MAJOR = 10


@dataclass(frozen=True, slots=True)
class OsInfo:
    """A platform and its OS version as far as it is known (None: unknown)."""

    platform: Platform
    version: str | None


def darwin_to_ios(major: int, minor: int) -> str | None:
    """The iOS version a Darwin kernel version ships with (see the module rules)."""
    exact = DARWIN_TO_IOS.get((major, minor))
    if exact is not None:
        return exact
    ios_major = _IOS_MAJOR.get(major)
    return str(ios_major) if ios_major is not None else None


def parse_app_user_agent(ua: str | None) -> OsInfo | None:
    """Platform and OS version from an app HTTP client's user agent; None for browsers and
    clients that name no platform."""
    if not ua or ua.startswith("Mozilla/"):
        return None
    if match := _CFNETWORK_RE.search(ua):
        if _MAC_RE.search(ua):
            return OsInfo("desktop", None)
        return OsInfo("ios", darwin_to_ios(int(match.group(1)), int(match.group(2))))
    if match := _IOS_TOKEN_RE.search(ua):
        return OsInfo("ios", match.group(1).replace("_", "."))
    if match := _ANDROID_TOKEN_RE.search(ua):
        return OsInfo("android", match.group(1))
    if _DALVIK_RE.search(ua) or _OKHTTP_RE.search(ua):
        return OsInfo("android", None)
    return None


def check_os_version(value: str, field: str = "os_version") -> str:
    """A body's OS version ("17", "17.4", "17.4.1"), else InvalidParameter naming `field`."""
    value = value.strip()
    if not _OS_VERSION_RE.match(value):
        raise InvalidParameter(f"{field} must be a version number such as 17.4 or 14", field=field)
    return value


def _parts(version: str | None) -> tuple[int, int | None] | None:
    """(major, minor or None) of a dotted version; None when unknown or not numeric."""
    if not version:
        return None
    pieces = version.strip().split(".")
    try:
        major = int(pieces[0])
        minor = int(pieces[1]) if len(pieces) > 1 and pieces[1] != "" else None
    except ValueError:
        return None
    return major, minor


def os_versions_agree(platform: str, click_version: str | None, launch_version: str | None) -> bool:
    """Whether a click's (browser) OS version and a launch's (app) one can be the same device."""
    click = _parts(click_version)
    launch = _parts(launch_version)
    if click is None or launch is None:
        return True
    if platform == "ios" and click in _FROZEN_IOS:
        # "18.6" may be any later iOS; a launch knowing only its major agrees from 18 on.
        if launch[1] is None:
            return launch[0] >= _FIRST_FROZEN_IOS[0]
        return (launch[0], launch[1]) >= _FIRST_FROZEN_IOS
    if platform == "android" and click == (_FROZEN_ANDROID_MAJOR, None):
        return True
    if click[0] != launch[0]:
        return False
    return click[1] is None or launch[1] is None or click[1] == launch[1]


def resolve_launch_os(
    *,
    declared_platform: str | None,
    declared_version: str | None,
    user_agent_os: OsInfo | None,
    app_platform: str,
) -> tuple[OsInfo, dict[str, str | None]]:
    """The launch's platform and version, and where each came from ("body", "user_agent",
    "app" or None): the body's fields first, else the user agent's, else the app's platform.

    A declared platform other than the app's own is refused (400 naming `os`): an app id is of
    one platform, so the SDK is misconfigured and its launches would never match a click."""
    app_mobile = app_platform if app_platform in MOBILE else None
    if declared_platform is not None and app_mobile and declared_platform != app_mobile:
        raise InvalidParameter(
            f"os is {declared_platform!r} but this is an {app_mobile} app", field="os"
        )
    ua_mobile = user_agent_os if user_agent_os and user_agent_os.platform in MOBILE else None
    platform: Platform
    if declared_platform is not None:
        platform, platform_source = _mobile(declared_platform), "body"
    elif ua_mobile is not None:
        platform, platform_source = ua_mobile.platform, "user_agent"
    elif app_mobile is not None:
        platform, platform_source = _mobile(app_mobile), "app"
    else:
        platform, platform_source = "other", None
    version: str | None = None
    version_source: str | None = None
    if declared_version is not None:
        version, version_source = declared_version, "body"
    elif ua_mobile is not None and ua_mobile.platform == platform and ua_mobile.version:
        version, version_source = ua_mobile.version, "user_agent"
    return OsInfo(platform, version), {"platform": platform_source, "os_version": version_source}


def _mobile(name: str) -> Platform:
    return "ios" if name == "ios" else "android"
