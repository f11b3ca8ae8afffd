"""Attribution of app launches and in-app events to link clicks (pure rules, no I/O).

The storage layer asks `candidate_keys(launch, app)` what to fetch, loads those clicks as
`ClickFacts`, looks up the device's own install (`existing`) and an earlier install matched by
idfv / gaid / customer user id (`prior`), and calls `attribute_launch`. The returned
`LaunchDecision` says what the launch is, which click won (the caller marks it consumed), why the
other clicks lost, and what deep-link data goes back to the app.

Rules (domain.md section 2; "our choice" where the public docs are silent):

* Windows are measured in whole `timedelta`s, to the microsecond, and are INCLUSIVE at the far
  end: a click exactly `lookback` old still counts, one a second older does not. A click whose ts
  is after the launch's never counts (`after_launch`); a click at the very same instant does (for
  a first launch it is then caught by the click-injection rule, for an open it is click-to-open 0).
* Match methods, strongest first: `deep_link` (the launch's deep-link URL carries the click id as
  `af_tranid`), `referrer` (`af_tranid` in the install referrer), `device_id`,
  `customer_user_id`, `probabilistic` (same IP, same platform, OS versions that agree:
  `linkgen.domain.useragents.os_versions_agree`, major.minor where both sides know them).
* The first four are deterministic and always beat a probabilistic match, whatever the
  recency (AppsFlyer's hierarchy). Inside a tier the last click wins; clicks at the same instant
  are ordered by stronger method, then by the larger click id, so the result never depends on
  the order the clicks were given in.
* Deterministic methods use the click's own `af_click_lookback`, else the app's. Probabilistic
  matching ignores the per-link lookback: its window is min(24 h, app lookback), and it is skipped
  entirely when the app switches it off.
* Bots, expired-link clicks and clicks already consumed never win. On first launches a
  click-to-install time under 10 s (strictly) is suspected click injection: recorded, never wins.
  Opens are exempt: a direct deep-link open legitimately follows its click within a second.
* Reinstall: a first launch with a `prior` install at most `reattribution_window` old (inclusive)
  is a `reinstall` (original source kept, not counted as an install) unless a retargeting click
  wins, which makes it a `reattribution` (counted as a re-engagement). Older priors: a new
  `install`. New installs accept retargeting clicks too (a new user is acquired whatever the
  link said).
* A non-first launch with no known install of its device is treated as a first launch (the SDK
  lost its state, or the app predates linkgen).
* Opens of an existing install: a `reengagement` when the deep-link URL itself is a retargeting
  link (click-to-open 0) or a retargeting click made after the install wins inside the lookback;
  otherwise an `open` that reports the install's own attribution.
* Same open (our choice): one tap on a push can reach linkgen twice, as a launch that reports the
  link itself (`deep_link_url`, the app opened from the notification) and as a click on the
  link domain (the SDK also opened the URL, the page opened the app again by its scheme), in
  either order. An open that would start a re-engagement from the same source as the install's
  current one (the same link id when both have one, else the same media source and campaign),
  with its click (or, for a URL without a click, the launch) at most `SAME_OPEN_WINDOW` (10
  min) after that re-engagement started, is that same open: an `open`, counting nothing, and
  its click is consumed without credit (`tied_clicks`, passed over as `same_open`) so it can
  never win a later launch. A click made before the re-engagement already cannot win it again.
* Deep-link data: on first launches only `deep_link_value` and `deep_link_sub1..10`, and only from
  a winning click at most 15 minutes old (inclusive) or from the launch's own deep-link URL; an
  existing user opening through a link (deep-link URL, or a winning retargeting click) gets every
  parameter of the link.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from linkgen.domain.useragents import Platform, os_versions_agree
from linkgen.domain.windows import CLICK_LOOKBACK, REENGAGEMENT_WINDOW, read_window

LaunchType = Literal["install", "reinstall", "reattribution", "reengagement", "open"]
MatchType = Literal["deep_link", "referrer", "device_id", "customer_user_id", "probabilistic"]

DEFAULT_CLICK_LOOKBACK = timedelta(days=7)
DEFAULT_REENGAGEMENT_WINDOW = timedelta(days=30)
DEFAULT_REATTRIBUTION_WINDOW = timedelta(days=90)
PROBABILISTIC_MAX_WINDOW = timedelta(hours=24)
DEFERRED_DEEP_LINK_WINDOW = timedelta(minutes=15)
CLICK_INJECTION_THRESHOLD = timedelta(seconds=10)
# One tap reported twice (see "Same open" in the module docstring).
SAME_OPEN_WINDOW = timedelta(minutes=10)
# The longest lookback a link may ask for; the storage layer fetches id-matched clicks this far.
MAX_CLICK_LOOKBACK = timedelta(days=30)

DEVICE_ID_PARAMS = ("gaid", "idfa", "advertising_id", "android_id", "idfv")
DEEP_LINK_KEYS = ("deep_link_value", *(f"deep_link_sub{i}" for i in range(1, 11)))
CLICK_ID_PARAM = "af_tranid"

# Strongest first; the index is the strength used to break ties.
METHOD_ORDER: tuple[MatchType, ...] = (
    "deep_link",
    "referrer",
    "device_id",
    "customer_user_id",
    "probabilistic",
)
_DETERMINISTIC = frozenset(METHOD_ORDER[:-1])

_EMPTY: Mapping[str, str] = MappingProxyType({})
# Limit-ad-tracking devices report an all-zero advertising id: it would match every such device.
_ZERO_ID_RE = re.compile(r"^[0\-]*$")


def _utc(ts: datetime, name: str) -> datetime:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return ts.astimezone(UTC)


def _frozen(params: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(params)) if params else _EMPTY


def _clean_id(value: str | None) -> str | None:
    """A usable identifier, or None for empty, all-zero or unsubstituted placeholder values."""
    if value is None:
        return None
    value = value.strip()
    if not value or _ZERO_ID_RE.match(value) or "{{" in value or "{%" in value:
        return None
    return value


def _is_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("true", "1")


def click_ids_from_query(query: str | None) -> frozenset[str]:
    """The `af_tranid` values in a query string (install referrer or deep-link URL query)."""
    if not query:
        return frozenset()
    # Some SDKs hand over the referrer still percent-encoded as a whole ("af_tranid%3D...").
    if "=" not in query and "%3d" in query.lower():
        query = unquote(query)
    return frozenset(
        value.strip()
        for key, value in parse_qsl(query, keep_blank_values=False)
        if key == CLICK_ID_PARAM and value.strip()
    )


def deep_link_url_params(url: str | None) -> dict[str, str]:
    """The query parameters of a deep-link URL (the last value of a repeated key wins)."""
    if not url:
        return {}
    try:
        query = urlsplit(url).query
    except ValueError:
        return {}
    return dict(parse_qsl(query, keep_blank_values=True))


@dataclass(frozen=True)
class ClickFacts:
    """What attribution needs to know about one recorded click."""

    click_id: str
    link_id: str | None
    ts: datetime
    media_source: str
    campaign: str | None
    channel: str | None
    params: Mapping[str, str]
    is_retargeting: bool
    is_bot: bool
    bot_reason: str | None
    attributable: bool
    device_ids: frozenset[str]
    customer_user_id: str | None
    ip: str | None
    platform: Platform
    os_version: str | None
    click_lookback: timedelta | None
    reengagement_window: timedelta | None
    reengagement_lifetime: bool
    consumed: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", _utc(self.ts, "ClickFacts.ts"))
        object.__setattr__(self, "params", _frozen(self.params))
        object.__setattr__(self, "device_ids", frozenset(d.lower() for d in self.device_ids))


def click_facts_from_params(
    click_id: str,
    ts: datetime,
    params: Mapping[str, str],
    *,
    link_id: str | None = None,
    media_source: str | None = None,
    campaign: str | None = None,
    channel: str | None = None,
    is_bot: bool = False,
    bot_reason: str | None = None,
    attributable: bool = True,
    ip: str | None = None,
    platform: Platform = "other",
    os_version: str | None = None,
    consumed: bool = False,
) -> ClickFacts:
    """Build ClickFacts from a click's effective link parameters; bad values fall back quietly."""
    device_ids = frozenset(
        cleaned.lower()
        for name in DEVICE_ID_PARAMS
        if (cleaned := _clean_id(params.get(name))) is not None
    )
    customer_user_id = _clean_id(params.get("customer_user_id")) or _clean_id(params.get("af_sub5"))
    lookback, _ = read_window(params.get("af_click_lookback"), CLICK_LOOKBACK)
    window, lifetime = read_window(params.get("af_reengagement_window"), REENGAGEMENT_WINDOW)
    return ClickFacts(
        click_id=click_id,
        link_id=link_id,
        ts=ts,
        media_source=media_source if media_source is not None else params.get("pid", ""),
        campaign=campaign if campaign is not None else params.get("c"),
        channel=channel if channel is not None else params.get("af_channel"),
        params=params,
        is_retargeting=_is_true(params.get("is_retargeting")),
        is_bot=is_bot,
        bot_reason=bot_reason,
        attributable=attributable,
        device_ids=device_ids,
        customer_user_id=customer_user_id,
        ip=ip or None,
        platform=platform,
        os_version=os_version,
        click_lookback=lookback,
        reengagement_window=window,
        reengagement_lifetime=lifetime,
        consumed=consumed,
    )


@dataclass(frozen=True)
class LaunchFacts:
    """One app launch as the SDK reported it (ip / platform / os_version from the request)."""

    device_id: str
    customer_user_id: str | None
    first_launch: bool
    install_referrer: str | None
    deep_link_url: str | None
    idfa: str | None
    idfv: str | None
    gaid: str | None
    ip: str | None
    platform: Platform
    os_version: str | None
    ts: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", _utc(self.ts, "LaunchFacts.ts"))

    @property
    def device_ids(self) -> frozenset[str]:
        """The launch's usable advertising / vendor ids, lower-cased."""
        return frozenset(
            cleaned.lower()
            for value in (self.gaid, self.idfa, self.idfv)
            if (cleaned := _clean_id(value)) is not None
        )

    @property
    def referrer_click_ids(self) -> frozenset[str]:
        """Click ids named by the install referrer."""
        return click_ids_from_query(self.install_referrer)

    @property
    def deep_link_click_ids(self) -> frozenset[str]:
        """Click ids named by the deep-link URL the app was opened with."""
        if not self.deep_link_url:
            return frozenset()
        try:
            query = urlsplit(self.deep_link_url).query
        except ValueError:
            return frozenset()
        return click_ids_from_query(query)


@dataclass(frozen=True)
class Source:
    """Where a conversion came from: the fields the contract's `attribution` object shows."""

    is_organic: bool
    media_source: str | None = None
    campaign: str | None = None
    channel: str | None = None
    link_id: str | None = None
    click_id: str | None = None

    @classmethod
    def organic(cls) -> Source:
        """The organic source."""
        return cls(is_organic=True, media_source="organic")

    @classmethod
    def paid(cls, facts: ReengagementFacts | InstallFacts) -> Source:
        """The non-organic source recorded on an install or re-engagement."""
        return cls(
            is_organic=False,
            media_source=facts.media_source,
            campaign=facts.campaign,
            channel=facts.channel,
            link_id=facts.link_id,
            click_id=facts.click_id,
        )


@dataclass(frozen=True)
class ReengagementFacts:
    """An active (or past) re-engagement of an install; `until` is None when lifetime."""

    started_at: datetime
    until: datetime | None
    lifetime: bool
    media_source: str
    campaign: str | None
    channel: str | None
    link_id: str | None
    click_id: str | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "started_at", _utc(self.started_at, "started_at"))
        if self.until is not None:
            object.__setattr__(self, "until", _utc(self.until, "until"))

    def covers(self, ts: datetime) -> bool:
        """Whether `ts` falls in the window (both ends inclusive)."""
        ts = _utc(ts, "ts")
        if ts < self.started_at:
            return False
        return self.lifetime or (self.until is not None and ts <= self.until)

    @property
    def source(self) -> Source:
        """The re-engagement's source."""
        return Source.paid(self)


@dataclass(frozen=True)
class InstallFacts:
    """A known install of the app: its device, ids and the source it was attributed to."""

    device_id: str
    installed_at: datetime
    customer_user_id: str | None
    idfv: str | None
    gaid: str | None
    idfa: str | None
    media_source: str | None
    campaign: str | None
    channel: str | None
    link_id: str | None
    click_id: str | None
    is_organic: bool
    reengagement: ReengagementFacts | None = None
    match_type: MatchType | None = None
    click_time: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "installed_at", _utc(self.installed_at, "installed_at"))
        if self.click_time is not None:
            object.__setattr__(self, "click_time", _utc(self.click_time, "click_time"))

    @property
    def source(self) -> Source:
        """The install's own (original) source."""
        if self.is_organic:
            return Source.organic()
        return Source.paid(self)


@dataclass(frozen=True)
class AppRules:
    """Per-app attribution settings."""

    click_lookback: timedelta = DEFAULT_CLICK_LOOKBACK
    reengagement_window: timedelta = DEFAULT_REENGAGEMENT_WINDOW
    reattribution_window: timedelta = DEFAULT_REATTRIBUTION_WINDOW
    probabilistic_matching: bool = True

    @property
    def probabilistic_window(self) -> timedelta:
        """How old a probabilistically matched click may be."""
        return min(PROBABILISTIC_MAX_WINDOW, self.click_lookback)


@dataclass(frozen=True)
class CandidateKeys:
    """What the storage layer must fetch: clicks matching any key, with ts in [since, until]."""

    click_ids: frozenset[str]
    device_ids: frozenset[str]
    customer_user_id: str | None
    ip: str | None
    id_since: datetime
    ip_since: datetime
    until: datetime


def candidate_keys(launch: LaunchFacts, app: AppRules | None = None) -> CandidateKeys:
    """The keys and time ranges of every click that could win this launch."""
    app = app or AppRules()
    deepest = max(MAX_CLICK_LOOKBACK, app.click_lookback)
    probabilistic = app.probabilistic_matching and launch.platform in ("ios", "android")
    return CandidateKeys(
        click_ids=launch.referrer_click_ids | launch.deep_link_click_ids,
        device_ids=launch.device_ids,
        customer_user_id=_clean_id(launch.customer_user_id),
        ip=launch.ip if probabilistic and launch.ip else None,
        id_since=launch.ts - deepest,
        ip_since=launch.ts - app.probabilistic_window,
        # Clicks after the launch cannot win, but fetching them lets the decision explain them.
        until=launch.ts,
    )


@dataclass(frozen=True)
class LaunchDecision:
    """The outcome of attributing one launch, with enough detail to explain it."""

    type: LaunchType
    is_organic: bool
    media_source: str | None
    campaign: str | None
    channel: str | None
    match_type: MatchType | None
    click_id: str | None
    click_time: datetime | None
    link_id: str | None
    winner: ClickFacts | None
    passed_over: tuple[tuple[str, str], ...]
    suspected_injection: tuple[str, ...]
    deep_link: Mapping[str, str]
    reengagement_until: datetime | None
    reengagement_lifetime: bool
    counts_as_install: bool
    counts_as_reengagement: bool
    ts: datetime
    # Clicks this launch consumes without crediting them (the same open seen twice).
    tied_clicks: tuple[str, ...] = ()

    def to_attribution_dict(self) -> dict[str, object]:
        """The contract's `attribution` object."""
        return {
            "is_organic": self.is_organic,
            "media_source": self.media_source,
            "campaign": self.campaign,
            "channel": self.channel,
            "match_type": self.match_type,
            "click_id": self.click_id,
            "click_time": _iso(self.click_time),
            "link_id": self.link_id,
        }

    def deep_link_dict(self) -> dict[str, str]:
        """The contract's `deep_link` object."""
        return dict(self.deep_link)

    @property
    def source(self) -> Source:
        """The decision's source as a value object."""
        return Source(
            is_organic=self.is_organic,
            media_source=self.media_source,
            campaign=self.campaign,
            channel=self.channel,
            link_id=self.link_id,
            click_id=self.click_id,
        )

    def reengagement_facts(self) -> ReengagementFacts | None:
        """The re-engagement this launch starts (to store on the install), if any."""
        if not self.counts_as_reengagement or self.media_source is None:
            return None
        return ReengagementFacts(
            started_at=self.ts,
            until=self.reengagement_until,
            lifetime=self.reengagement_lifetime,
            media_source=self.media_source,
            campaign=self.campaign,
            channel=self.channel,
            link_id=self.link_id,
            click_id=self.click_id,
        )


def _iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return ts.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class EventAttribution:
    """An in-app event's primary (install) source and its re-engagement source, if any."""

    primary: Source
    reengagement: Source | None


def attribute_event(ts: datetime, install: InstallFacts | None) -> EventAttribution:
    """Attribute an in-app event to its install and, inside the re-engagement window, to that."""
    ts = _utc(ts, "ts")
    if install is None:
        return EventAttribution(primary=Source.organic(), reengagement=None)
    reengagement = install.reengagement
    active = reengagement is not None and reengagement.covers(ts)
    return EventAttribution(
        primary=install.source,
        reengagement=reengagement.source if reengagement is not None and active else None,
    )


# ---- launch attribution -------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    click: ClickFacts
    method: MatchType

    @property
    def rank(self) -> tuple[int, datetime, int, str]:
        # Deterministic beats probabilistic; then recency; then method strength; then click id.
        tier = 1 if self.method in _DETERMINISTIC else 0
        strength = len(METHOD_ORDER) - METHOD_ORDER.index(self.method)
        return tier, self.click.ts, strength, self.click.click_id


def _match(
    click: ClickFacts, launch: LaunchFacts, at: datetime, app: AppRules
) -> tuple[MatchType | None, str | None]:
    """The strongest method whose window admits the click, else (None, reason)."""
    age = at - click.ts
    lookback = click.click_lookback or app.click_lookback
    matched_any = False
    reason = "no_match"
    deterministic: list[MatchType] = []
    if click.click_id in launch.deep_link_click_ids:
        deterministic.append("deep_link")
    if click.click_id in launch.referrer_click_ids:
        deterministic.append("referrer")
    if click.device_ids & launch.device_ids:
        deterministic.append("device_id")
    launch_cuid = _clean_id(launch.customer_user_id)
    if launch_cuid is not None and click.customer_user_id == launch_cuid:
        deterministic.append("customer_user_id")
    if deterministic:
        matched_any = True
        if age <= lookback:
            return deterministic[0], None
    if click.ip and launch.ip and click.ip == launch.ip:
        prob_reason = _probabilistic_mismatch(click, launch, app)
        if prob_reason is None:
            matched_any = True
            if age <= app.probabilistic_window:
                return "probabilistic", None
        elif not matched_any:
            reason = prob_reason
    return None, ("outside_lookback" if matched_any else reason)


def _probabilistic_mismatch(click: ClickFacts, launch: LaunchFacts, app: AppRules) -> str | None:
    if not app.probabilistic_matching:
        return "probabilistic_disabled"
    if launch.platform not in ("ios", "android") or click.platform != launch.platform:
        return "platform_mismatch"
    if not os_versions_agree(launch.platform, click.os_version, launch.os_version):
        return "os_version_mismatch"
    return None


def _dedupe(clicks: Iterable[ClickFacts]) -> list[ClickFacts]:
    # The storage layer may return one click through several keys; keep one copy per id.
    seen: dict[str, ClickFacts] = {}
    for click in clicks:
        seen.setdefault(click.click_id, click)
    return sorted(seen.values(), key=lambda c: (c.ts, c.click_id))


def _select(
    clicks: Sequence[ClickFacts],
    launch: LaunchFacts,
    at: datetime,
    app: AppRules,
    *,
    retargeting_only: bool,
    installed_at: datetime | None,
    check_injection: bool,
) -> tuple[_Candidate | None, list[tuple[str, str]], list[str]]:
    """Pick the winning click; return it, the passed-over (click_id, reason) list and injections."""
    rejected: list[tuple[str, str]] = []
    injected: list[str] = []
    eligible: list[_Candidate] = []
    for click in _dedupe(clicks):
        reason: str | None = None
        method: MatchType | None = None
        if click.ts > at:
            reason = "after_launch"
        elif click.is_bot:
            reason = "bot"
        elif not click.attributable:
            reason = "expired_link"
        elif click.consumed:
            reason = "consumed"
        else:
            method, reason = _match(click, launch, at, app)
            if reason is None and retargeting_only and not click.is_retargeting:
                reason = "not_retargeting"
            elif reason is None and installed_at is not None and click.ts < installed_at:
                # A click older than the install had its chance at the install itself.
                reason = "before_install"
            elif reason is None and check_injection and at - click.ts < CLICK_INJECTION_THRESHOLD:
                reason = "click_injection"
                injected.append(click.click_id)
        if reason is not None:
            rejected.append((click.click_id, reason))
        elif method is not None:
            eligible.append(_Candidate(click, method))
    if not eligible:
        return None, rejected, injected
    winner = max(eligible, key=lambda c: c.rank)
    rejected.extend((c.click.click_id, "superseded") for c in eligible if c is not winner)
    order = {c.click_id: (c.ts, c.click_id) for c in clicks}
    rejected.sort(key=lambda item: order[item[0]])
    return winner, rejected, injected


def _first_launch_deep_link(
    winner: ClickFacts | None, at: datetime, url_params: Mapping[str, str]
) -> dict[str, str]:
    """Deferred deep-link data: only the privacy-safe keys, from a click at most 15 min old."""
    values: dict[str, str] = {}
    if winner is not None and at - winner.ts <= DEFERRED_DEEP_LINK_WINDOW:
        values = {k: winner.params[k] for k in DEEP_LINK_KEYS if k in winner.params}
    if not values:
        values = {k: url_params[k] for k in DEEP_LINK_KEYS if k in url_params}
    return _deep_link(values)


def _deep_link(values: Mapping[str, str] | None) -> dict[str, str]:
    if not values:
        return {"status": "NOT_FOUND"}
    return {"status": "FOUND", **{k: v for k, v in values.items() if k != "status"}}


def _window_end(
    at: datetime,
    window: timedelta | None,
    lifetime: bool,
    app: AppRules,
) -> tuple[datetime | None, bool]:
    if lifetime:
        return None, True
    return at + (window or app.reengagement_window), False


def attribute_launch(
    launch: LaunchFacts,
    *,
    app: AppRules,
    clicks: Sequence[ClickFacts],
    existing: InstallFacts | None,
    prior: InstallFacts | None,
    now: datetime | None = None,
    deep_link_params: Mapping[str, str] | None = None,
    deep_link_link_id: str | None = None,
    deep_link_attributable: bool = True,
) -> LaunchDecision:
    """Decide what a launch is (install, reinstall, re-engagement, ...) and which click won it.

    `existing`: an install of this very device_id (a repeated first launch is a retry the caller
    answers from storage, so passing one with `first_launch=True` is a ValueError). `prior`: an
    earlier install of another device_id matched by idfv / gaid / customer user id, the one the
    user was counted under. `deep_link_params`: the stored parameters of the link behind
    `launch.deep_link_url` (the URL's own query overrides them); `deep_link_link_id` its id;
    `deep_link_attributable=False` for an expired link. `now` caps a launch ts in the future.
    """
    at = launch.ts
    if now is not None:
        at = min(at, _utc(now, "now"))
    if launch.first_launch and existing is not None:
        raise ValueError("a repeated first launch is a retry: answer it from storage")
    url_params: dict[str, str] = {}
    if launch.deep_link_url or deep_link_params:
        url_params = {**(deep_link_params or {}), **deep_link_url_params(launch.deep_link_url)}
    if existing is None:
        return _first_launch(launch, at, app, clicks, prior, url_params)
    return _open(
        launch,
        at,
        app,
        clicks,
        existing,
        url_params,
        deep_link_link_id,
        deep_link_attributable,
    )


def _first_launch(
    launch: LaunchFacts,
    at: datetime,
    app: AppRules,
    clicks: Sequence[ClickFacts],
    prior: InstallFacts | None,
    url_params: Mapping[str, str],
) -> LaunchDecision:
    reinstall = prior is not None and at - prior.installed_at <= app.reattribution_window
    found, passed, injected = _select(
        clicks,
        launch,
        at,
        app,
        retargeting_only=reinstall,
        # A reinstall's retargeting click must come after the install the user is counted under.
        installed_at=prior.installed_at if reinstall and prior is not None else None,
        check_injection=True,
    )
    winner = found.click if found is not None else None
    deep_link = _first_launch_deep_link(winner, at, url_params)
    if found is not None:
        assert winner is not None
        if reinstall:
            until, lifetime = _window_end(
                at, winner.reengagement_window, winner.reengagement_lifetime, app
            )
            return _from_click(
                "reattribution",
                found,
                at,
                passed,
                injected,
                deep_link,
                until=until,
                lifetime=lifetime,
                counts_as_install=False,
                counts_as_reengagement=True,
            )
        return _from_click(
            "install",
            found,
            at,
            passed,
            injected,
            deep_link,
            until=None,
            lifetime=False,
            counts_as_install=True,
            counts_as_reengagement=False,
        )
    if reinstall:
        assert prior is not None
        return _from_install("reinstall", prior, at, passed, injected, deep_link)
    return LaunchDecision(
        type="install",
        is_organic=True,
        media_source="organic",
        campaign=None,
        channel=None,
        match_type=None,
        click_id=None,
        click_time=None,
        link_id=None,
        winner=None,
        passed_over=tuple(passed),
        suspected_injection=tuple(injected),
        deep_link=MappingProxyType(deep_link),
        reengagement_until=None,
        reengagement_lifetime=False,
        counts_as_install=True,
        counts_as_reengagement=False,
        ts=at,
    )


def _open(
    launch: LaunchFacts,
    at: datetime,
    app: AppRules,
    clicks: Sequence[ClickFacts],
    existing: InstallFacts,
    url_params: Mapping[str, str],
    link_id: str | None,
    link_attributable: bool,
) -> LaunchDecision:
    found, passed, injected = _select(
        clicks,
        launch,
        at,
        app,
        retargeting_only=True,
        installed_at=existing.installed_at,
        check_injection=False,
    )
    has_url = bool(launch.deep_link_url)
    current = existing.reengagement
    if found is not None:
        click = found.click
        # Opening through a link hands over the link's parameters; the URL's own win over the click.
        params: Mapping[str, str] = {**click.params, **url_params} if has_url else click.params
        if _same_open(current, click.link_id, click.media_source, click.campaign, click.ts):
            passed.append((click.click_id, "same_open"))
            decision = _from_install("open", existing, at, passed, injected, _deep_link(params))
            return replace(decision, tied_clicks=(click.click_id,))
        until, lifetime = _window_end(
            at, click.reengagement_window, click.reengagement_lifetime, app
        )
        return _from_click(
            "reengagement",
            found,
            at,
            passed,
            injected,
            _deep_link(params),
            until=until,
            lifetime=lifetime,
            counts_as_install=False,
            counts_as_reengagement=True,
        )
    named = [c for c in clicks if c.click_id in launch.deep_link_click_ids]
    known_click = bool(named)
    # The click the URL names (if any) supplies the link's parameters; the URL's own win.
    link_params = {**named[-1].params, **url_params} if named else url_params
    deep_link = _deep_link(link_params if has_url else None)
    if (
        has_url
        and link_attributable
        and not known_click
        and _is_true(url_params.get("is_retargeting"))
        and url_params.get("pid")
    ):
        # A Universal / App Link opened the app directly: no click row exists, the URL is the click
        # (click-to-open 0). A URL naming a known click defers to that click's verdict above (so a
        # consumed or bot click cannot be revived through its URL); an unknown id is ignored.
        if _same_open(current, link_id, url_params["pid"], url_params.get("c"), at):
            return _from_install("open", existing, at, passed, injected, deep_link)
        window, lifetime = read_window(
            url_params.get("af_reengagement_window"), REENGAGEMENT_WINDOW
        )
        until, lifetime = _window_end(at, window, lifetime, app)
        return LaunchDecision(
            type="reengagement",
            is_organic=False,
            media_source=url_params["pid"],
            campaign=url_params.get("c"),
            channel=url_params.get("af_channel"),
            match_type="deep_link",
            click_id=None,
            click_time=at,
            link_id=link_id,
            winner=None,
            passed_over=tuple(passed),
            suspected_injection=tuple(injected),
            deep_link=MappingProxyType(deep_link),
            reengagement_until=until,
            reengagement_lifetime=lifetime,
            counts_as_install=False,
            counts_as_reengagement=True,
            ts=at,
        )
    return _from_install("open", existing, at, passed, injected, deep_link)


def _same_open(
    current: ReengagementFacts | None,
    link_id: str | None,
    media_source: str,
    campaign: str | None,
    ts: datetime,
) -> bool:
    """Whether a re-engagement from this source at `ts` is the install's current one again."""
    if current is None or not timedelta(0) <= ts - current.started_at <= SAME_OPEN_WINDOW:
        return False
    if link_id is not None and current.link_id is not None:
        return link_id == current.link_id
    return (media_source, campaign) == (current.media_source, current.campaign)


def _from_click(
    type_: LaunchType,
    found: _Candidate,
    at: datetime,
    passed: list[tuple[str, str]],
    injected: list[str],
    deep_link: dict[str, str],
    *,
    until: datetime | None,
    lifetime: bool,
    counts_as_install: bool,
    counts_as_reengagement: bool,
) -> LaunchDecision:
    click = found.click
    return LaunchDecision(
        type=type_,
        is_organic=False,
        media_source=click.media_source,
        campaign=click.campaign,
        channel=click.channel,
        match_type=found.method,
        click_id=click.click_id,
        click_time=click.ts,
        link_id=click.link_id,
        winner=click,
        passed_over=tuple(passed),
        suspected_injection=tuple(injected),
        deep_link=MappingProxyType(deep_link),
        reengagement_until=until,
        reengagement_lifetime=lifetime,
        counts_as_install=counts_as_install,
        counts_as_reengagement=counts_as_reengagement,
        ts=at,
    )


def _from_install(
    type_: LaunchType,
    install: InstallFacts,
    at: datetime,
    passed: list[tuple[str, str]],
    injected: list[str],
    deep_link: dict[str, str],
) -> LaunchDecision:
    """A launch that starts nothing new reports the install's own attribution."""
    source = install.source
    return LaunchDecision(
        type=type_,
        is_organic=source.is_organic,
        media_source=source.media_source,
        campaign=source.campaign,
        channel=source.channel,
        match_type=None if source.is_organic else install.match_type,
        click_id=source.click_id,
        click_time=None if source.is_organic else install.click_time,
        link_id=source.link_id,
        winner=None,
        passed_over=tuple(passed),
        suspected_injection=tuple(injected),
        deep_link=MappingProxyType(deep_link),
        reengagement_until=None,
        reengagement_lifetime=False,
        counts_as_install=False,
        counts_as_reengagement=False,
        ts=at,
    )
