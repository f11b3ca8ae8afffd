"""Postback eligibility and the CleverTap upload records built for installs, re-engagements and
in-app events. Pure: stdlib only.

`decide_postback` checks, in this order (the first failing check names the skip reason):

1. `partner_inactive`         the integration toggle is off (seed: must stay on).
2. `no_credentials`           none of account id / passcode / token is set (seed rule).
3. `no_customer_user_id`      the outcome carries no Customer User ID (seed rule).
4. `restricted_media_source`  the attributed media source is restricted with policy `drop`.
   With `send_as_organic` the outcome continues as organic: media source, campaign, channel,
   click and link details are removed, and `made_for_clevertap` no longer applies.
Installs and re-engagements:
5. `default_postbacks_off`
6. `not_this_partner`         "this partner only" and the click's link was not made by linkgen
                              (organic outcomes are never "this partner"); `all_sources` sends
                              organic outcomes too.
7. `install_postback_disabled_on_link`  installs only: the link said `af_installpostback=false`.
In-app events:
5. `in_app_postbacks_disabled`
6. `event_not_mapped`
7. `not_this_partner`         the mapping's sending option is "this partner only" and the event's
                              attributed source is not a linkgen link.
8. `outside_postback_window`  the event came more than `postback_window_days` after the install
                              (an unknown install time does not skip: the window cannot apply).

Records follow CleverTap's upload API: keys at most 120 characters (longer keys are truncated to
120; a truncated key that collides with an earlier one is dropped), string values at most 512
bytes of UTF-8 (truncated at a character boundary), at most 100 properties (our own properties
first, then the rest in the order given). Lists and objects become compact JSON strings; `None`
and non-finite numbers are dropped; datetimes become ISO 8601 strings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal, TypeAlias, cast, get_args

from linkgen.domain.clevertap import EventMapping, IntegrationSettings

SkipReason = Literal[
    "partner_inactive",
    "no_credentials",
    "no_customer_user_id",
    "restricted_media_source",
    "default_postbacks_off",
    "not_this_partner",
    "in_app_postbacks_disabled",
    "event_not_mapped",
    "outside_postback_window",
    "install_postback_disabled_on_link",
]
SKIP_REASONS: Final = cast(tuple[str, ...], get_args(SkipReason))

MAX_KEY_CHARS: Final = 120
MAX_VALUE_BYTES: Final = 512
MAX_PROPERTIES: Final = 100
ORGANIC: Final = "organic"
CHARGED: Final = "Charged"

# Link parameters copied into install / re-engagement records (the granularity and free values a
# CleverTap segment is likely to use); other link parameters stay in linkgen.
LINK_PARAMS_SENT: Final = (
    "af_adset",
    "af_ad",
    "af_adset_id",
    "af_ad_id",
    "af_c_id",
    "af_siteid",
    "af_sub_siteid",
    "af_keywords",
    *(f"af_sub{i}" for i in range(1, 6)),
    "deep_link_value",
    *(f"deep_link_sub{i}" for i in range(1, 11)),
)


@dataclass(frozen=True)
class InstallOutcome:
    """An attributed (or organic) install or re-engagement, as the postback rules need it."""

    kind: Literal["install", "reengagement"]
    linkgen_id: str
    customer_user_id: str | None
    ts: datetime
    is_organic: bool
    media_source: str | None = None
    campaign: str | None = None
    channel: str | None = None
    link_id: str | None = None
    click_id: str | None = None
    click_time: datetime | None = None
    match_type: str | None = None
    link_params: Mapping[str, str] = field(default_factory=dict)
    made_for_clevertap: bool = False


@dataclass(frozen=True)
class EventOutcome:
    """An in-app event with the attribution of the install / re-engagement it belongs to."""

    linkgen_id: str
    customer_user_id: str | None
    ts: datetime
    event_name: str
    event_values: Mapping[str, Any] = field(default_factory=dict)
    revenue: float | int | Decimal | str | None = None
    currency: str | None = None
    install_time: datetime | None = None
    is_organic: bool = True
    media_source: str | None = None
    campaign: str | None = None
    channel: str | None = None
    link_id: str | None = None
    made_for_clevertap: bool = False
    kind: Literal["event"] = "event"


Outcome: TypeAlias = InstallOutcome | EventOutcome


@dataclass(frozen=True)
class Send:
    """Send this upload record."""

    record: dict[str, Any]


@dataclass(frozen=True)
class Skip:
    """Do not send; `reason` is one of `SKIP_REASONS`."""

    reason: SkipReason


PostbackDecision: TypeAlias = Send | Skip


# --- eligibility -----------------------------------------------------------------------------


def decide_postback(settings: IntegrationSettings, outcome: Outcome) -> PostbackDecision:
    """Whether an outcome is sent to CleverTap, and the record if so (checks in module order)."""
    if not settings.active:
        return Skip("partner_inactive")
    if not settings.has_credentials:
        return Skip("no_credentials")
    if outcome.customer_user_id is None or not outcome.customer_user_id.strip():
        return Skip("no_customer_user_id")

    as_organic = outcome.is_organic
    restriction = None if outcome.is_organic else settings.restriction_for(outcome.media_source)
    if restriction is not None:
        if restriction.policy == "drop":
            return Skip("restricted_media_source")
        as_organic = True
    this_partner = outcome.made_for_clevertap and not as_organic

    if isinstance(outcome, InstallOutcome):
        if settings.default_postbacks == "off":
            return Skip("default_postbacks_off")
        if settings.default_postbacks == "this_partner" and not this_partner:
            return Skip("not_this_partner")
        if outcome.kind == "install" and _install_postback_disabled(outcome.link_params):
            return Skip("install_postback_disabled_on_link")
        return Send(build_install_record(settings, outcome, as_organic=as_organic))

    if not settings.in_app_enabled:
        return Skip("in_app_postbacks_disabled")
    mapping = settings.mapping_for(outcome.event_name)
    if mapping is None:
        return Skip("event_not_mapped")
    if mapping.sending_option == "this_partner" and not this_partner:
        return Skip("not_this_partner")
    if outcome.install_time is not None and _aware(outcome.ts) - _aware(
        outcome.install_time
    ) > timedelta(days=settings.postback_window_days):
        return Skip("outside_postback_window")
    return Send(build_event_record(settings, mapping, outcome))


def _install_postback_disabled(link_params: Mapping[str, str]) -> bool:
    return str(link_params.get("af_installpostback", "")).strip().lower() == "false"


# --- records ---------------------------------------------------------------------------------


def _aware(ts: datetime) -> datetime:
    # Naive datetimes are taken as UTC (linkgen stores UTC) rather than local time.
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def epoch_seconds(ts: datetime) -> int:
    """CleverTap's `ts`: whole epoch seconds."""
    return int(_aware(ts).timestamp())


def _envelope(
    settings: IntegrationSettings, customer_user_id: str, ts: datetime, evt_name: str
) -> dict[str, Any]:
    return {
        "type": "event",
        settings.identity_field: customer_user_id,
        "ts": epoch_seconds(ts),
        "evtName": evt_name,
    }


def build_install_record(
    settings: IntegrationSettings, outcome: InstallOutcome, *, as_organic: bool
) -> dict[str, Any]:
    """The upload record of an install or re-engagement (`utm_*`, `Install`, link details)."""
    own: dict[str, Any] = {
        "utm_source": ORGANIC if as_organic else (outcome.media_source or ORGANIC),
        "Install": "Y" if outcome.kind == "install" else "N",
        "linkgen_id": outcome.linkgen_id,
    }
    rest: dict[str, Any] = {}
    if not as_organic:
        # Redacted when sent as organic: campaign and click details would re-identify the source.
        if outcome.channel:
            own["utm_medium"] = outcome.channel
        if outcome.campaign:
            own["utm_campaign"] = outcome.campaign
        if outcome.match_type:
            rest["match_type"] = outcome.match_type
        if outcome.click_time is not None:
            rest["click_time"] = _aware(outcome.click_time).isoformat()
        if outcome.link_id:
            rest["link_id"] = outcome.link_id
        for name in LINK_PARAMS_SENT:
            value = outcome.link_params.get(name)
            if value not in (None, ""):
                rest[name] = value
    name = (
        settings.install_event_name
        if outcome.kind == "install"
        else settings.reengagement_event_name
    )
    record = _envelope(settings, cast(str, outcome.customer_user_id), outcome.ts, name)
    record["evtData"] = clean_properties(own, rest)
    return record


def build_event_record(
    settings: IntegrationSettings, mapping: EventMapping, outcome: EventOutcome
) -> dict[str, Any]:
    """The upload record of a mapped in-app event, per the mapping's send-revenue option."""
    own: dict[str, Any] = {"linkgen_id": outcome.linkgen_id}
    rest: dict[str, Any] = {}
    if mapping.send_revenue != "none":
        for key, value in outcome.event_values.items():
            if key == "af_revenue" and mapping.send_revenue == "values":
                continue
            rest[str(key)] = value
    if mapping.send_revenue == "values_and_revenue":
        raw_revenue = (
            outcome.revenue
            if outcome.revenue is not None
            else outcome.event_values.get("af_revenue")
        )
        revenue = to_number(raw_revenue)
        if "af_revenue" in rest:
            # A numeric string stays a string if it is not a number: CleverTap keeps it as text.
            rest["af_revenue"] = revenue if revenue is not None else rest["af_revenue"]
        currency = outcome.currency or outcome.event_values.get("af_currency")
        if mapping.partner_event == CHARGED and revenue is not None:
            own["Amount"] = revenue
            if isinstance(currency, str) and currency:
                own["Currency"] = currency
    record = _envelope(
        settings, cast(str, outcome.customer_user_id), outcome.ts, mapping.partner_event
    )
    record["evtData"] = clean_properties(own, rest)
    return record


def to_number(value: Any) -> int | float | None:
    """A JSON number from a number or numeric string ("9.99" -> 9.99); None if not numeric."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal | str):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return None
        if not number.is_finite():
            return None
        exponent = number.as_tuple().exponent
        # "10" stays an integer, "10.0" and "9.99" become floats: as JSON would read them.
        if isinstance(exponent, int) and exponent >= 0:
            return int(number)
        return float(number)
    return None


def truncate_utf8(text: str, max_bytes: int = MAX_VALUE_BYTES) -> str:
    """`text` cut to at most `max_bytes` of UTF-8 without splitting a character."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


def _clean_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return to_number(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple):
        # CleverTap event properties are scalars: nested values travel as JSON text.
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
        return truncate_utf8(text)
    return truncate_utf8(str(value))


def clean_properties(own: Mapping[str, Any], rest: Mapping[str, Any]) -> dict[str, Any]:
    """`evtData` within CleverTap's limits; `own` properties win over `rest` on a clash."""
    result: dict[str, Any] = {}
    for source in (own, rest):
        for raw_key, raw_value in source.items():
            if len(result) >= MAX_PROPERTIES:
                return result
            key = str(raw_key)[:MAX_KEY_CHARS]
            if not key or key in result:
                continue
            value = _clean_value(raw_value)
            if value is None:
                continue
            result[key] = value
    return result
