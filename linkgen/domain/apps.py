"""Apps: id rules per platform and the per-app attribution settings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from linkgen.domain.errors import InvalidParameter
from linkgen.domain.validate import get_bool, get_int, get_str, https_url, is_digits, refuse_unknown
from linkgen.domain.windows import CLICK_LOOKBACK, REENGAGEMENT_WINDOW, parse_window

IOS_APP_ID_RE = re.compile(r"^id[0-9]{1,15}$")
ANDROID_PACKAGE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$")
TEAM_ID_RE = re.compile(r"^[A-Z0-9]{10}$")  # TEAM_ID_CHARS
FINGERPRINT_RE = re.compile(r"^([0-9A-F]{2}:){31}[0-9A-F]{2}$")

# Field limits: the validators below and the API's models (linkgen/web/apimodels.py) use these.
MAX_APP_ID_CHARS = 160
MAX_ANDROID_PACKAGE_CHARS = 150
MAX_APP_NAME_CHARS = 200
MAX_BUNDLE_ID_CHARS = 160
TEAM_ID_CHARS = 10
MAX_STORE_URL_CHARS = 500
MAX_CLICK_LOOKBACK_CHARS = 8
MAX_REENGAGEMENT_WINDOW_CHARS = 16
MIN_REATTRIBUTION_WINDOW_DAYS = 1
MAX_REATTRIBUTION_WINDOW_DAYS = 730

CREATE_FIELDS = frozenset(
    {
        "app_id",
        "name",
        "bundle_id",
        "team_id",
        "sha256_cert_fingerprints",
        "store_url",
        "click_lookback",
        "reengagement_window",
        "reattribution_window_days",
        "probabilistic_matching",
    }
)
PATCH_FIELDS = (CREATE_FIELDS - {"app_id"}) | {"rotate_sdk_key"}


def platform_of(app_id: str, field: str = "app_id") -> str:
    """'ios' for id + digits, 'android' for a valid package name; anything else is refused."""
    if IOS_APP_ID_RE.match(app_id):
        return "ios"
    if app_id.startswith("id") and is_digits(app_id[2:]):
        raise InvalidParameter(f"{field}: an iOS app id is 'id' + at most 15 digits", field=field)
    if len(app_id) <= MAX_ANDROID_PACKAGE_CHARS and ANDROID_PACKAGE_RE.match(app_id):
        return "android"
    raise InvalidParameter(
        f"{field} must be an iOS app id (id + digits, e.g. id123456789) or an Android package "
        "name (e.g. com.example.app)",
        field=field,
    )


def default_store_url(app_id: str, platform: str) -> str:
    """The public store page of an app."""
    if platform == "ios":
        return f"https://apps.apple.com/app/{app_id}"
    return f"https://play.google.com/store/apps/details?id={app_id}"


@dataclass(frozen=True)
class AppChanges:
    """Validated app fields (only those given)."""

    values: dict[str, Any]
    rotate_sdk_key: bool = False


def parse_app(body: Mapping[str, Any], *, create: bool) -> AppChanges:
    """Validate a POST (create) or PATCH body for an app."""
    refuse_unknown(body, CREATE_FIELDS if create else PATCH_FIELDS)
    values: dict[str, Any] = {}
    if create:
        app_id = get_str(body, "app_id", required=True, max_length=MAX_APP_ID_CHARS)
        assert app_id is not None
        values["app_id"] = app_id
        values["platform"] = platform_of(app_id)
    name = get_str(body, "name", required=create, max_length=MAX_APP_NAME_CHARS)
    if name is not None:
        values["name"] = name.strip()
    bundle_id = get_str(body, "bundle_id", max_length=MAX_BUNDLE_ID_CHARS)
    if "bundle_id" in body:
        if bundle_id is not None and not ANDROID_PACKAGE_RE.match(bundle_id):
            raise InvalidParameter("bundle_id must look like com.example.app", field="bundle_id")
        values["bundle_id"] = bundle_id
    if "team_id" in body:
        team_id = get_str(body, "team_id", max_length=TEAM_ID_CHARS)
        if team_id is not None and not TEAM_ID_RE.match(team_id):
            raise InvalidParameter(
                "team_id must be Apple's 10-character team id (capitals and digits)",
                field="team_id",
            )
        values["team_id"] = team_id
    if "sha256_cert_fingerprints" in body:
        values["sha256_cert_fingerprints"] = _fingerprints(body["sha256_cert_fingerprints"])
    if "store_url" in body:
        url = get_str(body, "store_url", max_length=MAX_STORE_URL_CHARS)
        values["store_url"] = https_url(url, "store_url") if url else None
    if "click_lookback" in body:
        raw = get_str(body, "click_lookback", required=True, max_length=MAX_CLICK_LOOKBACK_CHARS)
        assert raw is not None
        parse_window(raw, "click_lookback", CLICK_LOOKBACK)
        values["click_lookback"] = raw
    if "reengagement_window" in body:
        raw = get_str(
            body, "reengagement_window", required=True, max_length=MAX_REENGAGEMENT_WINDOW_CHARS
        )
        assert raw is not None
        parse_window(raw, "reengagement_window", REENGAGEMENT_WINDOW)
        values["reengagement_window"] = raw
    days = get_int(
        body,
        "reattribution_window_days",
        lo=MIN_REATTRIBUTION_WINDOW_DAYS,
        hi=MAX_REATTRIBUTION_WINDOW_DAYS,
    )
    if days is not None:
        values["reattribution_window_days"] = days
    prob = get_bool(body, "probabilistic_matching")
    if prob is not None:
        values["probabilistic_matching"] = prob
    rotate = get_bool(body, "rotate_sdk_key") if not create else None
    return AppChanges(values=values, rotate_sdk_key=bool(rotate))


def _fingerprints(value: object) -> list[str]:
    field = "sha256_cert_fingerprints"
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidParameter(f"{field} must be a list of strings", field=field)
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not FINGERPRINT_RE.match(item.strip().upper()):
            raise InvalidParameter(
                f"{field}[{i}] must be a SHA-256 fingerprint like AB:CD:... (32 hex pairs)",
                field=f"{field}[{i}]",
            )
        out.append(item.strip().upper())
    return out
