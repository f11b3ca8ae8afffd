"""The schema: typed SQLAlchemy 2 models, one schema for SQLite and PostgreSQL.

Times are timezone-aware UTC (`UTCDateTime`). Public identifiers (link ids, click ids, launch
ids) are strings; integer primary keys stay internal. Counters use '' rather than NULL in their
key columns so that the unique key (and so the upsert) works on both databases.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from linkgen.domain.links import MAX_TAG_CHARS, MAX_TITLE_CHARS
from linkgen.storage.types import JSONType, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Integer primary keys: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
    }


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # Written into each browser session at login; logout, a new password or ending sessions
    # adds one, so every session cookie issued before no longer logs anyone in.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # admin | editor | viewer (linkgen/web/ui/roles.py says what each may do in the web app).
    role: Mapped[str] = mapped_column(String(16), default="admin", server_default="admin")


class Invitation(Base):
    """A one-time link that lets someone create their own login; only the token's hash is kept."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists, never enough to use
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(16), default="admin")  # admin | read
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class App(Base):
    __tablename__ = "apps"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    app_id: Mapped[str] = mapped_column(String(160), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    platform: Mapped[str] = mapped_column(String(10))
    bundle_id: Mapped[str | None] = mapped_column(String(160))
    team_id: Mapped[str | None] = mapped_column(String(20))
    sha256_cert_fingerprints: Mapped[list[str]] = mapped_column(JSONType, default=list)
    store_url: Mapped[str | None] = mapped_column(String(500))
    sdk_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    sdk_key_last4: Mapped[str] = mapped_column(String(8))
    click_lookback: Mapped[str] = mapped_column(String(8), default="7d")
    reengagement_window: Mapped[str] = mapped_column(String(16), default="30d")
    reattribution_window_days: Mapped[int] = mapped_column(Integer, default=90)
    probabilistic_matching: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BrandedDomain(Base):
    """A link domain added at run time (POST /api/v1/domains), beside LINKGEN_LINK_DOMAINS."""

    __tablename__ = "branded_domains"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    domain: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))
    # When linkgen's TLS `ask` endpoint was last asked about it: DNS points here.
    seen_at: Mapped[datetime | None]


class Template(Base):
    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    template_id: Mapped[str] = mapped_column(String(16), unique=True)
    domain: Mapped[str] = mapped_column(String(255))
    ios_app_id: Mapped[str | None] = mapped_column(String(160))
    android_app_id: Mapped[str | None] = mapped_column(String(160))
    uri_scheme: Mapped[str | None] = mapped_column(String(100))
    universal_links: Mapped[bool] = mapped_column(Boolean, default=False)
    app_links: Mapped[bool] = mapped_column(Boolean, default=False)
    web_fallback_url: Mapped[str | None] = mapped_column(String(2000))
    # Where an unknown or deleted short link on this template redirects (None: web_fallback_url).
    not_found_url: Mapped[str | None] = mapped_column(String(2000))
    redirect_allowlist: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ClevertapIntegration(Base):
    __tablename__ = "clevertap_integrations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    app_pk: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), unique=True)
    # The whole settings object (secrets included: they are needed to send). Never logged;
    # the API and UI only ever show it through the masking in linkgen.domain.clevertap.
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class IntegrationAudit(Base):
    __tablename__ = "integration_audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    app_pk: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    changes: Mapped[dict[str, Any]] = mapped_column(JSONType)


class Link(Base):
    __tablename__ = "links"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    template_id: Mapped[str] = mapped_column(String(16), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    media_source: Mapped[str] = mapped_column(String(150))
    campaign: Mapped[str | None] = mapped_column(String(100), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    short: Mapped[bool] = mapped_column(Boolean, default=False)
    shortlink_id: Mapped[str | None] = mapped_column(String(50))
    ttl_seconds: Mapped[int | None] = mapped_column(Integer)  # None: never expires
    renew_ttl: Mapped[bool] = mapped_column(Boolean, default=True)
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))
    # For the people who manage links (never in a URL): see linkgen.domain.links.
    title: Mapped[str | None] = mapped_column(String(MAX_TITLE_CHARS))
    # The tags as answered (lower-case, in the order given); `link_tags` indexes them.
    tags: Mapped[list[str] | None] = mapped_column(JSONType)
    notes: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("template_id", "shortlink_id"),)


class LinkTag(Base):
    """One row per tag of a link: the list filters by tag through `ix_link_tags_tag` on both
    databases (a JSON column cannot be indexed for membership on SQLite). Written in the same
    transaction as the link's `tags`; deleted with the link."""

    __tablename__ = "link_tags"

    link_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("links.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(MAX_TAG_CHARS), primary_key=True)

    __table_args__ = (Index("ix_link_tags_tag", "tag", "link_id"),)


class Click(Base):
    __tablename__ = "clicks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    click_id: Mapped[str] = mapped_column(String(40), unique=True)
    ts: Mapped[datetime]
    link_id: Mapped[str | None] = mapped_column(String(32))
    template_id: Mapped[str] = mapped_column(String(16))
    app_id: Mapped[str | None] = mapped_column(String(160))  # the app this platform maps to
    media_source: Mapped[str | None] = mapped_column(String(150))
    campaign: Mapped[str | None] = mapped_column(String(100))
    channel: Mapped[str | None] = mapped_column(String(20))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(Text)
    platform: Mapped[str] = mapped_column(String(10))
    os_version: Mapped[str | None] = mapped_column(String(32))
    referrer: Mapped[str | None] = mapped_column(Text)
    device_id: Mapped[str | None] = mapped_column(String(100))
    customer_user_id: Mapped[str | None] = mapped_column(String(200))
    is_retargeting: Mapped[bool] = mapped_column(Boolean, default=False)
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    bot_reason: Mapped[str | None] = mapped_column(String(64))
    is_qr: Mapped[bool] = mapped_column(Boolean, default=False)
    attributable: Mapped[bool] = mapped_column(Boolean, default=True)
    not_attributable_reason: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(32))
    consumed: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_clicks_app_ip_ts", "app_id", "ip", "ts"),
        Index(
            "ix_clicks_device_id",
            "device_id",
            "ts",
            sqlite_where=text("device_id IS NOT NULL"),
            postgresql_where=text("device_id IS NOT NULL"),
        ),
        Index(
            "ix_clicks_customer_user_id",
            "customer_user_id",
            "ts",
            sqlite_where=text("customer_user_id IS NOT NULL"),
            postgresql_where=text("customer_user_id IS NOT NULL"),
        ),
        Index("ix_clicks_ts", "ts"),
        # The click log pages a link's or a campaign's clicks newest first, by (ts, id).
        Index(
            "ix_clicks_link_ts",
            "link_id",
            "ts",
            "id",
            sqlite_where=text("link_id IS NOT NULL"),
            postgresql_where=text("link_id IS NOT NULL"),
        ),
        Index(
            "ix_clicks_campaign_ts",
            "campaign",
            "ts",
            "id",
            sqlite_where=text("campaign IS NOT NULL"),
            postgresql_where=text("campaign IS NOT NULL"),
        ),
    )


class Install(Base):
    """One row per (app, device_id): the device's install and its current re-engagement."""

    __tablename__ = "installs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    app_id: Mapped[str] = mapped_column(String(160))
    device_id: Mapped[str] = mapped_column(String(100))
    customer_user_id: Mapped[str | None] = mapped_column(String(200))
    idfa: Mapped[str | None] = mapped_column(String(64))
    idfv: Mapped[str | None] = mapped_column(String(64))
    gaid: Mapped[str | None] = mapped_column(String(64))
    installed_at: Mapped[datetime]
    type: Mapped[str] = mapped_column(String(16))  # install | reinstall | reattribution
    is_organic: Mapped[bool] = mapped_column(Boolean, default=True)
    media_source: Mapped[str | None] = mapped_column(String(150))
    campaign: Mapped[str | None] = mapped_column(String(100))
    channel: Mapped[str | None] = mapped_column(String(20))
    link_id: Mapped[str | None] = mapped_column(String(32))
    template_id: Mapped[str | None] = mapped_column(String(16))
    click_id: Mapped[str | None] = mapped_column(String(40))
    click_time: Mapped[datetime | None]
    match_type: Mapped[str | None] = mapped_column(String(20))
    made_for_clevertap: Mapped[bool] = mapped_column(Boolean, default=False)
    install_postback: Mapped[bool] = mapped_column(Boolean, default=True)
    link_params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    first_launch_id: Mapped[str] = mapped_column(String(40))
    # The latest re-engagement (its source wins in-app events until re_until).
    re_media_source: Mapped[str | None] = mapped_column(String(150))
    re_campaign: Mapped[str | None] = mapped_column(String(100))
    re_channel: Mapped[str | None] = mapped_column(String(20))
    re_link_id: Mapped[str | None] = mapped_column(String(32))
    re_template_id: Mapped[str | None] = mapped_column(String(16))
    re_click_id: Mapped[str | None] = mapped_column(String(40))
    re_at: Mapped[datetime | None]
    re_until: Mapped[datetime | None]
    re_lifetime: Mapped[bool] = mapped_column(Boolean, default=False)
    re_made_for_clevertap: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        UniqueConstraint("app_id", "device_id"),
        Index("ix_installs_app_idfv", "app_id", "idfv"),
        Index("ix_installs_app_gaid", "app_id", "gaid"),
        Index("ix_installs_app_cuid", "app_id", "customer_user_id"),
    )


class Launch(Base):
    __tablename__ = "launches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    launch_id: Mapped[str] = mapped_column(String(40), unique=True)
    app_id: Mapped[str] = mapped_column(String(160))
    device_id: Mapped[str] = mapped_column(String(100))
    customer_user_id: Mapped[str | None] = mapped_column(String(200))
    first_launch: Mapped[bool] = mapped_column(Boolean)
    type: Mapped[str] = mapped_column(String(16))
    ts: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    is_organic: Mapped[bool] = mapped_column(Boolean)
    media_source: Mapped[str | None] = mapped_column(String(150))
    campaign: Mapped[str | None] = mapped_column(String(100))
    channel: Mapped[str | None] = mapped_column(String(20))
    match_type: Mapped[str | None] = mapped_column(String(20))
    click_id: Mapped[str | None] = mapped_column(String(40))
    link_id: Mapped[str | None] = mapped_column(String(32))
    explain: Mapped[dict[str, Any]] = mapped_column(JSONType)  # passed-over clicks and why
    request: Mapped[dict[str, Any]] = mapped_column(JSONType)
    response: Mapped[dict[str, Any]] = mapped_column(JSONType)

    # No index on (app_id, device_id): a device's state lives in `installs`, and launches are
    # only read by `launch_id` (a retried first launch) and in `ts` order (retention).
    __table_args__ = (
        # Retention deletes the oldest launches in `ts` order (linkgen/services/retention.py).
        Index("ix_launches_ts", "ts"),
    )


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    app_id: Mapped[str] = mapped_column(String(160))
    event_id: Mapped[str] = mapped_column(String(200))
    device_id: Mapped[str | None] = mapped_column(String(100))
    customer_user_id: Mapped[str | None] = mapped_column(String(200))
    event_name: Mapped[str] = mapped_column(String(200))
    event_values: Mapped[dict[str, Any]] = mapped_column(JSONType)
    revenue_micros: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    ts: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    media_source: Mapped[str | None] = mapped_column(String(150))
    campaign: Mapped[str | None] = mapped_column(String(100))
    channel: Mapped[str | None] = mapped_column(String(20))
    link_id: Mapped[str | None] = mapped_column(String(32))
    re_media_source: Mapped[str | None] = mapped_column(String(150))
    re_campaign: Mapped[str | None] = mapped_column(String(100))
    re_link_id: Mapped[str | None] = mapped_column(String(32))
    response: Mapped[dict[str, Any]] = mapped_column(JSONType)

    __table_args__ = (
        UniqueConstraint("app_id", "event_id"),
        # Revenue per currency over a range of days reads only the events that carry revenue.
        Index(
            "ix_events_revenue_ts",
            "ts",
            sqlite_where=text("revenue_micros IS NOT NULL"),
            postgresql_where=text("revenue_micros IS NOT NULL"),
        ),
    )


class Postback(Base):
    """The outbox: written in the transaction of the launch or event that caused it."""

    __tablename__ = "postbacks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    linkgen_id: Mapped[str] = mapped_column(String(64), unique=True)
    app_id: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(16))  # install | reengagement | event
    source_id: Mapped[str] = mapped_column(String(200))  # launch_id or event_id
    # queued | sending | in_doubt | sent | failed | skipped
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(64))
    record: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    account_id: Mapped[str | None] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(16))
    endpoint: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    # When transient failures stop being retried; NULL means created_at + 24 h. A manual retry
    # sets it, so a postback retried by hand gets a fresh day rather than one attempt.
    give_up_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_postbacks_status_next", "status", "next_attempt_at"),
        Index("ix_postbacks_app_created", "app_id", "created_at"),
    )


class CounterColumns:
    """What a counter row counts (`stat_counters`, and its per-day sums `counter_rollups`)."""

    clicks: Mapped[int] = mapped_column(BigInteger, default=0)
    human_clicks: Mapped[int] = mapped_column(BigInteger, default=0)
    bot_clicks: Mapped[int] = mapped_column(BigInteger, default=0)
    installs: Mapped[int] = mapped_column(BigInteger, default=0)
    reengagements: Mapped[int] = mapped_column(BigInteger, default=0)
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    revenue_micros: Mapped[int] = mapped_column(BigInteger, default=0)


class StatCounter(CounterColumns, Base):
    """Counters kept as clicks, launches and events arrive, so reports never count rows."""

    __tablename__ = "stat_counters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    link_id: Mapped[str] = mapped_column(String(32), default="")
    template_id: Mapped[str] = mapped_column(String(16), default="")
    campaign: Mapped[str] = mapped_column(String(100), default="")
    channel: Mapped[str] = mapped_column(String(20), default="")
    media_source: Mapped[str] = mapped_column(String(150), default="")

    __table_args__ = (
        UniqueConstraint(
            "day",
            "link_id",
            "template_id",
            "campaign",
            "channel",
            "media_source",
            name="uq_stat_counters_key",
        ),
        # The link list's totals and a link's daily chart read by link: without it, both read
        # every counter row (one per link and day) of the table or of the days asked for.
        Index("ix_stat_counters_link_day", "link_id", "day"),
    )


class ClickRollup(Base):
    """Clicks per day by platform, OS, country and referrer, for all clicks and within each
    campaign, channel and media source: filled off the click path by `services.rollups`."""

    __tablename__ = "click_rollups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date)  # UTC, as the counters' days
    scope: Mapped[str] = mapped_column(String(16))  # all | campaign | channel | media_source
    scope_value: Mapped[str] = mapped_column(String(150), default="")
    dimension: Mapped[str] = mapped_column(String(16))  # platform | os | country | referrer
    value: Mapped[str] = mapped_column(String(255), default="")
    human_clicks: Mapped[int] = mapped_column(BigInteger, default=0)
    bot_clicks: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (
        # Key order is the reports' read order: one scope's dimensions over a range of days is
        # one range of this index per dimension.
        UniqueConstraint(
            "scope", "scope_value", "dimension", "day", "value", name="uq_click_rollups_key"
        ),
    )


class CounterRollup(CounterColumns, Base):
    """The counters summed per UTC day and campaign, channel and media source (the counters
    without their link and template), for days before yesterday (which change only through
    late launches and events): rebuilt from `stat_counters` by `services.rollups`, read by
    `services.stats`."""

    __tablename__ = "counter_rollups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    campaign: Mapped[str] = mapped_column(String(100), default="")
    channel: Mapped[str] = mapped_column(String(20), default="")
    media_source: Mapped[str] = mapped_column(String(150), default="")

    __table_args__ = (
        UniqueConstraint(
            "day", "campaign", "channel", "media_source", name="uq_counter_rollups_key"
        ),
    )


class RollupWatermark(Base):
    """How far a rollup has read its source table (the last `clicks.id` rolled up)."""

    __tablename__ = "rollup_watermarks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CacheEpoch(Base):
    """Bumped in the transaction of every template or link edit; click caches poll it."""

    __tablename__ = "cache_epochs"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)


class WorkerHeartbeat(Base):
    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime]


class LoginAttempt(Base):
    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
