"""The JSON API's request and response models: the one source of the OpenAPI document.

Each field has its type, its limits (the constants the validators in `linkgen/domain/` and
`linkgen/domain/sdk_requests.py` use, imported, never copied), a description and an example.
`linkgen/web/openapi.py` turns them into the document with pydantic's JSON Schema.

Requests are still validated by the domain's readers, not by these models: they name each
refused field as sent (`params.af_sub1`, `mappings[2].send_revenue`), hold the rules a schema
cannot say (allow-lists, placeholders, reserved names, windows), and the SDK's launch and event
calls are hot paths. `tests/integration/test_api_models.py` sends each model's boundary values
through the real endpoints, so the document and the code cannot drift apart unnoticed.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from linkgen.domain import apps as app_rules
from linkgen.domain import clevertap as ct
from linkgen.domain import links as link_rules
from linkgen.domain import sdk_requests as sdk_rules
from linkgen.domain import templates as template_rules
from linkgen.domain import windows
from linkgen.domain.domains import MAX_DOMAIN_CHARS
from linkgen.domain.validate import MAX_HTTPS_URL_CHARS
from linkgen.services import qr as qr_rules
from linkgen.services.devices import MAX_DAYS as DEVICE_MAX_DAYS
from linkgen.services.devices import MAX_QUERY_CHARS as DEVICE_MAX_QUERY_CHARS
from linkgen.web.pagination import MAX_LIMIT

# ---- patterns built from the domain's own rules ------------------------------------------------


def _number_range(hi: int) -> str:
    """A regular expression for the whole numbers 1..hi (hi below 100), e.g. 23:
    `[1-9]|1[0-9]|2[0-3]`."""
    assert 1 <= hi < 100
    tens, units = divmod(hi, 10)
    parts = [f"[1-{min(hi, 9)}]"]
    if tens >= 2:
        parts.append(f"[1-{tens - 1}][0-9]")
    if tens >= 1:
        parts.append(f"{tens}[0-{units}]")
    return "(?:" + "|".join(parts) + ")"


def _window_pattern(max_hours: int, max_days: int, *, lifetime: bool = False) -> str:
    hours = _number_range(max_hours) + "h"
    days = _number_range(max_days) + "d"
    return f"^(?:{hours}|{days}{'|lifetime' if lifetime else ''})$"


def _anchored(pattern: re.Pattern[str]) -> str:
    return pattern.pattern.removeprefix("^").removesuffix("$")


APP_ID_PATTERN = (
    f"^(?:{_anchored(app_rules.IOS_APP_ID_RE)}|{_anchored(app_rules.ANDROID_PACKAGE_RE)})$"
)
CLICK_LOOKBACK_PATTERN = _window_pattern(
    windows.CLICK_LOOKBACK.max_hours, windows.CLICK_LOOKBACK.max_days
)
REENGAGEMENT_PATTERN = _window_pattern(
    windows.REENGAGEMENT_WINDOW.max_hours,
    windows.REENGAGEMENT_WINDOW.max_days,
    lifetime=windows.REENGAGEMENT_WINDOW.allow_lifetime,
)
# What validate.https_url accepts, as far as a pattern can say it: https, a host, no spaces,
# control characters, backslashes, user name or #fragment.
HTTPS_URL_PATTERN = r"^https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?][!-\"$-\[\]-~]*)?$"
# A character str.strip() keeps. Python's `\s` also covers \x1c-\x1f and \x85, but the fuzzer's
# regex generator treats them as non-space, so they are named.
NON_SPACE = r"[^\s\x1c-\x1f\x85]"
NOT_BLANK = NON_SPACE  # at least one character that is not a space
TRIMMED = rf"^{NON_SPACE}(?:.*{NON_SPACE})?$"  # no surrounding spaces
NO_NUL = r"^[^\x00]*$"  # a NUL byte anywhere in a URL is refused (docs/security.md)
NO_NUL_NOT_BLANK = r"^[^\x00]*[^\s\x00\x1c-\x1f\x85][^\x00]*$"
PRINTABLE_CREDENTIAL = r"^[!-~]+$"  # printable ASCII, no spaces: these travel in HTTP headers
SHORTLINK_ID_PATTERN = link_rules.SHORTLINK_ID_RE.pattern.replace(r"\A", "^").replace(r"\Z", "$")
TTL_PATTERN = r"^[1-9][0-9]{0,8}[mhd]?$"
TAG_PATTERN = link_rules.TAG_RE.pattern.replace(r"\A", "^").replace(r"\Z", "$")
TITLE_TEXT = f"^[^{link_rules.TITLE_FORBIDDEN_CHARS}]*$"  # no control characters
NOTES_TEXT = f"^[^{link_rules.NOTES_FORBIDDEN_CHARS}]*$"  # tabs and line breaks allowed

WINDOW_DESCRIPTION = "`Nh` or `Nd`"


class RequestModel(BaseModel):
    """Request bodies: fields outside the contract are refused (a typo must not pass)."""

    model_config = ConfigDict(extra="forbid")


class ResponseModel(BaseModel):
    """Answers: fields may be added in a later version; clients ignore what they do not know."""


# ---- errors and lists ------------------------------------------------------------------------


class ErrorDetail(ResponseModel):
    code: str = Field(
        description="invalid_parameter, unauthorized, forbidden, not_found, conflict, "
        "rate_limited, ...",
        examples=["invalid_parameter"],
    )
    message: str = Field(description="a sentence for people", examples=["team_id is too long"])
    field: str | None = Field(
        default=None,
        description="path of the request field as sent, e.g. `params.af_r`, `mappings[2].policy`",
        examples=["team_id"],
    )


class Error(ResponseModel):
    """Every refusal: 400 bad input, 401 no or bad key, 403, 404, 409, 429."""

    error: ErrorDetail


NextCursor = Annotated[
    str | None, Field(description="cursor of the next page (`?cursor=`); null at the end")
]

# ---- apps ------------------------------------------------------------------------------------

_ReattributionDays = Annotated[
    int,
    Field(
        ge=app_rules.MIN_REATTRIBUTION_WINDOW_DAYS,
        le=app_rules.MAX_REATTRIBUTION_WINDOW_DAYS,
        description="days after an install in which a reinstall may be attributed anew",
        examples=[90],
    ),
]


class AppSettingsFields(RequestModel):
    bundle_id: str | None = Field(
        default=None,
        max_length=app_rules.MAX_BUNDLE_ID_CHARS,
        pattern=app_rules.ANDROID_PACKAGE_RE.pattern,
        description="the iOS bundle id (for apple-app-site-association)",
        examples=["com.example.shop"],
    )
    team_id: str | None = Field(
        default=None,
        min_length=app_rules.TEAM_ID_CHARS,
        max_length=app_rules.TEAM_ID_CHARS,
        pattern=app_rules.TEAM_ID_RE.pattern,
        description="Apple's team id: capitals and digits",
        examples=["ABCDE12345"],
    )
    sha256_cert_fingerprints: (
        list[Annotated[str, Field(pattern=app_rules.FINGERPRINT_RE.pattern)]] | None
    ) = Field(
        default=None,
        description="the Android signing certificates (for assetlinks.json)",
        examples=[[":".join(["AB"] * 32)]],
    )
    store_url: str | None = Field(
        default=None,
        max_length=app_rules.MAX_STORE_URL_CHARS,
        pattern=HTTPS_URL_PATTERN,
        description="an https URL; default: the app's App Store or Google Play page",
        examples=["https://play.google.com/store/apps/details?id=com.example.shop"],
    )
    click_lookback: (
        Annotated[
            str,
            Field(max_length=app_rules.MAX_CLICK_LOOKBACK_CHARS, pattern=CLICK_LOOKBACK_PATTERN),
        ]
        | SkipJsonSchema[None]
    ) = Field(
        default=None,
        description=f"how long a click may win an install: {WINDOW_DESCRIPTION} "
        f"(1h..{windows.CLICK_LOOKBACK.max_hours}h, 1d..{windows.CLICK_LOOKBACK.max_days}d);"
        " default 7d",
        examples=["7d"],
    )
    reengagement_window: (
        Annotated[
            str,
            Field(max_length=app_rules.MAX_REENGAGEMENT_WINDOW_CHARS, pattern=REENGAGEMENT_PATTERN),
        ]
        | SkipJsonSchema[None]
    ) = Field(
        default=None,
        description=f"how long a re-engagement is credited: {WINDOW_DESCRIPTION} "
        f"(1h..{windows.REENGAGEMENT_WINDOW.max_hours}h, "
        f"1d..{windows.REENGAGEMENT_WINDOW.max_days}d) "
        "or `lifetime`; default 30d",
        examples=["30d"],
    )
    reattribution_window_days: _ReattributionDays | SkipJsonSchema[None] = Field(default=None)
    probabilistic_matching: bool | SkipJsonSchema[None] = Field(
        default=None,
        description="match launches to clicks by address and device when nothing else matches; "
        "default true",
        examples=[True],
    )


class AppCreate(AppSettingsFields):
    """A new app. iOS app ids are `id` + digits; anything else must be an Android package."""

    app_id: str = Field(
        max_length=app_rules.MAX_ANDROID_PACKAGE_CHARS,
        pattern=APP_ID_PATTERN,
        description="iOS: `id` + at most 15 digits; Android: the package name",
        examples=["com.example.shop"],
    )
    name: str = Field(
        max_length=app_rules.MAX_APP_NAME_CHARS,
        pattern=NOT_BLANK,
        description="shown in the UI",
        examples=["Shop"],
    )


class AppPatch(AppSettingsFields):
    """Only the fields sent change."""

    name: (
        Annotated[str, Field(max_length=app_rules.MAX_APP_NAME_CHARS, pattern=NOT_BLANK)]
        | SkipJsonSchema[None]
    ) = Field(
        default=None,
        description="shown in the UI",
        examples=["Shop"],
    )
    rotate_sdk_key: bool | None = Field(
        default=None,
        description="issue a new SDK key (answered once; the old one stops at once)",
        examples=[False],
    )


class App(ResponseModel):
    app_id: str = Field(examples=["com.example.shop"])
    name: str = Field(examples=["Shop"])
    platform: Literal["ios", "android"] = Field(description="from the app id")
    bundle_id: str | None
    team_id: str | None
    sha256_cert_fingerprints: list[str]
    store_url: str = Field(description="as set, else the store page")
    sdk_key: str | None = Field(
        default=None, description="only in the answer that created (or rotated) it"
    )
    sdk_key_hint: str = Field(description="the last characters of the SDK key")
    click_lookback: str = Field(examples=["7d"])
    reengagement_window: str = Field(examples=["30d"])
    reattribution_window_days: int = Field(examples=[90])
    probabilistic_matching: bool
    created_at: str | None = Field(description="ISO 8601, UTC")
    updated_at: str | None = Field(description="ISO 8601, UTC")


class AppList(ResponseModel):
    items: list[App]
    next: NextCursor


# ---- templates -------------------------------------------------------------------------------


class TemplateFields(RequestModel):
    ios_app_id: str | None = Field(
        default=None,
        max_length=template_rules.MAX_TEMPLATE_APP_ID_CHARS,
        pattern=NOT_BLANK,
        description="a registered iOS app (id + digits)",
        examples=["id123456789"],
    )
    android_app_id: str | None = Field(
        default=None,
        max_length=template_rules.MAX_TEMPLATE_APP_ID_CHARS,
        pattern=NOT_BLANK,
        description="a registered Android app (package name)",
        examples=["com.example.shop"],
    )
    uri_scheme: str | None = Field(
        default=None,
        max_length=template_rules.MAX_URI_SCHEME_CHARS,
        description="the app's scheme: `myapp`, `myapp:` or `myapp://` (stored as `myapp://`); "
        "not http, https, javascript and other web schemes",
        examples=["myapp://"],
    )
    universal_links: bool | SkipJsonSchema[None] = Field(
        default=None, description="iOS Universal Links on this domain", examples=[True]
    )
    app_links: bool | SkipJsonSchema[None] = Field(
        default=None, description="Android App Links on this domain", examples=[True]
    )
    web_fallback_url: str | None = Field(
        default=None,
        max_length=MAX_HTTPS_URL_CHARS,
        pattern=HTTPS_URL_PATTERN,
        description="an https URL for desktop clicks (need not be on the allow-list)",
        examples=["https://example.com/app"],
    )
    not_found_url: str | None = Field(
        default=None,
        max_length=MAX_HTTPS_URL_CHARS,
        pattern=HTTPS_URL_PATTERN,
        description="an https URL where an unknown or deleted short link on this template "
        "redirects; default: web_fallback_url (else a 404 page)",
        examples=["https://example.com/"],
    )
    redirect_allowlist: list[str] | None = Field(
        default=None,
        description="hosts that `af_r`, `af_web_dp` and the other redirect parameters may name; "
        "an entry matches the host and its subdomains; public suffixes (com, co.uk) are refused",
        examples=[["example.com"]],
    )


class TemplateCreate(TemplateFields):
    """A OneLink template: the domain and the apps its links open."""

    template_id: str | None = Field(
        default=None,
        min_length=template_rules.TEMPLATE_ID_CHARS,
        max_length=template_rules.TEMPLATE_ID_CHARS,
        pattern=template_rules.TEMPLATE_ID_RE.pattern,
        description="letters and digits; generated when omitted; UI and API paths are refused",
        examples=["AbCd"],
    )
    domain: str = Field(
        max_length=template_rules.MAX_TEMPLATE_DOMAIN_CHARS,
        description="one of LINKGEN_LINK_DOMAINS or a branded domain",
        examples=["go.example.com"],
    )


class TemplatePatch(TemplateFields):
    """Only the fields sent change."""

    domain: (
        Annotated[str, Field(max_length=template_rules.MAX_TEMPLATE_DOMAIN_CHARS)]
        | SkipJsonSchema[None]
    ) = Field(
        default=None,
        description="one of LINKGEN_LINK_DOMAINS or a branded domain",
        examples=["go.example.com"],
    )


class Template(ResponseModel):
    template_id: str = Field(examples=["AbCd"])
    domain: str = Field(examples=["go.example.com"])
    ios_app_id: str | None
    android_app_id: str | None
    uri_scheme: str | None = Field(examples=["myapp://"])
    universal_links: bool
    app_links: bool
    web_fallback_url: str | None
    not_found_url: str | None
    redirect_allowlist: list[str]
    created_at: str | None
    updated_at: str | None


class TemplateList(ResponseModel):
    items: list[Template]
    next: NextCursor


# ---- branded domains -------------------------------------------------------------------------


class DomainCreate(RequestModel):
    """A branded link domain."""

    domain: str = Field(
        max_length=MAX_DOMAIN_CHARS,
        description="host[:port]; templates may use it at once, in every process",
        examples=["go.brand.com"],
    )


class DomainDns(ResponseModel):
    type: str | None = Field(default=None, examples=["CNAME"])
    name: str | None = Field(default=None, examples=["go.brand.com"])
    value: str | None = None
    note: str | None = None


class Domain(ResponseModel):
    domain: str = Field(examples=["go.brand.com"])
    status: Literal["pending_dns", "active"]
    dns: DomainDns = Field(description="the DNS record to create")
    created_at: str | None
    seen_at: str | None = Field(default=None, description="when a request last arrived on it")


class DomainList(ResponseModel):
    items: list[Domain]
    next: NextCursor


# ---- CleverTap integration -------------------------------------------------------------------

_EventName = Annotated[
    str, Field(min_length=1, max_length=ct.MAX_EVENT_NAME_CHARS, pattern=TRIMMED)
]


class EventMapping(RequestModel):
    sdk_event: _EventName = Field(description="the app's event name", examples=["af_purchase"])
    partner_event: _EventName = Field(
        description="the CleverTap event it is sent as (not `UTM Visited`)", examples=["Charged"]
    )
    sending_option: ct.SendingOption = Field(
        description="this_partner: only events of users CleverTap's links brought",
        examples=["all_sources"],
    )
    send_revenue: ct.SendRevenue = Field(
        description="none, the event's values, or the values and the revenue (`Amount`)",
        examples=["values_and_revenue"],
    )


class InAppEvents(RequestModel):
    enabled: bool | SkipJsonSchema[None] = Field(
        default=None, description="send in-app events", examples=[True]
    )
    postback_window_days: (
        Annotated[int, Field(ge=ct.MIN_WINDOW_DAYS, le=ct.MAX_WINDOW_DAYS)] | SkipJsonSchema[None]
    ) = Field(
        default=None, description="days after the install in which events are sent", examples=[180]
    )
    mappings: (
        Annotated[list[EventMapping], Field(max_length=ct.MAX_MAPPINGS)] | SkipJsonSchema[None]
    ) = Field(default=None, description="which events are sent, and as what; each sdk_event once")


class RestrictedSource(RequestModel):
    media_source: str = Field(
        min_length=1,
        max_length=ct.MAX_MEDIA_SOURCE_CHARS,
        pattern=TRIMMED,
        examples=["snapchat_int"],
    )
    policy: ct.RestrictionPolicy = Field(
        description="drop the postback, or send it as organic", examples=["drop"]
    )


class ClevertapSettingsInput(RequestModel):
    """Omitted fields keep their stored value; secrets are write-only."""

    active: bool | SkipJsonSchema[None] = Field(
        default=None, description="send postbacks", examples=[True]
    )
    account_id: str | None = Field(
        default=None,
        max_length=ct.MAX_ACCOUNT_ID_CHARS,
        pattern=PRINTABLE_CREDENTIAL,
        description="'' or null clears it",
        examples=["W6K-556-4K6Z"],
    )
    account_passcode: str | None = Field(
        default=None,
        max_length=ct.MAX_SECRET_CHARS,
        pattern=PRINTABLE_CREDENTIAL,
        description="write-only: omitted keeps the stored one, '' or null clears it",
        examples=["ABC-DEF-GHI"],
    )
    account_token: str | None = Field(
        default=None,
        max_length=ct.MAX_SECRET_CHARS,
        pattern=PRINTABLE_CREDENTIAL,
        description="write-only: omitted keeps the stored one, '' or null clears it",
        examples=["a1b-2c3"],
    )
    region: (
        Annotated[str, Field(max_length=ct.MAX_REGION_CHARS, pattern=NOT_BLANK)]
        | SkipJsonSchema[None]
    ) = Field(
        default=None,
        description=f"one of {', '.join(ct.REGION_HOSTS)} (case-sensitive); anything else "
        f"sends to {ct.DEFAULT_REGION} with a warning",
        examples=["EU1"],
    )
    default_postbacks: ct.DefaultPostbacks | SkipJsonSchema[None] = Field(
        default=None, description="which installs are sent", examples=["this_partner"]
    )
    install_event_name: _EventName | SkipJsonSchema[None] = Field(
        default=None, examples=["App Install Attributed"]
    )
    reengagement_event_name: _EventName | SkipJsonSchema[None] = Field(
        default=None, examples=["App Re-engagement Attributed"]
    )
    identity_field: ct.IdentityField | SkipJsonSchema[None] = Field(
        default=None,
        description="the CleverTap field the customer user id is sent in",
        examples=["objectId"],
    )
    in_app_events: InAppEvents | SkipJsonSchema[None] = Field(default=None)
    restricted_media_sources: (
        Annotated[list[RestrictedSource], Field(max_length=ct.MAX_RESTRICTED)]
        | SkipJsonSchema[None]
    ) = Field(
        default=None,
        description="each media source once; pre-filled with AppsFlyer's restricted sources "
        "when never set",
    )


class ClevertapSettings(ResponseModel):
    """The settings as stored, secrets masked (last 3 characters shown)."""

    active: bool
    account_id: str | None = Field(examples=["W6K-556-4K6Z"])
    account_passcode: str | None = Field(description="masked", examples=["********GHI"])
    account_token: str | None = Field(description="masked")
    has_passcode: bool
    has_token: bool
    region: str | None = Field(examples=["EU1"])
    endpoint: str | None = Field(examples=["https://in1.api.clevertap.com/1/upload"])
    warnings: list[str] = Field(
        description="plain sentences: settings that will not work as expected"
    )


class ClevertapTestResult(ResponseModel):
    ok: bool
    status: int | None = Field(description="CleverTap's HTTP status, null when unreachable")
    message: str


class AuditEntry(ResponseModel):
    actor: str | None = None
    at: str | None = None
    changes: dict[str, Any] | None = Field(default=None, description="secrets never shown")


class AuditList(ResponseModel):
    items: list[AuditEntry]
    next: NextCursor


# ---- links -----------------------------------------------------------------------------------

Channel = Literal["email", "sms", "push", "qr", "custom"]


def _optional_text(limit: int, pattern: str, description: str, example: str) -> Any:
    """An optional free-text field for people (a link's title or notes)."""
    return Field(
        default=None,
        max_length=limit,
        pattern=pattern,
        description=description,
        examples=[example],
    )


class LinkFields(RequestModel):
    channel: Channel | SkipJsonSchema[None] = Field(
        default=None,
        description="sets `af_channel`; default `custom`; push links get is_retargeting=true",
        examples=["email"],
    )
    campaign: str | None = Field(
        default=None,
        max_length=link_rules.VALUE_LIMITS["c"],
        description="the `c` parameter",
        examples=["spring_sale"],
    )
    media_source: str | None = Field(
        default=None,
        max_length=link_rules.VALUE_LIMITS["pid"],
        description="the `pid`; default by channel (Email, SMS, Push, QR; custom: required); "
        "no `_int` suffix or self-reporting network names",
        examples=["Email"],
    )
    params: dict[str, str] | None = Field(
        default=None,
        description="OneLink parameters (af_adset, af_sub1..5, deep_link_value, af_r, ...); "
        "values may hold CleverTap Liquid placeholders (`{{ ... }}`, `{% ... %}`); `pid`, `c`, "
        "`af_channel` (the top-level fields) and `lg_link` are refused; "
        f"keys at most {link_rules.MAX_KEY_LENGTH} characters",
        examples=[{"deep_link_value": "shoes", "af_sub5": "{{Profile.objectId}}"}],
    )
    short: bool | None = Field(
        default=None,
        description="a short link; default true for sms and qr",
        examples=[True],
    )
    shortlink_id: str | None = Field(
        default=None,
        max_length=link_rules.MAX_SHORTLINK_ID_CHARS,
        pattern=SHORTLINK_ID_PATTERN,
        description="the short link's path; generated when omitted; implies a short link",
        examples=["spring26"],
    )
    ttl: str | None = Field(
        default=None,
        pattern=TTL_PATTERN,
        description="`Nm`, `Nh`, `Nd` or bare days; 1 minute to 365 days. Absent or null: "
        "31 days, except QR links, which then never expire (`expires_at` null); on PATCH, "
        "null gives the channel's default again",
        examples=["31d"],
    )
    renew_ttl: bool | None = Field(
        default=None, description="clicks push the expiry forward; default true"
    )
    title: str | None = _optional_text(
        link_rules.MAX_TITLE_CHARS,
        TITLE_TEXT,
        "what the link is called in lists (not in any URL); one line, surrounding spaces "
        "dropped; empty or null: none (lists show the campaign)",
        "Spring sale: running shoes",
    )
    tags: (
        list[Annotated[str, Field(max_length=link_rules.MAX_TAG_CHARS, pattern=TAG_PATTERN)]] | None
    ) = Field(
        default=None,
        max_length=link_rules.MAX_TAGS,
        description=f"short labels to group and find links (`GET /links?tag=`): "
        f"{link_rules.TAG_CHARS}, at most {link_rules.MAX_TAG_CHARS} characters each; kept "
        "lower-case and once each; on PATCH the list replaces the link's tags",
        examples=[["spring", "shoes"]],
    )
    notes: str | None = _optional_text(
        link_rules.MAX_NOTES_CHARS,
        NOTES_TEXT,
        "notes for the team (not in any URL); several lines allowed; empty or null: none",
        "Footer link of the spring newsletter",
    )


class LinkCreate(LinkFields):
    """A link on a template. Every refusal names its field."""

    template_id: str = Field(
        min_length=template_rules.TEMPLATE_ID_CHARS,
        max_length=template_rules.TEMPLATE_ID_CHARS,
        description="an existing template",
        examples=["AbCd"],
    )


class LinkPatch(LinkFields):
    """Only the fields sent change; short links are dynamic (the printed URL stays).
    `template_id`, `shortlink_id` and `short` cannot change: sent with another value than the
    link's, they are refused (400 naming the field); create a new link instead."""

    short: bool | None = Field(
        default=None,
        description="cannot change: only the link's own value is accepted",
        examples=[True],
    )
    shortlink_id: str | None = Field(
        default=None,
        max_length=link_rules.MAX_SHORTLINK_ID_CHARS,
        pattern=SHORTLINK_ID_PATTERN,
        description="cannot change: only the link's own value is accepted",
    )


class ClevertapSnippets(ResponseModel):
    url: str = Field(description="the URL with placeholders raw, for CleverTap")
    email_html: str = Field(examples=['<a href="https://go.example.com/AbCd/x7Gk2pQa">Open</a>'])
    sms_text: str
    push_payload: dict[str, Any] = Field(examples=[{"wzrk_dl": "https://go.example.com/AbCd"}])


class Link(ResponseModel):
    id: str
    template_id: str = Field(examples=["AbCd"])
    channel: Channel
    media_source: str = Field(examples=["Email"])
    campaign: str | None = Field(examples=["spring_sale"])
    params: dict[str, Any]
    partner: str = Field(examples=["clevertap"])
    long_url: str = Field(
        description="Carries `lg_link` (the link's id), so its clicks count for this link, also "
        "after placeholders are substituted and parameters appended",
        examples=["https://go.example.com/AbCd?pid=Email&c=spring_sale&af_channel=email"],
    )
    short_url: str | None = Field(examples=["https://go.example.com/AbCd/x7Gk2pQa"])
    shortlink_id: str | None = Field(examples=["x7Gk2pQa"])
    expires_at: str | None = Field(
        description="when the short URL expires (renewed by clicks); null: never"
    )
    clevertap: ClevertapSnippets
    qr_png_url: str
    qr_svg_url: str
    short: bool
    ttl: str | None = Field(description="null: the link never expires", examples=["31d"])
    renew_ttl: bool
    created_at: str | None
    updated_at: str | None
    created_by: str | None = None
    title: str | None = Field(
        default=None,
        description="what the link is called in lists; null: none",
        examples=["Spring sale: running shoes"],
    )
    tags: list[str] = Field(
        default_factory=list,
        description="the link's tags, lower-case, in the order given",
        examples=[["spring", "shoes"]],
    )
    notes: str | None = Field(
        default=None, description="notes for the team; null: none", examples=["Footer link"]
    )


class LinkList(ResponseModel):
    items: list[Link]
    next: NextCursor


class BulkRow(ResponseModel):
    row: int
    ok: bool
    link: Link | None = None
    error: ErrorDetail | None = None


class BulkResult(ResponseModel):
    created: int
    failed: int
    results: list[BulkRow]


class QrZipRequest(RequestModel):
    """`ids` or `campaign` (not both)."""

    ids: list[str] | None = Field(default=None, min_length=1, description="link ids")
    campaign: str | None = Field(
        default=None, max_length=link_rules.VALUE_LIMITS["c"], examples=["spring_sale"]
    )
    format: Literal["png", "svg"] = Field(default="png")
    size: int = Field(default=600, ge=qr_rules.MIN_SIZE, le=qr_rules.MAX_SIZE)
    margin: int = Field(default=4, ge=qr_rules.MIN_MARGIN, le=qr_rules.MAX_MARGIN)
    ec: Literal["L", "M", "Q", "H"] = Field(default="M", description="error correction")
    fg: str = Field(
        default="#000000",
        pattern=qr_rules.COLOUR_PATTERN,
        description="colour of the modules, `#rrggbb`: darker than `bg`, contrast at least 3:1",
        examples=["#1a1a6e"],
    )
    bg: str = Field(
        default="#ffffff",
        pattern=qr_rules.COLOUR_PATTERN,
        description="background colour, `#rrggbb`",
        examples=["#ffffff"],
    )


# ---- postbacks and stats ---------------------------------------------------------------------

PostbackStatus = Literal["queued", "sending", "in_doubt", "sent", "failed", "skipped"]
PostbackKind = Literal["install", "reengagement", "event"]


class Postback(ResponseModel):
    id: int
    linkgen_id: str | None = Field(default=None, description="stable: recognises a duplicate")
    app_id: str
    kind: PostbackKind
    status: PostbackStatus = Field(
        description="in_doubt: the call carrying it got no answer (timeout, or the worker "
        "stopped mid-call); CleverTap's events API is asked whether it arrived before it is sent "
        "again (next_attempt_at says when)"
    )
    reason: str | None = Field(description="for skipped: why", examples=["restricted_media_source"])
    record: dict[str, Any] | None = Field(description="the record sent (passcode never shown)")
    attempts: int
    last_status: int | None = Field(description="the last HTTP status")
    response: dict[str, Any] | None = Field(description="CleverTap's per-record answer")


class PostbackList(ResponseModel):
    items: list[Postback]
    next: NextCursor


class StatsRow(ResponseModel):
    link_id: str | None = None
    campaign: str | None = None
    channel: str | None = None
    media_source: str | None = None
    clicks: int
    human_clicks: int
    bot_clicks: int
    installs: int
    reengagements: int
    events: int
    revenue: float


class StatsList(ResponseModel):
    items: list[StatsRow]
    next: NextCursor


BreakdownDimension = Literal["platform", "os", "country", "referrer"]


class BreakdownRow(ResponseModel):
    """One value of a breakdown of the clicks over the days asked for."""

    dimension: BreakdownDimension = Field(
        description="what the clicks are broken down by", examples=["country"]
    )
    value: str | None = Field(
        description="platform: `ios`, `android`, `desktop` or `other`; os: the platform and "
        "its major version (`iOS 17`, `Android 14`, `Computer`); country: the ISO 3166 code of "
        "the click's address, null when it was not stored (privacy setting) or is in no "
        "country; referrer: the referring page's host, `direct` for none",
        examples=["US"],
    )
    label: str = Field(description="the value as the reports page shows it", examples=["US"])
    human_clicks: int = Field(description="people's clicks", examples=[1520])
    bot_clicks: int = Field(
        description="clicks by crawlers, link checkers and email scanners", examples=[212]
    )
    clicks: int = Field(description="human_clicks + bot_clicks", examples=[1732])


class BreakdownList(ResponseModel):
    items: list[BreakdownRow] = Field(
        description="every value of each breakdown asked for (by dimension: platform, os, "
        "country, referrer), most people's clicks first",
        examples=[
            [
                {
                    "dimension": "country",
                    "value": "US",
                    "label": "US",
                    "human_clicks": 1520,
                    "bot_clicks": 212,
                    "clicks": 1732,
                }
            ]
        ],
    )
    next: NextCursor


class DeviceReport(ResponseModel):
    """A test device: clicks, launches (the match each got and why other clicks were passed
    over), events and postbacks."""

    app_id: str
    q: str
    days: int | None = None
    installs: list[dict[str, Any]]
    clicks: list[dict[str, Any]]
    launches: list[dict[str, Any]]
    events: list[dict[str, Any]]
    postbacks: list[Postback]


# ---- SDK -------------------------------------------------------------------------------------


# SDK strings are trimmed and must be printable (str.isprintable: no control, format or
# unassigned characters); the pattern says what a pattern can (no C0 or C1 controls).
SDK_TEXT = r"^[^\x00-\x1f\x7f-\x9f]*$"
SDK_TEXT_NOTE = "; printable text (no control or format characters)"
SDK_REQUIRED_TEXT = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"


def _sdk_string(limit: int, description: str, example: Any = None) -> Any:
    examples = [example] if example is not None else None
    return Field(
        default=None,
        max_length=limit,
        pattern=SDK_TEXT,
        description=description + SDK_TEXT_NOTE,
        examples=examples,
    )


class LaunchRequest(BaseModel):
    """An app start; see docs/sdk-contract.md. Strings are trimmed; blank counts as absent."""

    device_id: str = Field(
        max_length=sdk_rules.MAX_DEVICE_ID_CHARS,
        pattern=SDK_REQUIRED_TEXT,
        description="the app's install id (new on every install)" + SDK_TEXT_NOTE,
        examples=["5b0f3c0e-8a4e-4c53-9d3e-2f1d8f0b6a11"],
    )
    customer_user_id: str | None = _sdk_string(
        sdk_rules.MAX_CUSTOMER_USER_ID_CHARS, "the CleverTap ID", "__h1a2b3c"
    )
    first_launch: bool | None = Field(
        default=None, description="true on the first start after an install", examples=[True]
    )
    install_referrer: str | None = _sdk_string(
        sdk_rules.MAX_URL_CHARS,
        "the raw Play Install Referrer string",
        "af_tranid=ck_01HZX3&pid=Email&c=spring_sale",
    )
    deep_link_url: str | None = _sdk_string(
        sdk_rules.MAX_URL_CHARS, "the Universal Link, App Link or push URL that opened the app"
    )
    idfa: str | None = _sdk_string(sdk_rules.MAX_DEVICE_KEY_CHARS, "all zeros reads as absent")
    idfv: str | None = _sdk_string(sdk_rules.MAX_DEVICE_KEY_CHARS, "iOS vendor id")
    gaid: str | None = _sdk_string(sdk_rules.MAX_DEVICE_KEY_CHARS, "Google advertising id")
    ip: str | None = Field(
        default=None,
        description="an IPv4 or IPv6 address; default: the request's",
        examples=["203.0.113.7"],
    )
    user_agent: str | None = _sdk_string(sdk_rules.MAX_USER_AGENT_CHARS, "default: the request's")
    ts: str | None = Field(
        default=None,
        max_length=sdk_rules.MAX_TS_CHARS,
        description="ISO 8601 with a time zone; default now; may lie up to 366 days in the past, "
        "at most 5 minutes in the future",
        examples=["2026-12-02T10:00:00.123Z"],
    )
    os: Literal["ios", "android"] | None = Field(
        default=None,
        description="the device's platform (any case); must be the app's own. Default: read from "
        "user_agent (CFNetwork/Darwin, Dalvik, okhttp or a browser's), else the app's platform",
    )
    os_version: str | None = Field(
        default=None,
        max_length=sdk_rules.MAX_OS_VERSION_CHARS,
        pattern=r"^\s*[0-9]{1,3}(\.[0-9]{1,4}){0,3}\s*$",
        description="e.g. 17.4; compared with the click's browser. Default: read from user_agent",
        examples=["17.4"],
    )
    app_version: str | None = _sdk_string(
        sdk_rules.MAX_APP_VERSION_CHARS, "kept on the launch as sent", "3.2.0"
    )
    sdk: str | None = _sdk_string(
        sdk_rules.MAX_APP_VERSION_CHARS, "SDK name and version, kept as sent", "linkgen-js/1.0"
    )


class Attribution(ResponseModel):
    is_organic: bool
    media_source: str | None = Field(examples=["Email"])
    campaign: str | None = Field(examples=["spring_sale"])
    channel: str | None = Field(examples=["email"])
    match_type: (
        Literal["referrer", "device_id", "customer_user_id", "probabilistic", "deep_link"] | None
    )
    click_id: str | None
    click_time: str | None
    link_id: str | None


class DeepLink(ResponseModel):
    status: Literal["FOUND", "NOT_FOUND"]
    deep_link_value: str | None = Field(default=None, examples=["shoes"])


class Launch(ResponseModel):
    launch_id: str
    type: Literal["install", "reinstall", "reattribution", "reengagement", "open"]
    attribution: Attribution
    deep_link: DeepLink = Field(description="also every deep_link_sub* of the click")


class EventRequest(BaseModel):
    """An in-app event; stored and sent once per event_id."""

    event_id: str = Field(
        max_length=sdk_rules.MAX_EVENT_ID_CHARS,
        pattern=SDK_REQUIRED_TEXT,
        description="unique per event on the client: a retry with the same id answers 200"
        + SDK_TEXT_NOTE,
        examples=["order-1042"],
    )
    device_id: str | None = _sdk_string(
        sdk_rules.MAX_DEVICE_ID_CHARS,
        "the install id (device_id or customer_user_id is required)",
        "5b0f3c0e-8a4e-4c53-9d3e-2f1d8f0b6a11",
    )
    customer_user_id: str | None = _sdk_string(
        sdk_rules.MAX_CUSTOMER_USER_ID_CHARS, "the CleverTap ID", "__h1a2b3c"
    )
    event_name: str = Field(
        max_length=sdk_rules.MAX_SDK_EVENT_NAME_CHARS,
        pattern=SDK_REQUIRED_TEXT,
        description="the app's event name" + SDK_TEXT_NOTE,
        examples=["af_purchase"],
    )
    event_values: dict[str, Any] | None = Field(
        default=None,
        max_length=sdk_rules.MAX_EVENT_VALUES,
        description="`af_revenue` may be a number or a numeric string; `af_currency` is an ISO "
        "4217 code (default USD)",
        examples=[{"af_revenue": "9.99", "af_currency": "USD"}],
    )
    ts: str | None = Field(
        default=None,
        max_length=sdk_rules.MAX_TS_CHARS,
        description="ISO 8601 with a time zone; default now",
        examples=["2026-12-02T10:00:00Z"],
    )


class Event(ResponseModel):
    """The stored event and the source it is credited to."""

    event_id: str = Field(examples=["order-1042"])
    event_name: str = Field(examples=["af_purchase"])
    attribution: dict[str, Any] = Field(description="the install's source (organic or a click)")
    reengagement: dict[str, Any] | None = Field(
        description="the re-engagement the event falls in, if any"
    )


# Every model the document names, requests validated as sent and answers as serialized.
REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    AppCreate,
    AppPatch,
    TemplateCreate,
    TemplatePatch,
    DomainCreate,
    ClevertapSettingsInput,
    LinkCreate,
    LinkPatch,
    QrZipRequest,
    LaunchRequest,
    EventRequest,
)
RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    Error,
    App,
    AppList,
    Template,
    TemplateList,
    Domain,
    DomainList,
    ClevertapSettings,
    ClevertapTestResult,
    AuditList,
    Link,
    LinkList,
    BulkResult,
    Postback,
    PostbackList,
    StatsList,
    DeviceReport,
    Launch,
    Event,
)
PAGE_LIMIT_MAX = MAX_LIMIT
DEVICE_DAYS_MAX = DEVICE_MAX_DAYS
DEVICE_QUERY_MAX = DEVICE_MAX_QUERY_CHARS
