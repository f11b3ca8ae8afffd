"""SDK launches and in-app events: validation, attribution against stored clicks, persistence.

`record_launch` / `record_event` work inside the caller's transaction; `handle_launch` /
`handle_event` run them in their own transaction, commit before returning and retry once on a
lost race, which is what the SDK views call.

Storage rules:

* A first launch creates the device's `installs` row (install, reinstall or re-attribution),
  keyed (app_id, device_id): a retry finds it and answers the first launch's stored response,
  counting nothing; a concurrent duplicate loses on the unique key, is rolled back and answered
  the same way. A non-first launch of an unknown device is a first launch (the domain's rule).
* The row of a reinstall or re-attribution carries the original install's source (the one the
  user is counted under); a re-attribution and a re-engagement also set the `re_*` source. The
  prior install of a reinstall is the latest *new* install (type `install`) matched by idfv,
  gaid or customer user id, so a chain of reinstalls keeps measuring from the first one.
* The winning click is marked consumed with a conditional update; losing that race to another
  launch retries the whole attribution.
* Counters: `installs` / `reengagements` per (day of the launch ts, link, template, campaign,
  channel, media source), organic installs under media source `organic`. An in-app event
  counts once (`events`, `revenue_micros`): under the re-engagement source while its window
  covers the event, else under the install's source. Revenue is summed as reported (no currency
  conversion); `af_revenue` without `af_currency` is taken as USD, as AppsFlyer does.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError

from linkgen.clicks.detect import classify_user_agent
from linkgen.domain.attribution import (
    AppRules,
    ClickFacts,
    InstallFacts,
    LaunchDecision,
    LaunchFacts,
    MatchType,
    ReengagementFacts,
    Source,
    attribute_event,
    attribute_launch,
    candidate_keys,
    click_facts_from_params,
)
from linkgen.domain.postbacks import EventOutcome, InstallOutcome
from linkgen.domain.privacy import FULL, StoragePolicy, stored_address
from linkgen.domain.sdk_requests import (
    EventRequest,
    LaunchRequest,
    event_response,
    iso_time,
    launch_response,
    parse_event,
    parse_launch,
)
from linkgen.domain.useragents import (
    OsInfo,
    Platform,
    parse_app_user_agent,
    resolve_launch_os,
)
from linkgen.services.outbox import (
    enqueue_postback,
    load_integration,
    postback_linkgen_id,
)
from linkgen.services.sdk_apps import AppCache, AppFields, SdkApp, sdk_app
from linkgen.storage.counters import CounterKey, upsert_counters
from linkgen.storage.db import Database
from linkgen.storage.epochs import APPS
from linkgen.storage.models import App, Click, Event, Install, Launch, Link, StatCounter
from linkgen.storage.rawsql import Dialect, Insert, Rows, Transaction, dialect
from linkgen.storage.types import utcnow

T = TypeVar("T")
S = TypeVar("S")
# An installs row: a named tuple of `_LaunchSql.installs`.
_InstallRow = Any

# Per key, at most this many of the newest clicks are considered (a carrier NAT address can
# carry thousands of clicks a day; the newest ones are the ones that can win).
MAX_CLICKS_PER_KEY = 50
ORGANIC = "organic"


# ---- helpers --------------------------------------------------------------------------------


def launch_os(req: LaunchRequest, app_platform: str) -> tuple[OsInfo, dict[str, str | None]]:
    """The launch's platform and OS version and their sources (see the module rules)."""
    ua_os = parse_app_user_agent(req.user_agent)
    if ua_os is None and req.user_agent:
        info = classify_user_agent(req.user_agent)
        ua_os = OsInfo(cast(Platform, info.platform), info.os_version)
    return resolve_launch_os(
        declared_platform=req.os,
        declared_version=req.os_version,
        user_agent_os=ua_os,
        app_platform=app_platform,
    )


_SORTABLE = "0123456789abcdefghijklmnopqrstuv"  # base 32 whose ASCII order is its value order


def _new_launch_id() -> str:
    """`ln_`, the time in milliseconds (10 characters) and 60 random bits (12 characters).

    Ids that grow with time land at the end of the `launch_id` index, on a page that the last
    launches wrote too, instead of on a random page of it: one page less for each launch's
    transaction to write and for SQLite's checkpoints to copy back.
    """
    value = (int(time.time() * 1000) & ((1 << 50) - 1)) << 60 | secrets.randbits(60)
    out = []
    for _ in range(22):
        value, digit = divmod(value, 32)
        out.append(_SORTABLE[digit])
    return "ln_" + "".join(reversed(out))


def _str_params(raw: Mapping[str, Any] | None) -> dict[str, str]:
    if not raw:
        return {}
    return {str(k): str(v) for k, v in raw.items() if v is not None}


def _source_dict(source: Source) -> dict[str, Any]:
    return {
        "is_organic": source.is_organic,
        "media_source": source.media_source,
        "campaign": source.campaign,
        "channel": source.channel,
        "link_id": source.link_id,
        "click_id": source.click_id,
    }


def _install_facts(row: _InstallRow) -> InstallFacts:
    reengagement = None
    if row.re_at is not None and row.re_media_source is not None:
        reengagement = ReengagementFacts(
            started_at=row.re_at,
            until=row.re_until,
            lifetime=row.re_lifetime,
            media_source=row.re_media_source,
            campaign=row.re_campaign,
            channel=row.re_channel,
            link_id=row.re_link_id,
            click_id=row.re_click_id,
        )
    return InstallFacts(
        device_id=row.device_id,
        installed_at=row.installed_at,
        customer_user_id=row.customer_user_id,
        idfv=row.idfv,
        gaid=row.gaid,
        idfa=row.idfa,
        media_source=row.media_source,
        campaign=row.campaign,
        channel=row.channel,
        link_id=row.link_id,
        click_id=row.click_id,
        is_organic=row.is_organic,
        reengagement=reengagement,
        match_type=cast(MatchType | None, row.match_type),
        click_time=row.click_time,
    )


# ---- statements -----------------------------------------------------------------------------
# The launch path runs on the database driver (see linkgen/storage/rawsql.py); its
# statements are built once per dialect from the tables. Events still go through SQLAlchemy.

_CLICKS = cast(Table, Click.__table__)
_INSTALLS = cast(Table, Install.__table__)
_LAUNCHES = cast(Table, Launch.__table__)
_EVENTS = cast(Table, Event.__table__)
_LINKS = cast(Table, Link.__table__)
_APPS = cast(Table, App.__table__)
_COUNTERS = cast(Table, StatCounter.__table__)

_CLICK_NAMES = (
    "click_id",
    "ts",
    "link_id",
    "template_id",
    "media_source",
    "campaign",
    "channel",
    "params",
    "ip",
    "platform",
    "os_version",
    "is_retargeting",
    "is_bot",
    "bot_reason",
    "attributable",
    "consumed",
)
_INSTALL_NAMES = tuple(c.name for c in _INSTALLS.c)
_LINK_NAMES = ("id", "template_id", "media_source", "campaign", "channel", "params", "expires_at")
_APP_NAMES = tuple(AppFields.__annotations__)
# Newest first, at most this many candidates per key (see MAX_CLICKS_PER_KEY).
_NEWEST = f"ORDER BY ts DESC LIMIT {MAX_CLICKS_PER_KEY}"


class _LaunchSql:
    """The launch path's statements for one dialect."""

    def __init__(self, d: Dialect) -> None:
        p = d.p
        self.d = d
        self.installs = Rows(d, _INSTALLS, _INSTALL_NAMES, "InstallRow")
        self.clicks = Rows(d, _CLICKS, _CLICK_NAMES, "ClickRow")
        self.links = Rows(d, _LINKS, _LINK_NAMES, "LinkRow")
        self.apps = Rows(d, _APPS, _APP_NAMES, "AppRow")
        self.read_response = d.reader(_LAUNCHES.c.response)
        # Every name below comes from the models; values always go in as parameters.
        self.epoch = f"SELECT epoch FROM cache_epochs WHERE name = {p}"  # noqa: S608 - names from the models
        self.app_by_key = f"SELECT {self.apps.sql_columns} FROM apps WHERE sdk_key_hash = {p}"  # noqa: S608 - names from the models
        self.install_by_device = (
            f"SELECT {self.installs.sql_columns} FROM installs"  # noqa: S608 - names from the models
            f" WHERE app_id = {p} AND device_id = {p}"
        )
        self.launch_response = f"SELECT response FROM launches WHERE launch_id = {p}"  # noqa: S608 - names from the models
        self.event_response = f"SELECT response FROM events WHERE app_id = {p} AND event_id = {p}"  # noqa: S608 - names from the models
        self.read_event_response = d.reader(_EVENTS.c.response)
        self.install_by_cuid = (
            f"SELECT {self.installs.sql_columns} FROM installs"  # noqa: S608 - names from the models
            f" WHERE app_id = {p} AND customer_user_id = {p}"
            " ORDER BY installed_at DESC, id DESC LIMIT 1"
        )
        self.insert_event = Insert(d, _EVENTS, tuple(c.name for c in _EVENTS.c)[1:])
        self.link_by_short_id = (
            f"SELECT {self.links.sql_columns} FROM links"  # noqa: S608 - names from the models
            f" WHERE template_id = {p} AND shortlink_id = {p}"
        )
        self.consume_click = (
            f"UPDATE clicks SET consumed = {p} WHERE click_id = {p} AND consumed = {p}"  # noqa: S608 - names from the models
        )
        self.insert_install = Insert(d, _INSTALLS, _INSTALL_NAMES[1:])  # the id is the database's
        self.insert_launch = Insert(d, _LAUNCHES, tuple(c.name for c in _LAUNCHES.c)[1:])
        self._install_writers = {c.name: d.writer(c) for c in _INSTALLS.c}

    def click_query(self, n_ids: int, n_devices: int, by_cuid: bool, by_ip: bool) -> str:
        """Clicks matching any of the launch's keys, one indexed branch per key, one round trip
        (parameters: see `_fetch_clicks`)."""
        p, cols = self.d.p, self.clicks.sql_columns
        branches = []
        if n_ids:
            # A named click id is fetched whatever its age, so the decision can explain it.
            ids = ", ".join([p] * n_ids)
            branches.append(
                f"SELECT {cols} FROM clicks WHERE click_id IN ({ids}) AND app_id = {p}"  # noqa: S608 - names from the models
                f" LIMIT {MAX_CLICKS_PER_KEY}"
            )
        if n_devices:
            ids = ", ".join([p] * n_devices)
            branches.append(
                f"SELECT {cols} FROM clicks WHERE device_id IN ({ids})"  # noqa: S608 - names from the models
                f" AND ts >= {p} AND ts <= {p} AND app_id = {p} {_NEWEST}"
            )
        if by_cuid:
            branches.append(
                f"SELECT {cols} FROM clicks WHERE customer_user_id = {p}"  # noqa: S608 - names from the models
                f" AND ts >= {p} AND ts <= {p} AND app_id = {p} {_NEWEST}"
            )
        if by_ip:
            branches.append(
                f"SELECT {cols} FROM clicks WHERE app_id = {p} AND ip = {p}"  # noqa: S608 - names from the models
                f" AND ts >= {p} AND ts <= {p} {_NEWEST}"
            )
        if len(branches) == 1:
            return branches[0]
        # Each branch is a subquery: SQLite refuses ORDER BY / LIMIT inside a compound.
        return " UNION ALL ".join(
            f"SELECT {cols} FROM ({b}) AS b{n}"  # noqa: S608 - names from the models
            for n, b in enumerate(branches, 1)
        )

    def prior_query(self, by_idfv: bool, by_gaid: bool, by_cuid: bool) -> str:
        """Installs of the same user by any id: the newest 20 (see `_prior_install`)."""
        p = self.d.p
        names = [
            n
            for n, on in (("idfv", by_idfv), ("gaid", by_gaid), ("customer_user_id", by_cuid))
            if on
        ]
        match = " OR ".join(f"{n} = {p}" for n in names)
        return (
            f"SELECT {self.installs.sql_columns} FROM installs"  # noqa: S608 - names from the models
            f" WHERE app_id = {p} AND ({match}) ORDER BY installed_at DESC, id DESC LIMIT 20"
        )

    def update_install(self, names: tuple[str, ...]) -> str:
        """An UPDATE of some install columns by primary key."""
        p = self.d.p
        sets = ", ".join(f"{n} = {p}" for n in names)
        return f"UPDATE installs SET {sets} WHERE id = {p}"  # noqa: S608 - names from the models

    def install_params(self, values: Mapping[str, Any], names: Iterable[str]) -> list[Any]:
        """Install column values converted for the driver."""
        return [self._install_writers[n](values[n]) for n in names]


@lru_cache(maxsize=4)
def _launch_sql(dialect_name: str) -> _LaunchSql:
    return _LaunchSql(dialect(dialect_name))


@lru_cache(maxsize=64)
def _click_query(dialect_name: str, shape: tuple[int, int, bool, bool]) -> str:
    return _launch_sql(dialect_name).click_query(*shape)


@lru_cache(maxsize=16)
def _prior_query(dialect_name: str, flags: tuple[bool, bool, bool]) -> str:
    return _launch_sql(dialect_name).prior_query(*flags)


@lru_cache(maxsize=64)
def _update_install(dialect_name: str, names: tuple[str, ...]) -> str:
    return _launch_sql(dialect_name).update_install(names)


def _fetch_clicks(tx: Transaction, app_id: str, launch: LaunchFacts, rules: AppRules) -> list[Any]:
    """Every click that could win the launch."""
    keys = candidate_keys(launch, rules)
    shape = (
        len(keys.click_ids),
        len(keys.device_ids),
        keys.customer_user_id is not None,
        keys.ip is not None,
    )
    if not any(shape):
        return []
    sql = _launch_sql(tx.d.name)
    when = tx.d.writer(_CLICKS.c.ts)
    since, until = when(keys.id_since), when(keys.until)
    params: list[Any] = []
    if keys.click_ids:
        params += [*sorted(keys.click_ids), app_id]
    if keys.device_ids:
        params += [*sorted(keys.device_ids), since, until, app_id]
    if keys.customer_user_id is not None:
        params += [keys.customer_user_id, since, until, app_id]
    if keys.ip is not None:
        params += [app_id, keys.ip, when(keys.ip_since), until]
    return sql.clicks.all(tx.fetchall(_click_query(tx.d.name, shape), params))


def _click_facts(row: Any) -> ClickFacts:
    facts = click_facts_from_params(
        row.click_id,
        row.ts,
        _str_params(row.params),
        link_id=row.link_id,
        media_source=row.media_source,
        campaign=row.campaign,
        channel=row.channel,
        is_bot=row.is_bot,
        bot_reason=row.bot_reason,
        attributable=row.attributable,
        ip=row.ip,
        platform=cast(Platform, row.platform),
        os_version=row.os_version,
        consumed=row.consumed,
    )
    if row.is_retargeting and not facts.is_retargeting:
        facts = replace(facts, is_retargeting=True)
    return facts


@dataclass(frozen=True)
class _DeepLink:
    params: dict[str, str]
    link_id: str | None
    template_id: str | None
    attributable: bool


def _resolve_deep_link(tx: Transaction, url: str | None, at: datetime) -> _DeepLink:
    """The stored link behind a `/{template_id}/{shortlink_id}` deep-link URL, if any."""
    empty = _DeepLink({}, None, None, True)
    if not url:
        return empty
    try:
        parts = urlsplit(url)
    except ValueError:
        return empty
    if parts.scheme.lower() not in ("http", "https"):
        return empty
    segments = [s for s in parts.path.split("/") if s]
    if not segments or not all(s.isascii() and s.isalnum() for s in segments):
        return empty
    template_id = segments[0][:16]
    if len(segments) != 2 or len(segments[1]) > 50:
        return _DeepLink({}, None, template_id if len(segments) == 1 else None, True)
    sql = _launch_sql(tx.d.name)
    raw = tx.fetchone(sql.link_by_short_id, (segments[0], segments[1]))
    if raw is None:
        return empty
    link = sql.links.one(raw)
    params: dict[str, str] = {"pid": link.media_source}
    if link.campaign is not None:
        params["c"] = link.campaign
    if link.channel:
        params["af_channel"] = link.channel
    params.update(_str_params(link.params))
    expired = link.expires_at is not None and link.expires_at < at
    return _DeepLink(params, link.id, link.template_id, not expired)


def _prior_install(tx: Transaction, app_id: str, req: LaunchRequest) -> Any | None:
    """The install a reinstalling user is counted under (see the module rules)."""
    flags = (req.idfv is not None, req.gaid is not None, req.customer_user_id is not None)
    if not any(flags):
        return None
    ids = [v for v in (req.idfv, req.gaid, req.customer_user_id) if v is not None]
    sql = _launch_sql(tx.d.name)
    rows = sql.installs.all(tx.fetchall(_prior_query(tx.d.name, flags), [app_id, *ids]))
    if not rows:
        return None
    return next((r for r in rows if r.type == "install"), rows[0])


class _ClickTaken(Exception):
    """The winning click was consumed by a concurrent launch: attribute again."""


# ---- launches -------------------------------------------------------------------------------


def current_epoch(tx: Transaction) -> int:
    """The `apps` cache epoch, read in the launch's transaction (0 before the first edit)."""
    row = tx.fetchone(_launch_sql(tx.d.name).epoch, (APPS,))
    return int(row[0]) if row is not None else 0


def _load_app_raw(tx: Transaction, key_hash: str) -> SdkApp | None:
    sql = _launch_sql(tx.d.name)
    row = tx.fetchone(sql.app_by_key, (key_hash,))
    return sdk_app(sql.apps.one(row) if row is not None else None, key_hash)


def record_launch(
    tx: Transaction,
    app: SdkApp,
    req: LaunchRequest,
    *,
    cache: AppCache,
    now: datetime,
    api_base: str | None = None,
    privacy: StoragePolicy = FULL,
) -> tuple[int, dict[str, Any]]:
    """Attribute one launch and store it (launch, install, click, counters, postback) in the
    caller's transaction; returns (status, response). A retried first launch answers the stored
    response and writes nothing. `app` is confirmed against the cache epoch first (401 when its
    key was rotated meanwhile)."""
    epoch = current_epoch(tx)
    app = cache.confirm(app, epoch, lambda key_hash: _load_app_raw(tx, key_hash))
    device_os, os_sources = launch_os(req, app.platform)
    sql = _launch_sql(tx.d.name)
    raw_install = tx.fetchone(sql.install_by_device, (app.app_id, req.device_id))
    install = sql.installs.one(raw_install) if raw_install is not None else None
    if install is not None and req.first_launch:
        stored = tx.fetchone(sql.launch_response, (install.first_launch_id,))
        if stored is not None:
            return 200, launch_response(sql.read_response(stored[0]))
    facts = req.facts(
        # A retried first launch whose stored answer is missing (never expected) is an open.
        first_launch=req.first_launch and install is None,
        platform=device_os.platform,
        os_version=device_os.version,
    )
    # Stored clicks keep the address as the settings allow: compare the launch's in that form.
    facts = replace(facts, ip=stored_address(facts.ip, privacy))
    prior = _prior_install(tx, app.app_id, req) if install is None else None
    rows = _fetch_clicks(tx, app.app_id, facts, app.rules)
    clicks = [_click_facts(r) for r in rows]
    templates = {r.click_id: r.template_id for r in rows}
    deep_link = _resolve_deep_link(tx, req.deep_link_url, req.ts)
    existing = None
    if install is not None:
        existing = _install_facts(install)
        if install.re_at is not None and install.re_at > existing.installed_at:
            # Clicks older than the last re-engagement had their chance at it.
            existing = replace(existing, installed_at=install.re_at)
    decision = attribute_launch(
        facts,
        app=app.rules,
        clicks=clicks,
        existing=existing,
        prior=_install_facts(prior) if prior is not None else None,
        now=now,
        deep_link_params=deep_link.params or None,
        deep_link_link_id=deep_link.link_id,
        deep_link_attributable=deep_link.attributable,
    )
    winner = decision.winner
    template_id = templates.get(winner.click_id) if winner is not None else deep_link.template_id
    link_params: dict[str, str] = (
        dict(winner.params) if winner is not None else dict(deep_link.params)
    )
    launch_id = _new_launch_id()
    response = launch_response(
        {
            "launch_id": launch_id,
            "type": decision.type,
            "attribution": decision.to_attribution_dict(),
            "deep_link": decision.deep_link_dict(),
        }
    )

    if install is None:
        # First: a concurrent duplicate of this first launch fails here, on the unique key.
        values = _install_values(app, req, decision, prior, template_id, link_params, launch_id)
        tx.execute(sql.insert_install.sql, sql.insert_install.params(values))
    else:
        changes = _learned_ids(install, req)
        if decision.counts_as_reengagement:
            changes.update(_reengagement_values(decision, template_id))
        if changes:
            names = tuple(changes)
            params = [*sql.install_params(changes, names), install.id]
            tx.execute(_update_install(tx.d.name, names), params)

    if winner is not None:
        taken = tx.execute(sql.consume_click, (True, winner.click_id, False))
        if taken.rowcount != 1:
            raise _ClickTaken(winner.click_id)
    for click_id in decision.tied_clicks:
        # The same open seen twice: its click can never win later (another launch that took it
        # first has already kept it from winning twice).
        tx.execute(sql.consume_click, (True, click_id, False))

    _count_launch(tx, decision, template_id)
    ua_info = classify_user_agent(req.user_agent) if req.user_agent else None
    launch = {
        "launch_id": launch_id,
        "app_id": app.app_id,
        "device_id": req.device_id,
        "customer_user_id": req.customer_user_id,
        "first_launch": req.first_launch,
        "type": decision.type,
        "ts": decision.ts,
        "received_at": now,
        "is_organic": decision.is_organic,
        "media_source": decision.media_source,
        "campaign": decision.campaign,
        "channel": decision.channel,
        "match_type": decision.match_type,
        "click_id": decision.click_id,
        "link_id": decision.link_id,
        "explain": _explain(decision, req, device_os, os_sources, prior, len(clicks)),
        "request": req.as_stored(
            privacy,
            platform=device_os.platform,
            os_version=device_os.version,
            os_family=ua_info.os_family if ua_info is not None else None,
            browser=ua_info.browser if ua_info is not None else None,
        ),
        "response": response,
    }
    tx.execute(sql.insert_launch.sql, sql.insert_launch.params(launch))

    outcome = _launch_outcome(app, req, decision, install, prior, link_params, launch_id)
    if outcome is not None:
        settings = cache.settings(
            app.app_id, epoch, lambda: load_integration(tx, app_id=app.app_id)
        )
        enqueue_postback(
            tx,
            settings,
            outcome,
            app_id=app.app_id,
            source_id=launch_id,
            api_base=api_base,
            now=now,
        )
    return 200, response


def _count_launch(tx: Transaction, decision: LaunchDecision, template_id: str | None) -> None:
    """Bump the day's installs / re-engagements counter row of the launch's source."""
    _bump(
        tx,
        _counter_key(decision.ts, decision, template_id),
        installs=int(decision.counts_as_install),
        reengagements=int(decision.counts_as_reengagement),
    )


def _bump(tx: Transaction, key: CounterKey, **deltas: int) -> None:
    """Add to one counter row (created as needed)."""
    upsert_counters(tx, {key: deltas})


def _counter_key(
    ts: datetime, source: LaunchDecision | Source, template_id: str | None
) -> CounterKey:
    """The counter row a launch or event counts in: its day and source (organic by name)."""
    return CounterKey.of(
        ts,
        link_id=source.link_id,
        template_id=template_id,
        campaign=source.campaign,
        channel=source.channel,
        media_source=source.media_source or ORGANIC,
    )


def _explain(
    decision: LaunchDecision,
    req: LaunchRequest,
    device_os: OsInfo,
    os_sources: dict[str, str | None],
    prior: _InstallRow | None,
    candidates: int,
) -> dict[str, Any]:
    return {
        "candidates": candidates,
        "passed_over": [
            {"click_id": click_id, "reason": reason} for click_id, reason in decision.passed_over
        ],
        "suspected_injection": list(decision.suspected_injection),
        "platform": device_os.platform,
        "os_version": device_os.version,
        "os_source": os_sources,
        "ts_clamped": req.ts_clamped,
        "prior_device_id": prior.device_id if prior is not None else None,
        "reengagement_until": iso_time(decision.reengagement_until),
        "reengagement_lifetime": decision.reengagement_lifetime,
    }


_KEPT_FROM_PRIOR = (
    "is_organic",
    "media_source",
    "campaign",
    "channel",
    "link_id",
    "template_id",
    "click_id",
    "click_time",
    "match_type",
    "made_for_clevertap",
    "install_postback",
    "link_params",
)
_REENGAGEMENT_COLUMNS = (
    "re_media_source",
    "re_campaign",
    "re_channel",
    "re_link_id",
    "re_template_id",
    "re_click_id",
    "re_at",
    "re_until",
    "re_lifetime",
    "re_made_for_clevertap",
)


def _install_values(
    app: SdkApp,
    req: LaunchRequest,
    decision: LaunchDecision,
    prior: _InstallRow | None,
    template_id: str | None,
    link_params: dict[str, str],
    launch_id: str,
) -> dict[str, Any]:
    """The new `installs` row of a first launch."""
    values: dict[str, Any] = {
        "app_id": app.app_id,
        "device_id": req.device_id,
        "customer_user_id": req.customer_user_id,
        "idfa": req.idfa,
        "idfv": req.idfv,
        "gaid": req.gaid,
        "installed_at": decision.ts,
        "type": decision.type,
        "first_launch_id": launch_id,
        # Every column is given so that one compiled statement serves every install.
        **dict.fromkeys(_REENGAGEMENT_COLUMNS),
        "re_lifetime": False,
        "re_made_for_clevertap": False,
    }
    if decision.type in ("reinstall", "reattribution") and prior is not None:
        # The user is still counted under the original install: keep its source.
        values.update({name: getattr(prior, name) for name in _KEPT_FROM_PRIOR})
        values["customer_user_id"] = req.customer_user_id or prior.customer_user_id
        if decision.type == "reinstall" and prior.re_at is not None:
            # A re-engagement still running follows the user to the new device.
            values.update({name: getattr(prior, name) for name in _REENGAGEMENT_COLUMNS})
    else:
        values.update(
            is_organic=decision.is_organic,
            media_source=decision.media_source,
            campaign=decision.campaign,
            channel=decision.channel,
            link_id=decision.link_id,
            template_id=template_id,
            click_id=decision.click_id,
            click_time=decision.click_time,
            match_type=decision.match_type,
            made_for_clevertap=decision.link_id is not None,
            install_postback=link_params.get("af_installpostback", "").strip().lower() != "false",
            link_params=link_params if not decision.is_organic else {},
        )
    if decision.counts_as_reengagement:
        values.update(_reengagement_values(decision, template_id))
    return values


def _reengagement_values(decision: LaunchDecision, template_id: str | None) -> dict[str, Any]:
    return {
        "re_media_source": decision.media_source,
        "re_campaign": decision.campaign,
        "re_channel": decision.channel,
        "re_link_id": decision.link_id,
        "re_template_id": template_id,
        "re_click_id": decision.click_id,
        "re_at": decision.ts,
        "re_until": decision.reengagement_until,
        "re_lifetime": decision.reengagement_lifetime,
        "re_made_for_clevertap": decision.link_id is not None,
    }


def _learned_ids(install: _InstallRow, req: LaunchRequest) -> dict[str, Any]:
    """Ids the install did not know yet (a customer user id is often set after install)."""
    changes: dict[str, Any] = {}
    for name in ("customer_user_id", "idfa", "idfv", "gaid"):
        value = getattr(req, name)
        if value is not None and getattr(install, name) is None:
            changes[name] = value
    return changes


def _launch_outcome(
    app: SdkApp,
    req: LaunchRequest,
    decision: LaunchDecision,
    install: _InstallRow | None,
    prior: _InstallRow | None,
    link_params: dict[str, str],
    launch_id: str,
) -> InstallOutcome | None:
    """What the postback rules see: installs, re-engagements and re-attributions only."""
    if decision.type == "install":
        return InstallOutcome(
            kind="install",
            # (app, device) has one install: its postback id cannot repeat.
            linkgen_id=postback_linkgen_id("install", app.app_id, req.device_id),
            customer_user_id=req.customer_user_id,
            ts=decision.ts,
            is_organic=decision.is_organic,
            media_source=None if decision.is_organic else decision.media_source,
            campaign=decision.campaign,
            channel=decision.channel,
            link_id=decision.link_id,
            click_id=decision.click_id,
            click_time=decision.click_time,
            match_type=decision.match_type,
            link_params=link_params if not decision.is_organic else {},
            made_for_clevertap=decision.link_id is not None,
        )
    if decision.type in ("reengagement", "reattribution"):
        known = install or prior
        return InstallOutcome(
            kind="reengagement",
            linkgen_id=postback_linkgen_id("reengagement", app.app_id, launch_id),
            customer_user_id=req.customer_user_id
            or (known.customer_user_id if known is not None else None),
            ts=decision.ts,
            is_organic=False,
            media_source=decision.media_source,
            campaign=decision.campaign,
            channel=decision.channel,
            link_id=decision.link_id,
            click_id=decision.click_id,
            click_time=decision.click_time,
            match_type=decision.match_type,
            link_params=link_params,
            made_for_clevertap=decision.link_id is not None,
        )
    return None


# ---- events ---------------------------------------------------------------------------------


def _event_install(tx: Transaction, app_id: str, req: EventRequest) -> Any | None:
    """The install an event belongs to: by device, else the newest of its customer user id."""
    sql = _launch_sql(tx.d.name)
    raw = None
    if req.device_id is not None:
        raw = tx.fetchone(sql.install_by_device, (app_id, req.device_id))
    if raw is None and req.customer_user_id is not None:
        raw = tx.fetchone(sql.install_by_cuid, (app_id, req.customer_user_id))
    return sql.installs.one(raw) if raw is not None else None


def record_event(
    tx: Transaction,
    app: SdkApp,
    req: EventRequest,
    *,
    cache: AppCache,
    now: datetime,
    api_base: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """Store one in-app event with its attribution, counters and postback in the caller's
    transaction; (201, response), or (200, the stored response) for a known event_id. `app` is
    confirmed against the cache epoch first, as for launches."""
    epoch = current_epoch(tx)
    app = cache.confirm(app, epoch, lambda key_hash: _load_app_raw(tx, key_hash))
    sql = _launch_sql(tx.d.name)
    stored = tx.fetchone(sql.event_response, (app.app_id, req.event_id))
    if stored is not None:
        return 200, event_response(sql.read_event_response(stored[0]))
    install = _event_install(tx, app.app_id, req)
    attribution = attribute_event(req.ts, _install_facts(install) if install else None)
    primary, reengagement = attribution.primary, attribution.reengagement
    credited = reengagement or primary
    if install is None:
        template_id = None
    elif reengagement is not None:
        template_id = install.re_template_id
    else:
        template_id = install.template_id
    response = event_response(
        {
            "event_id": req.event_id,
            "event_name": req.event_name,
            "attribution": _source_dict(primary),
            "reengagement": _source_dict(reengagement) if reengagement is not None else None,
        }
    )
    event = {
        "app_id": app.app_id,
        "event_id": req.event_id,
        "device_id": req.device_id,
        "customer_user_id": req.customer_user_id,
        "event_name": req.event_name,
        "event_values": req.event_values,
        "revenue_micros": req.revenue_micros,
        "currency": req.currency,
        "ts": req.ts,
        "received_at": now,
        "media_source": primary.media_source,
        "campaign": primary.campaign,
        "channel": primary.channel,
        "link_id": primary.link_id,
        "re_media_source": reengagement.media_source if reengagement else None,
        "re_campaign": reengagement.campaign if reengagement else None,
        "re_link_id": reengagement.link_id if reengagement else None,
        "response": response,
    }
    tx.execute(sql.insert_event.sql, sql.insert_event.params(event))
    _bump(
        tx,
        _counter_key(req.ts, credited, template_id),
        events=1,
        revenue_micros=req.revenue_micros or 0,
    )
    outcome = EventOutcome(
        linkgen_id=postback_linkgen_id("event", app.app_id, req.event_id),
        customer_user_id=req.customer_user_id
        or (install.customer_user_id if install is not None else None),
        ts=req.ts,
        event_name=req.event_name,
        event_values=req.event_values,
        revenue=req.revenue,
        currency=req.currency,
        install_time=install.installed_at if install is not None else None,
        is_organic=credited.is_organic,
        media_source=None if credited.is_organic else credited.media_source,
        campaign=credited.campaign,
        channel=credited.channel,
        link_id=credited.link_id,
        made_for_clevertap=credited.link_id is not None,
    )
    enqueue_postback(
        tx,
        cache.settings(app.app_id, epoch, lambda: load_integration(tx, app_id=app.app_id)),
        outcome,
        app_id=app.app_id,
        source_id=req.event_id,
        api_base=api_base,
        now=now,
    )
    return 201, response


# ---- transactions ---------------------------------------------------------------------------

ATTEMPTS = 3


def _transact(
    db: Database, begin: Callable[[], AbstractContextManager[S]], work: Callable[[S], T]
) -> T:
    """Run `work` in a transaction committed before returning; retry a lost race."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with db.writer_turn(), begin() as tx:
                return work(tx)
        except (IntegrityError, _ClickTaken):
            # A concurrent duplicate won (unique install / event / postback) or took the click:
            # the next attempt sees its committed rows and answers from them.
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def handle_launch(
    db: Database,
    app: SdkApp,
    body: Any,
    *,
    cache: AppCache,
    request_ip: str | None,
    request_ua: str | None,
    now: datetime | None = None,
    api_base: str | None = None,
    privacy: StoragePolicy = FULL,
) -> tuple[int, dict[str, Any]]:
    """`record_launch` in its own transaction (on the driver), committed before the answer. The
    body is validated first: a malformed launch never takes the writer's turn."""
    at = now or utcnow()
    req = parse_launch(body, request_ip=request_ip, request_ua=request_ua, now=at)
    return _transact(
        db,
        lambda: Transaction(db),
        lambda tx: record_launch(
            tx, app, req, cache=cache, now=at, api_base=api_base, privacy=privacy
        ),
    )


def handle_event(
    db: Database,
    app: SdkApp,
    body: Any,
    *,
    cache: AppCache,
    now: datetime | None = None,
    api_base: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """`record_event` in its own transaction (on the driver), committed before the answer.
    The body is validated first: a malformed event never takes the writer's turn."""
    at = now or utcnow()
    req = parse_event(body, now=at)
    return _transact(
        db,
        lambda: Transaction(db),
        lambda tx: record_event(tx, app, req, cache=cache, now=at, api_base=api_base),
    )


__all__ = [
    "handle_event",
    "handle_launch",
    "launch_os",
    "record_event",
    "record_launch",
]
