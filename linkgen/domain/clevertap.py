"""Per-app CleverTap integration settings: validation, regions, warnings, masking, audit.

The settings mirror AppsFlyer's CleverTap integration page (seed 000): an activation toggle,
account id / passcode / token, a case-sensitive region, default (install) postbacks, in-app event
mappings and the restricted media sources. Pure: stdlib only.

PUT semantics (`apply_integration_put`): every field the body omits keeps its current value (the
default when nothing is stored yet). That is what the contract asks for the secrets and for the
restricted list, and doing the same for every field means a form that sends only what it shows
cannot wipe the rest. `""` or `null` clears `account_id`, `account_passcode` and `account_token`;
`null` for `restricted_media_sources` restores AppsFlyer's list, `[]` means "no restriction".
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, cast, get_args
from urllib.parse import quote, quote_plus

from linkgen.domain.errors import InvalidParameter

Region = str
DefaultPostbacks = Literal["off", "this_partner", "all_sources"]
IdentityField = Literal["objectId", "identity"]
SendingOption = Literal["this_partner", "all_sources"]
SendRevenue = Literal["none", "values", "values_and_revenue"]
RestrictionPolicy = Literal["drop", "send_as_organic"]

DEFAULT_POSTBACKS_VALUES: Final = cast(tuple[str, ...], get_args(DefaultPostbacks))
IDENTITY_FIELD_VALUES: Final = cast(tuple[str, ...], get_args(IdentityField))
SENDING_OPTION_VALUES: Final = cast(tuple[str, ...], get_args(SendingOption))
SEND_REVENUE_VALUES: Final = cast(tuple[str, ...], get_args(SendRevenue))
POLICY_VALUES: Final = cast(tuple[str, ...], get_args(RestrictionPolicy))

# Insertion order is the order the warnings list them in.
REGION_HOSTS: Final[dict[str, str]] = {
    "EU1": "eu1.api.clevertap.com",
    "IN1": "in1.api.clevertap.com",
    "US1": "us1.api.clevertap.com",
    "SG1": "sg1.api.clevertap.com",
    "ID": "aps3.api.clevertap.com",
    "MEC1": "mec1.api.clevertap.com",
}
DEFAULT_REGION: Final = "EU1"
PARTNER_NAME: Final = "linkgen"

MAX_REGION_CHARS: Final = 16
MAX_EVENT_NAME_CHARS: Final = 120  # CleverTap's limit on event names and property keys
MAX_ACCOUNT_ID_CHARS: Final = 64
MAX_SECRET_CHARS: Final = 256
MAX_MEDIA_SOURCE_CHARS: Final = 150  # the `pid` limit
MAX_MAPPINGS: Final = 200
MAX_RESTRICTED: Final = 200
MIN_WINDOW_DAYS: Final = 1
MAX_WINDOW_DAYS: Final = 365
# The upload API refuses CleverTap's own system events (code 513); "UTM Visited" is the one a
# partner integration is tempted to use for installs.
REFUSED_EVENT_NAMES: Final = frozenset({"UTM Visited"})


@dataclass(frozen=True)
class EventMapping:
    """One row of the in-app event table: SDK event -> CleverTap event."""

    sdk_event: str
    partner_event: str
    sending_option: SendingOption = "this_partner"
    send_revenue: SendRevenue = "none"


@dataclass(frozen=True)
class RestrictedSource:
    """A media source whose data may not reach CleverTap as is."""

    media_source: str
    policy: RestrictionPolicy = "drop"


# AppsFlyer's restricted media sources, by their AppsFlyer media source ids (`pid`), as best
# known from AppsFlyer's public "raw data restrictions" pages. Policy (our choice): the sources
# whose terms forbid device-level sharing of attribution (Meta, Snapchat, X, TikTok) are dropped;
# the sources AppsFlyer redacts to "organic" when sharing with third parties are sent as organic.
DEFAULT_RESTRICTED: Final[tuple[RestrictedSource, ...]] = (
    RestrictedSource("Facebook Ads", "drop"),  # Meta ads
    RestrictedSource("snapchat_int", "drop"),  # Snapchat
    RestrictedSource("Twitter", "drop"),  # X Ads (formerly Twitter)
    RestrictedSource("tiktokglobal_int", "drop"),  # TikTok for Business
    RestrictedSource("pinterest_int", "send_as_organic"),  # Pinterest
    RestrictedSource("amazondsp_int", "send_as_organic"),  # Amazon Ads
    RestrictedSource("reddit_int", "send_as_organic"),  # Reddit
    RestrictedSource("discord_int", "send_as_organic"),  # Discord (id not confirmed publicly)
    RestrictedSource("rokuads_int", "send_as_organic"),  # Roku Ads / OneView
    RestrictedSource("samsungdsp_int", "send_as_organic"),  # Samsung DSP (id not confirmed)
)


@dataclass(frozen=True)
class IntegrationSettings:
    """The stored CleverTap integration of one app (secrets included: storage only)."""

    active: bool = False
    account_id: str | None = None
    account_passcode: str | None = None
    account_token: str | None = None
    region: Region = DEFAULT_REGION
    default_postbacks: DefaultPostbacks = "off"
    install_event_name: str = "App Install Attributed"
    reengagement_event_name: str = "App Re-engagement Attributed"
    identity_field: IdentityField = "objectId"
    in_app_enabled: bool = False
    postback_window_days: int = 180
    mappings: tuple[EventMapping, ...] = ()
    restricted_media_sources: tuple[RestrictedSource, ...] = DEFAULT_RESTRICTED

    @property
    def has_credentials(self) -> bool:
        """At least one of account id, passcode or token is set (the seed's rule)."""
        return bool(self.account_id or self.account_passcode or self.account_token)

    def mapping_for(self, sdk_event: str) -> EventMapping | None:
        """The mapping row of an SDK event, if any."""
        for mapping in self.mappings:
            if mapping.sdk_event == sdk_event:
                return mapping
        return None

    def restriction_for(self, media_source: str | None) -> RestrictedSource | None:
        """The restriction of a media source (exact, case-sensitive like `pid`), if any."""
        if not media_source:
            return None
        for source in self.restricted_media_sources:
            if source.media_source == media_source:
                return source
        return None


# --- regions and endpoints -------------------------------------------------------------------


def resolve_region(region: str | None) -> str:
    """The region postbacks really go to: exact capitals only, anything else is EU1."""
    if region is not None and region in REGION_HOSTS:
        return region
    return DEFAULT_REGION


def _base_url(region: str | None, api_base: str | None) -> str:
    resolved = resolve_region(region)
    if api_base:
        return api_base.replace("{region}", resolved.lower()).rstrip("/")
    return f"https://{REGION_HOSTS[resolved]}"


def upload_endpoint(region: str | None, api_base: str | None = None) -> str:
    """The upload URL for a region; `api_base` (with an optional `{region}`) overrides the host."""
    return f"{_base_url(region, api_base)}/1/upload"


def connect_endpoint(
    region: str | None, api_base: str | None = None, partner: str = PARTNER_NAME
) -> str:
    """The partner credentials-check URL for a region."""
    return f"{_base_url(region, api_base)}/v1/connect?partner={quote(partner, safe='')}"


# --- validation ------------------------------------------------------------------------------

_TOP_LEVEL_KEYS: Final = frozenset(
    {
        "active",
        "account_id",
        "account_passcode",
        "account_token",
        "region",
        "default_postbacks",
        "install_event_name",
        "reengagement_event_name",
        "identity_field",
        "in_app_events",
        "restricted_media_sources",
    }
)
_IN_APP_KEYS: Final = frozenset({"enabled", "postback_window_days", "mappings"})
_MAPPING_KEYS: Final = ("sdk_event", "partner_event", "sending_option", "send_revenue")
_RESTRICTED_KEYS: Final = ("media_source", "policy")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _refuse_unknown_keys(obj: Mapping[str, Any], allowed: Any, path: str) -> None:
    for key in obj:
        if key not in allowed:
            raise InvalidParameter(f"Unknown field {key!r}.", field=_join(path, str(key)))


def _require_object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidParameter("Must be a JSON object.", field=path)
    return cast(Mapping[str, Any], value)


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidParameter("Must be true or false.", field=path)
    return value


def _enum(value: Any, allowed: Sequence[str], path: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        choices = ", ".join(allowed)
        raise InvalidParameter(f"Must be one of {choices}.", field=path)
    return value


def _name(value: Any, path: str, max_chars: int = MAX_EVENT_NAME_CHARS) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameter("Must be a non-empty string.", field=path)
    if len(value) > max_chars:
        raise InvalidParameter(f"Must be at most {max_chars} characters.", field=path)
    if value != value.strip():
        raise InvalidParameter("Must not start or end with a space.", field=path)
    return value


def _event_name(value: Any, path: str) -> str:
    name = _name(value, path)
    if name in REFUSED_EVENT_NAMES:
        raise InvalidParameter(
            f"{name!r} is a CleverTap system event that the upload API refuses; "
            "choose your own event name.",
            field=path,
        )
    return name


def _credential(value: Any, path: str, max_chars: int) -> str | None:
    """A credential: `None`/`""` clear it; surrounding spaces (copy-paste) are dropped."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidParameter("Must be a string or null.", field=path)
    text: str = value.strip()
    if not text:
        return None
    if len(text) > max_chars:
        raise InvalidParameter(f"Must be at most {max_chars} characters.", field=path)
    # These travel in HTTP headers: a space or control character would corrupt the request.
    if not text.isascii() or not text.isprintable() or any(c.isspace() for c in text):
        raise InvalidParameter(
            "Must contain only printable ASCII characters without spaces.", field=path
        )
    return text


def _region(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameter(
            f"Must be a non-empty string, one of {', '.join(REGION_HOSTS)}.", field=path
        )
    if len(value) > MAX_REGION_CHARS:
        raise InvalidParameter(f"Must be at most {MAX_REGION_CHARS} characters.", field=path)
    # Stored as given, even lowercase: the seed says such a value sends to EU1, and the
    # response warns about it rather than silently "fixing" what the user typed.
    return value


def _window_days(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidParameter("Must be a whole number of days.", field=path)
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise InvalidParameter("Must be a whole number of days.", field=path)
    days = int(value)
    if not MIN_WINDOW_DAYS <= days <= MAX_WINDOW_DAYS:
        raise InvalidParameter(
            f"Must be between {MIN_WINDOW_DAYS} and {MAX_WINDOW_DAYS} days.", field=path
        )
    return days


def _object_list(
    value: Any, path: str, keys: Collection[str], limit: int, noun: str
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, item) for each object of a list of at most `limit`, each with exactly `keys`."""
    if not isinstance(value, list):
        raise InvalidParameter("Must be a list.", field=path)
    if len(value) > limit:
        raise InvalidParameter(f"At most {limit} {noun}.", field=path)
    for index, raw in enumerate(value):
        item_path = f"{path}[{index}]"
        item = _require_object(raw, item_path)
        _refuse_unknown_keys(item, keys, item_path)
        for key in keys:
            if key not in item:
                raise InvalidParameter(f"{key} is required.", field=f"{item_path}.{key}")
        yield item_path, item


def _mappings(value: Any, path: str) -> tuple[EventMapping, ...]:
    result: list[EventMapping] = []
    seen: set[str] = set()
    for item_path, item in _object_list(value, path, _MAPPING_KEYS, MAX_MAPPINGS, "mappings"):
        sdk_event = _name(item["sdk_event"], f"{item_path}.sdk_event")
        if sdk_event in seen:
            raise InvalidParameter(
                f"The SDK event {sdk_event!r} is mapped twice.", field=f"{item_path}.sdk_event"
            )
        seen.add(sdk_event)
        result.append(
            EventMapping(
                sdk_event=sdk_event,
                partner_event=_event_name(item["partner_event"], f"{item_path}.partner_event"),
                sending_option=cast(
                    SendingOption,
                    _enum(
                        item["sending_option"],
                        SENDING_OPTION_VALUES,
                        f"{item_path}.sending_option",
                    ),
                ),
                send_revenue=cast(
                    SendRevenue,
                    _enum(item["send_revenue"], SEND_REVENUE_VALUES, f"{item_path}.send_revenue"),
                ),
            )
        )
    return tuple(result)


def _restricted(value: Any, path: str) -> tuple[RestrictedSource, ...]:
    if value is None:
        return DEFAULT_RESTRICTED
    result: list[RestrictedSource] = []
    seen: set[str] = set()
    items = _object_list(value, path, _RESTRICTED_KEYS, MAX_RESTRICTED, "media sources")
    for item_path, item in items:
        source = _name(item["media_source"], f"{item_path}.media_source", MAX_MEDIA_SOURCE_CHARS)
        if source in seen:
            raise InvalidParameter(
                f"The media source {source!r} is listed twice.", field=f"{item_path}.media_source"
            )
        seen.add(source)
        policy = _enum(item["policy"], POLICY_VALUES, f"{item_path}.policy")
        result.append(RestrictedSource(source, cast(RestrictionPolicy, policy)))
    return tuple(result)


def apply_integration_put(
    current: IntegrationSettings | None, body: Mapping[str, Any]
) -> IntegrationSettings:
    """Validate a PUT body and merge it over the stored settings (omitted fields are kept)."""
    if not isinstance(body, Mapping):
        raise InvalidParameter("The body must be a JSON object.")
    _refuse_unknown_keys(body, _TOP_LEVEL_KEYS, "")
    base = current if current is not None else IntegrationSettings()
    changes: dict[str, Any] = {}

    if "active" in body:
        changes["active"] = _bool(body["active"], "active")
    if "account_id" in body:
        changes["account_id"] = _credential(body["account_id"], "account_id", MAX_ACCOUNT_ID_CHARS)
    for secret in ("account_passcode", "account_token"):
        if secret in body:
            changes[secret] = _credential(body[secret], secret, MAX_SECRET_CHARS)
    if "region" in body:
        changes["region"] = _region(body["region"], "region")
    if "default_postbacks" in body:
        changes["default_postbacks"] = _enum(
            body["default_postbacks"], DEFAULT_POSTBACKS_VALUES, "default_postbacks"
        )
    for name_field in ("install_event_name", "reengagement_event_name"):
        if name_field in body:
            changes[name_field] = _event_name(body[name_field], name_field)
    if "identity_field" in body:
        changes["identity_field"] = _enum(
            body["identity_field"], IDENTITY_FIELD_VALUES, "identity_field"
        )
    if "in_app_events" in body:
        in_app = _require_object(body["in_app_events"], "in_app_events")
        _refuse_unknown_keys(in_app, _IN_APP_KEYS, "in_app_events")
        if "enabled" in in_app:
            changes["in_app_enabled"] = _bool(in_app["enabled"], "in_app_events.enabled")
        if "postback_window_days" in in_app:
            changes["postback_window_days"] = _window_days(
                in_app["postback_window_days"], "in_app_events.postback_window_days"
            )
        if "mappings" in in_app:
            changes["mappings"] = _mappings(in_app["mappings"], "in_app_events.mappings")
    if "restricted_media_sources" in body:
        changes["restricted_media_sources"] = _restricted(
            body["restricted_media_sources"], "restricted_media_sources"
        )
    return replace(base, **changes)


# --- warnings and the public shape ------------------------------------------------------------


def warnings_for(settings: IntegrationSettings, *, api_base: str | None = None) -> list[str]:
    """Plain sentences about settings that will not work the way the user probably expects."""
    warnings: list[str] = []
    region = settings.region
    if region not in REGION_HOSTS:
        known = ", ".join(REGION_HOSTS)
        endpoint = upload_endpoint(region, api_base)
        if region.upper() in REGION_HOSTS:
            warnings.append(
                f'Region "{region}" is not one of {known} (the setting is case-sensitive: '
                f"use capitals); postbacks will go to {DEFAULT_REGION} ({endpoint}). "
                f'Did you mean "{region.upper()}"?'
            )
        else:
            warnings.append(
                f'Region "{region}" is not one of {known}; postbacks will go to '
                f"{DEFAULT_REGION} ({endpoint})."
            )
    if not settings.active:
        warnings.append("The partner is not active: no postback will be sent.")
    if not settings.has_credentials:
        warnings.append("No account ID, passcode or token is set: no postback will be sent.")
    else:
        missing = [
            label
            for label, value in (
                ("account ID", settings.account_id),
                ("passcode", settings.account_passcode),
            )
            if not value
        ]
        if missing:
            warnings.append(
                f"No {' or '.join(missing)} is set: CleverTap's upload API will refuse the "
                "postbacks (it needs both the account ID and the passcode)."
            )
    if settings.active and settings.default_postbacks == "off":
        warnings.append(
            "The partner is active but default postbacks are off: no install or "
            "re-engagement postback will be sent."
        )
    if settings.in_app_enabled and not settings.mappings:
        warnings.append(
            "In-app event postbacks are on but no event is mapped: no in-app event postback "
            "will be sent."
        )
    if settings.mappings and not settings.in_app_enabled:
        warnings.append(
            "Events are mapped but in-app event postbacks are off: no in-app event postback "
            "will be sent."
        )
    return warnings


def mask_secret(value: str | None) -> str | None:
    """A secret for display: the last 3 characters after 5 stars; short secrets fully masked."""
    if not value:
        return None
    # A fixed number of stars does not leak the length; under 8 characters, 3 shown would be
    # too large a share of the secret.
    if len(value) < 8:
        return "********"
    return "*****" + value[-3:]


def _mapping_dict(mapping: EventMapping) -> dict[str, Any]:
    return {
        "sdk_event": mapping.sdk_event,
        "partner_event": mapping.partner_event,
        "sending_option": mapping.sending_option,
        "send_revenue": mapping.send_revenue,
    }


def _restricted_dict(source: RestrictedSource) -> dict[str, Any]:
    return {"media_source": source.media_source, "policy": source.policy}


def _shared_dict(settings: IntegrationSettings) -> dict[str, Any]:
    return {
        "active": settings.active,
        "account_id": settings.account_id,
        "region": settings.region,
        "default_postbacks": settings.default_postbacks,
        "install_event_name": settings.install_event_name,
        "reengagement_event_name": settings.reengagement_event_name,
        "identity_field": settings.identity_field,
        "in_app_events": {
            "enabled": settings.in_app_enabled,
            "postback_window_days": settings.postback_window_days,
            "mappings": [_mapping_dict(m) for m in settings.mappings],
        },
        "restricted_media_sources": [
            _restricted_dict(s) for s in settings.restricted_media_sources
        ],
    }


def settings_to_public_dict(
    settings: IntegrationSettings, *, api_base: str | None = None
) -> dict[str, Any]:
    """The API's echo of the settings: secrets masked, endpoint resolved, warnings listed."""
    public = _shared_dict(settings)
    public.update(
        {
            "account_passcode": mask_secret(settings.account_passcode),
            "account_token": mask_secret(settings.account_token),
            "has_passcode": bool(settings.account_passcode),
            "has_token": bool(settings.account_token),
            "resolved_region": resolve_region(settings.region),
            "endpoint": upload_endpoint(settings.region, api_base),
            "warnings": warnings_for(settings, api_base=api_base),
        }
    )
    return public


# --- audit and storage -----------------------------------------------------------------------

_SECRET_FIELDS: Final = ("account_passcode", "account_token")


def _secret_change(old: str | None, new: str | None) -> str | None:
    if old == new:
        return None
    if not new:
        return "cleared"
    return "set" if not old else "changed"


def audit_diff(old: IntegrationSettings | None, new: IntegrationSettings) -> dict[str, Any]:
    """What a PUT changed: `{field: {"from", "to"}}`; secrets only as "set"/"changed"/"cleared"."""
    diff: dict[str, Any] = {}
    new_plain = _shared_dict(new)
    old_plain = _shared_dict(old) if old is not None else {}
    for key, value in new_plain.items():
        before = old_plain.get(key)
        if old is None or before != value:
            diff[key] = {"from": before, "to": value}
    for secret in _SECRET_FIELDS:
        before_secret = getattr(old, secret) if old is not None else None
        change = _secret_change(before_secret, getattr(new, secret))
        if change is not None:
            diff[secret] = change
    return diff


def settings_to_json(settings: IntegrationSettings) -> dict[str, Any]:
    """The full settings as JSON for storage (secrets included: never send this to a client)."""
    stored = _shared_dict(settings)
    stored["account_passcode"] = settings.account_passcode
    stored["account_token"] = settings.account_token
    return stored


def settings_from_json(data: Mapping[str, Any]) -> IntegrationSettings:
    """Settings back from `settings_to_json`; missing keys take their defaults."""
    defaults = IntegrationSettings()
    in_app = cast(Mapping[str, Any], data.get("in_app_events") or {})
    restricted_raw = data.get("restricted_media_sources")
    restricted = (
        DEFAULT_RESTRICTED
        if restricted_raw is None
        else tuple(
            RestrictedSource(str(item["media_source"]), item.get("policy", "drop"))
            for item in restricted_raw
        )
    )
    return IntegrationSettings(
        active=bool(data.get("active", defaults.active)),
        account_id=data.get("account_id"),
        account_passcode=data.get("account_passcode"),
        account_token=data.get("account_token"),
        region=str(data.get("region", defaults.region)),
        default_postbacks=data.get("default_postbacks", defaults.default_postbacks),
        install_event_name=str(data.get("install_event_name", defaults.install_event_name)),
        reengagement_event_name=str(
            data.get("reengagement_event_name", defaults.reengagement_event_name)
        ),
        identity_field=data.get("identity_field", defaults.identity_field),
        in_app_enabled=bool(in_app.get("enabled", defaults.in_app_enabled)),
        postback_window_days=int(in_app.get("postback_window_days", defaults.postback_window_days)),
        mappings=tuple(
            EventMapping(
                sdk_event=str(item["sdk_event"]),
                partner_event=str(item["partner_event"]),
                sending_option=item.get("sending_option", "this_partner"),
                send_revenue=item.get("send_revenue", "none"),
            )
            for item in in_app.get("mappings", ())
        ),
        restricted_media_sources=restricted,
    )


SCRUBBED: Final = "***"


def secret_forms(secret: str) -> list[str]:
    """A secret as it may come back inside an answer: plain, base64 (standard and URL-safe,
    with and without padding) and percent-encoded (both cases of the hex digits); longest first,
    so no form is left half-replaced."""
    raw = secret.encode()
    forms = {secret}
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode()
        forms |= {text, text.rstrip("=")}
    for quoted in (quote(secret, safe=""), quote_plus(secret, safe="")):
        forms |= {quoted, re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quoted)}
    return sorted((f for f in forms if len(f) >= 4), key=len, reverse=True)


def scrub_secrets(value: Any, secrets: Iterable[str | None]) -> Any:
    """`value` (text, or JSON: objects, lists, strings) with every form of every secret
    replaced by `***`: run on all that CleverTap answers before any of it is stored."""
    forms = [form for secret in secrets if secret for form in secret_forms(secret)]
    if not forms:
        return value
    return _scrub(value, forms)


def _scrub(value: Any, forms: list[str]) -> Any:
    if isinstance(value, str):
        for form in forms:
            if form in value:
                value = value.replace(form, SCRUBBED)
        return value
    if isinstance(value, Mapping):
        return {_scrub(k, forms): _scrub(v, forms) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, forms) for v in value]
    return value
