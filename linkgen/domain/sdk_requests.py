"""The SDK's request bodies: launch and event validation, and the answers' shape.

Pure rules (no database): `parse_launch` and `parse_event` turn a JSON body into a validated
request or raise `InvalidParameter` naming the field as sent; `launch_response` and
`event_response` give the answers a fixed key order. The field limits are the constants below;
the API's models (linkgen/web/apimodels.py) import them. linkgen/services/attribution.py stores
what these accept.

Request rules (our choices where the contract is silent):

* Unknown body fields are ignored, not refused: SDKs in the field add fields across versions and
  cannot be updated in lockstep with the server, and refusing would lose the launch.
* `ts` is ISO 8601 with an offset (or `Z`); a naive time is refused. A `ts` up to 5 minutes
  ahead of the server clock is clock skew and is clamped to now; further ahead is refused, as is
  a `ts` more than 366 days old. A late `ts` is honoured: attribution runs as of that instant.
* An empty `customer_user_id` (or ids such as `idfa`) reads as absent: SDKs send "" before the
  id is known.
* The launch's platform and OS version: the body's `os` ("ios" | "android", any case) and
  `os_version` ("17.4") first, else its user agent (`user_agent`, else the request's), read
  as an app HTTP client's (CFNetwork/Darwin, Dalvik, okhttp: linkgen/domain/useragents.py)
  or else as a browser's; when none names a mobile platform, the app's own platform is used.
  An `os` other than the app's platform is refused. `app_version` and `sdk` (at most 64
  characters) are kept on the launch row as sent.
* Launches answer 200, also for a retried first launch (the stored answer, byte for byte).
  Events answer 201 the first time and 200 with the stored body for a known `event_id`.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from linkgen.domain.attribution import DEEP_LINK_KEYS, LaunchFacts
from linkgen.domain.errors import InvalidParameter
from linkgen.domain.privacy import StoragePolicy, stored_address, stored_user_agent
from linkgen.domain.useragents import Platform, check_os_version

CLOCK_SKEW = timedelta(minutes=5)
MAX_TS_AGE = timedelta(days=366)
MAX_URL_CHARS = 4096
MAX_USER_AGENT_CHARS = 1024
MAX_EVENT_VALUES = 200
# Field limits of the SDK bodies: the validators below and the API's models use these.
MAX_DEVICE_ID_CHARS = 100
MAX_CUSTOMER_USER_ID_CHARS = 200
MAX_DEVICE_KEY_CHARS = 64  # idfa, idfv, gaid
MAX_TS_CHARS = 64
MAX_OS_CHARS = 16
MAX_OS_VERSION_CHARS = 32
MAX_APP_VERSION_CHARS = 64  # app_version and sdk
MAX_EVENT_ID_CHARS = 200
MAX_SDK_EVENT_NAME_CHARS = 200
MAX_REVENUE_TEXT_CHARS = 40
MAX_REVENUE = Decimal(10) ** 12  # micros must fit a signed 64-bit integer
USD = "USD"

LAUNCH_FIELDS = (
    "device_id",
    "customer_user_id",
    "first_launch",
    "install_referrer",
    "deep_link_url",
    "idfa",
    "idfv",
    "gaid",
    "ip",
    "user_agent",
    "ts",
    "os",
    "os_version",
    "app_version",
    "sdk",
)


# ---- request validation ---------------------------------------------------------------------


def _string(
    body: Mapping[str, Any],
    key: str,
    max_length: int,
    *,
    required: bool = False,
    field: str | None = None,
) -> str | None:
    field = field or key
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise InvalidParameter(f"{field} is required", field=field)
        return None
    if not isinstance(value, str):
        raise InvalidParameter(f"{field} must be a string", field=field)
    value = value.strip()
    if not value:
        raise InvalidParameter(f"{field} must not be empty", field=field)
    if len(value) > max_length:
        raise InvalidParameter(f"{field} is longer than {max_length} characters", field=field)
    if not value.isprintable():
        raise InvalidParameter(f"{field} must not contain control characters", field=field)
    return value


def _device_key(body: Mapping[str, Any], key: str) -> str | None:
    """An advertising / vendor id: lower-cased; all-zero (limit ad tracking) reads as absent."""
    value = _string(body, key, MAX_DEVICE_KEY_CHARS)
    if value is None or not value.replace("0", "").replace("-", ""):
        return None
    return value.lower()


def parse_ts(value: Any, now: datetime, field: str = "ts") -> tuple[datetime, bool]:
    """An ISO 8601 time with an offset: (UTC time, clamped?). See the module rules."""
    if value is None:
        return now, False
    if not isinstance(value, str) or len(value) > MAX_TS_CHARS:
        raise InvalidParameter(f"{field} must be an ISO 8601 string", field=field)
    try:
        ts = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidParameter(
            f"{field} must be ISO 8601, e.g. 2026-11-29T10:00:00Z", field=field
        ) from exc
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise InvalidParameter(f"{field} must carry a time zone (Z or +hh:mm)", field=field)
    ts = ts.astimezone(now.tzinfo)
    if ts > now + CLOCK_SKEW:
        raise InvalidParameter(f"{field} is more than 5 minutes in the future", field=field)
    if ts < now - MAX_TS_AGE:
        raise InvalidParameter(f"{field} is more than 366 days in the past", field=field)
    if ts > now:
        return now, True
    return ts, False


def _ip(value: Any, default: str | None) -> str | None:
    if value is None:
        # The request's own address: a proxy's odd remote address must not fail the request.
        try:
            return str(ipaddress.ip_address(default.strip())) if default else None
        except ValueError:
            return None
    if not isinstance(value, str):
        raise InvalidParameter("ip must be a string", field="ip")
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as exc:
        raise InvalidParameter("ip must be an IPv4 or IPv6 address", field="ip") from exc


def _body(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidParameter("the body must be a JSON object", field="body")
    return cast(Mapping[str, Any], body)


# Fields a LaunchRequest hands to LaunchFacts as they are (the rest is decided per launch).
_SHARED_WITH_FACTS = tuple(
    f.name for f in fields(LaunchFacts) if f.name not in ("first_launch", "platform", "os_version")
)


@dataclass(frozen=True)
class LaunchRequest:
    """A validated launch body (request defaults applied)."""

    device_id: str
    customer_user_id: str | None
    first_launch: bool
    install_referrer: str | None
    deep_link_url: str | None
    idfa: str | None
    idfv: str | None
    gaid: str | None
    ip: str | None
    user_agent: str | None
    ts: datetime
    ts_clamped: bool
    os: str | None = None  # as declared by the body: "ios" | "android"
    os_version: str | None = None
    app_version: str | None = None
    sdk: str | None = None

    def facts(
        self, *, first_launch: bool, platform: Platform, os_version: str | None
    ) -> LaunchFacts:
        """The launch as the attribution rules see it: these fields, plus what the request's
        user agent and the stored install say."""
        shared = {name: getattr(self, name) for name in _SHARED_WITH_FACTS}
        return LaunchFacts(
            **shared, first_launch=first_launch, platform=platform, os_version=os_version
        )

    def as_stored(
        self,
        privacy: StoragePolicy,
        *,
        platform: str,
        os_version: str | None,
        os_family: str | None,
        browser: str | None,
    ) -> dict[str, Any]:
        """The request as kept on the launch row (address and user agent as `privacy` allows;
        `platform` and `os_version` as the launch was classified, `os_family` and `browser` as
        its user agent reads)."""
        return {
            "device_id": self.device_id,
            "customer_user_id": self.customer_user_id,
            "first_launch": self.first_launch,
            "install_referrer": self.install_referrer,
            "deep_link_url": self.deep_link_url,
            "idfa": self.idfa,
            "idfv": self.idfv,
            "gaid": self.gaid,
            "ip": stored_address(self.ip, privacy),
            "user_agent": stored_user_agent(
                self.user_agent,
                privacy,
                platform=platform,
                os_family=os_family,
                os_version=os_version,
                browser=browser,
            ),
            "ts": iso_time(self.ts),
            "os": self.os,
            "os_version": self.os_version,
            "app_version": self.app_version,
            "sdk": self.sdk,
        }


def parse_launch(
    body: Any, *, request_ip: str | None, request_ua: str | None, now: datetime
) -> LaunchRequest:
    """Validate a launch body; each refusal names its field."""
    data = _body(body)
    device_id = _string(data, "device_id", MAX_DEVICE_ID_CHARS, required=True)
    assert device_id is not None
    first_launch = data.get("first_launch", False)
    if first_launch is None:
        first_launch = False
    if not isinstance(first_launch, bool):
        raise InvalidParameter("first_launch must be true or false", field="first_launch")
    user_agent = _string(data, "user_agent", MAX_USER_AGENT_CHARS)
    if user_agent is None and request_ua:
        user_agent = request_ua[:MAX_USER_AGENT_CHARS]
    ts, clamped = parse_ts(data.get("ts"), now)
    return LaunchRequest(
        device_id=device_id,
        customer_user_id=_string(data, "customer_user_id", MAX_CUSTOMER_USER_ID_CHARS),
        first_launch=first_launch,
        install_referrer=_string(data, "install_referrer", MAX_URL_CHARS),
        deep_link_url=_string(data, "deep_link_url", MAX_URL_CHARS),
        idfa=_device_key(data, "idfa"),
        idfv=_device_key(data, "idfv"),
        gaid=_device_key(data, "gaid"),
        ip=_ip(data.get("ip"), request_ip),
        user_agent=user_agent,
        ts=ts,
        ts_clamped=clamped,
        os=_declared_os(data),
        os_version=_declared_os_version(data),
        app_version=_string(data, "app_version", MAX_APP_VERSION_CHARS),
        sdk=_string(data, "sdk", MAX_APP_VERSION_CHARS),
    )


def _declared_os(data: Mapping[str, Any]) -> str | None:
    value = _string(data, "os", MAX_OS_CHARS)
    if value is None:
        return None
    if value.lower() not in ("ios", "android"):
        raise InvalidParameter('os must be "ios" or "android"', field="os")
    return value.lower()


def _declared_os_version(data: Mapping[str, Any]) -> str | None:
    value = _string(data, "os_version", MAX_OS_VERSION_CHARS)
    return check_os_version(value) if value is not None else None


@dataclass(frozen=True)
class EventRequest:
    """A validated event body."""

    event_id: str
    device_id: str | None
    customer_user_id: str | None
    event_name: str
    event_values: dict[str, Any]
    revenue: Decimal | None
    currency: str | None
    ts: datetime
    ts_clamped: bool

    @property
    def revenue_micros(self) -> int | None:
        """Revenue in millionths of the currency unit."""
        if self.revenue is None:
            return None
        return int((self.revenue * 1_000_000).to_integral_value())


def _revenue(value: Any) -> Decimal | None:
    field = "event_values.af_revenue"
    numeric = f"{field} must be a number or a numeric string"
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidParameter(numeric, field=field)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidParameter(f"{field} must be a finite number", field=field)
    text = str(value).strip()
    if isinstance(value, str) and (not text or len(text) > MAX_REVENUE_TEXT_CHARS):
        raise InvalidParameter(numeric, field=field)
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidParameter(numeric, field=field) from exc
    if not amount.is_finite():
        raise InvalidParameter(f"{field} must be a finite number", field=field)
    if abs(amount) >= MAX_REVENUE:
        raise InvalidParameter(f"{field} is too large", field=field)
    return amount


def parse_event(body: Any, *, now: datetime) -> EventRequest:
    """Validate an event body; each refusal names its field."""
    data = _body(body)
    event_id = _string(data, "event_id", MAX_EVENT_ID_CHARS, required=True)
    event_name = _string(data, "event_name", MAX_SDK_EVENT_NAME_CHARS, required=True)
    device_id = _string(data, "device_id", MAX_DEVICE_ID_CHARS)
    customer_user_id = _string(data, "customer_user_id", MAX_CUSTOMER_USER_ID_CHARS)
    if device_id is None and customer_user_id is None:
        raise InvalidParameter(
            "device_id (or customer_user_id) is required to attribute the event", field="device_id"
        )
    raw_values = data.get("event_values")
    if raw_values is None:
        raw_values = {}
    if not isinstance(raw_values, dict):
        raise InvalidParameter("event_values must be a JSON object", field="event_values")
    if len(raw_values) > MAX_EVENT_VALUES:
        raise InvalidParameter(
            f"event_values has more than {MAX_EVENT_VALUES} entries", field="event_values"
        )
    values = cast(dict[str, Any], raw_values)
    revenue = _revenue(values.get("af_revenue"))
    currency = values.get("af_currency")
    if currency is not None and (
        not isinstance(currency, str)
        or len(currency) != 3
        or not currency.isascii()
        or not currency.isupper()
        or not currency.isalpha()
    ):
        raise InvalidParameter(
            "event_values.af_currency must be an ISO 4217 code (3 capital letters)",
            field="event_values.af_currency",
        )
    if revenue is not None and currency is None:
        currency = USD
    ts, clamped = parse_ts(data.get("ts"), now)
    assert event_id is not None and event_name is not None
    return EventRequest(
        event_id=event_id,
        device_id=device_id,
        customer_user_id=customer_user_id,
        event_name=event_name,
        event_values=values,
        revenue=revenue,
        currency=currency,
        ts=ts,
        ts_clamped=clamped,
    )


# ---- answers --------------------------------------------------------------------------------


def iso_time(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return ts.isoformat(timespec="seconds").replace("+00:00", "Z")


_ATTRIBUTION_ORDER = (
    "is_organic",
    "media_source",
    "campaign",
    "channel",
    "match_type",
    "click_id",
    "click_time",
    "link_id",
)
_SOURCE_ORDER = ("is_organic", "media_source", "campaign", "channel", "link_id", "click_id")


def _ordered(data: Mapping[str, Any], first: tuple[str, ...]) -> dict[str, Any]:
    """`first` keys in that order, then the others sorted."""
    out = {k: data[k] for k in first if k in data}
    out.update((k, data[k]) for k in sorted(data) if k not in out)
    return out


def launch_response(data: Mapping[str, Any]) -> dict[str, Any]:
    """A launch answer in the contract's key order: PostgreSQL's JSONB does not keep key order,
    so fresh and stored answers both go through this and a retry gets the very same bytes."""
    out = _ordered(data, ("launch_id", "type", "attribution", "deep_link"))
    out["attribution"] = _ordered(out["attribution"], _ATTRIBUTION_ORDER)
    out["deep_link"] = _ordered(out["deep_link"], ("status", *DEEP_LINK_KEYS))
    return out


def event_response(data: Mapping[str, Any]) -> dict[str, Any]:
    """An event answer in a fixed key order (see `launch_response`)."""
    out = _ordered(data, ("event_id", "event_name", "attribution", "reengagement"))
    for key in ("attribution", "reengagement"):
        if out.get(key) is not None:
            out[key] = _ordered(out[key], _SOURCE_ORDER)
    return out
