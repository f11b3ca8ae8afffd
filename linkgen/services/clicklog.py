"""The click log: raw clicks, newest first, filtered by link, campaign, people or bots and a
range of days, a page at a time (keyset), so a page costs the same at the millionth click as at
the first.

Pages are named by a click's id (`before=`: the last click of the previous page) but ordered by
(ts, id): ordered by id alone, a range of days long past made PostgreSQL walk the primary key
back from the newest click (2.5 s for one day 115 days back among 10 M clicks,
benchmarks/RESULTS.md); by time, every filter reads one index range (`ix_clicks_ts`,
`ix_clicks_link_ts`, `ix_clicks_campaign_ts`) from its end."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from linkgen.domain.errors import InvalidParameter
from linkgen.domain.explain import bot_reason_text, outcome_text
from linkgen.domain.validate import is_digits
from linkgen.services.stats import parse_day
from linkgen.storage.models import Click

PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 200
WHO: Final = {"all": "People and bots", "people": "People only", "bots": "Bots only"}
PLATFORMS: Final = {"ios": "iOS", "android": "Android", "desktop": "Computer", "other": "Other"}


@dataclass(frozen=True)
class ClickQuery:
    """What the click log is asked for, checked."""

    link_id: str | None = None
    campaign: str | None = None
    who: str = "all"
    day_from: date | None = None
    day_to: date | None = None
    before: int | None = None
    limit: int = PAGE_SIZE

    def args(self, **changes: Any) -> dict[str, str]:
        """The query string of this page (with `changes`), empty values left out."""
        values = {
            "link": self.link_id,
            "campaign": self.campaign,
            "who": None if self.who == "all" else self.who,
            "from": self.day_from.isoformat() if self.day_from else None,
            "to": self.day_to.isoformat() if self.day_to else None,
            "before": str(self.before) if self.before else None,
            "limit": None if self.limit == PAGE_SIZE else str(self.limit),
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v}


def _text(args: Mapping[str, str], name: str, longest: int) -> str | None:
    value = args.get(name) or None
    if value is not None and len(value) > longest:
        raise InvalidParameter(f"{name} must be at most {longest} characters", field=name)
    return value


def _positive(args: Mapping[str, str], name: str, message: str, top: int | None = None) -> int:
    raw = args.get(name, "")
    if not is_digits(raw) or int(raw) < 1 or (top is not None and int(raw) > top):
        raise InvalidParameter(f"{name} must be {message}", field=name)
    return int(raw)


def parse_click_query(args: Mapping[str, str]) -> ClickQuery:
    """The click log's query values (`link`, `campaign`, `who`, `from`, `to`, `before`,
    `limit`), each checked, naming the field that is wrong."""
    who = args.get("who") or "all"
    if who not in WHO:
        raise InvalidParameter(f"who must be one of {', '.join(WHO)}", field="who")
    day_from, day_to = parse_day(args, "from"), parse_day(args, "to")
    if day_from is not None and day_to is not None and day_from > day_to:
        raise InvalidParameter("from must not be after to", field="from")
    before = None
    if args.get("before"):
        before = _positive(
            args, "before", "a click number from the click log's Older link", 2**63 - 1
        )
    limit = PAGE_SIZE
    if args.get("limit"):
        limit = _positive(args, "limit", f"a whole number from 1 to {MAX_PAGE_SIZE}", MAX_PAGE_SIZE)
    return ClickQuery(
        link_id=_text(args, "link", 32),
        campaign=_text(args, "campaign", 100),
        who=who,
        day_from=day_from,
        day_to=day_to,
        before=before,
        limit=limit,
    )


@dataclass(frozen=True)
class ClickEntry:
    """One click, ready for display."""

    id: int
    ts: datetime
    link_id: str | None
    template_id: str
    campaign: str | None
    channel: str | None
    media_source: str | None
    platform: str
    os_version: str | None
    referrer_host: str | None
    outcome: str
    is_bot: bool
    bot_reason: str | None
    bot_text: str | None
    attributable: bool
    not_attributable_reason: str | None
    consumed: bool

    @property
    def device(self) -> str:
        """Platform and OS version in words ("iOS 17.4")."""
        name = PLATFORMS.get(self.platform, self.platform)
        return f"{name} {self.os_version}" if self.os_version else name


@dataclass(frozen=True)
class ClickPage:
    """One page of the log and where the next (older) one starts."""

    entries: list[ClickEntry]
    next_before: int | None


def referrer_host(referrer: str | None) -> str | None:
    """Only the host of a referrer: the path may carry a recipient's data."""
    if not referrer:
        return None
    try:
        host = urlsplit(referrer).hostname
    except ValueError:
        return None
    return host or None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


COLUMNS: Final = (
    Click.id,
    Click.ts,
    Click.link_id,
    Click.template_id,
    Click.campaign,
    Click.channel,
    Click.media_source,
    Click.platform,
    Click.os_version,
    Click.referrer,
    Click.outcome,
    Click.is_bot,
    Click.bot_reason,
    Click.attributable,
    Click.not_attributable_reason,
    Click.consumed,
)


def click_page(session: Session, q: ClickQuery) -> ClickPage:
    """The page of clicks `q` asks for: at most `q.limit`, newest first (the page's query and,
    after the first page, a primary-key read of the click it starts after)."""
    query = select(*COLUMNS).order_by(Click.ts.desc(), Click.id.desc()).limit(q.limit + 1)
    if q.link_id is not None:
        query = query.where(Click.link_id == q.link_id)
    if q.campaign is not None:
        query = query.where(Click.campaign == q.campaign)
    if q.who == "bots":
        query = query.where(Click.is_bot.is_(True))
    elif q.who == "people":
        query = query.where(Click.is_bot.is_(False))
    if q.day_from is not None:
        query = query.where(Click.ts >= _midnight(q.day_from))
    if q.day_to is not None:
        query = query.where(Click.ts < _midnight(q.day_to + timedelta(days=1)))
    if q.before is not None:
        anchor = session.execute(select(Click.ts).where(Click.id == q.before)).scalar()
        if anchor is None:
            raise InvalidParameter(
                "before names a click that is not stored (any more): start from the newest",
                field="before",
            )
        query = query.where(
            Click.ts <= anchor,
            or_(Click.ts < anchor, and_(Click.ts == anchor, Click.id < q.before)),
        )
    rows = list(session.execute(query))
    more = len(rows) > q.limit
    entries = [
        ClickEntry(
            id=r.id,
            ts=r.ts,
            link_id=r.link_id,
            template_id=r.template_id,
            campaign=r.campaign,
            channel=r.channel,
            media_source=r.media_source,
            platform=r.platform,
            os_version=r.os_version,
            referrer_host=referrer_host(r.referrer),
            outcome=outcome_text(r.outcome),
            is_bot=r.is_bot,
            bot_reason=r.bot_reason,
            bot_text=bot_reason_text(r.bot_reason) if r.is_bot else None,
            attributable=r.attributable,
            not_attributable_reason=r.not_attributable_reason,
            consumed=r.consumed,
        )
        for r in rows[: q.limit]
    ]
    return ClickPage(entries, entries[-1].id if more and entries else None)
