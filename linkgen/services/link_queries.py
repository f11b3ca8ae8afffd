"""Reading links: one by id, filtered lists with a cursor, every link for an export."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from linkgen.domain.errors import InvalidParameter, NotFound
from linkgen.services.link_templates import TemplateLookup
from linkgen.services.link_views import SchemeFor, link_to_dict
from linkgen.storage.models import Link, LinkTag

# Ids are letters and digits: anything else (an over-long value, a NUL byte that PostgreSQL
# refuses outright) is certainly unknown and never reaches a query.
LINK_ID_RE = re.compile(r"\A[A-Za-z0-9]{1,32}\Z")

# --------------------------------------------------------------------------- read


def get_link(session: Session, link_id: str) -> Link:
    """A link by id, or 404."""
    link = session.get(Link, link_id) if LINK_ID_RE.match(link_id) else None
    if link is None:
        raise NotFound(f"no link {link_id!r}", field="id")
    return link


def get_link_dict(session: Session, link_id: str, *, scheme_for: SchemeFor) -> dict[str, Any]:
    """A link's API shape."""
    link = get_link(session, link_id)
    return link_to_dict(link, TemplateLookup(session, scheme_for).require(link.template_id))


@dataclass(frozen=True)
class LinkFilter:
    """List filters: exact campaign, channel, template and tag (case-insensitive, as tags are
    kept lower-case); `q` searches several columns, the title among them."""

    campaign: str | None = None
    channel: str | None = None
    template_id: str | None = None
    q: str | None = None
    tag: str | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> LinkFilter:
        """Filters from query arguments (empty means no filter)."""
        values: dict[str, str | None] = {}
        for name in ("campaign", "channel", "template_id", "q", "tag"):
            raw = args.get(name)
            if raw is not None and len(raw) > 200:
                raise InvalidParameter(f"{name} is longer than 200 characters", field=name)
            if raw is not None and "\x00" in raw:
                raise InvalidParameter(f"{name} must not contain a NUL character", field=name)
            values[name] = raw or None
        if values["tag"] is not None:
            values["tag"] = values["tag"].strip().lower() or None
        return cls(**values)

    @property
    def active(self) -> bool:
        """True when any filter is set."""
        return any((self.campaign, self.channel, self.template_id, self.q, self.tag))

    def apply(self, query: Select[Any]) -> Select[Any]:
        """Add the filters to a query on Link."""
        if self.campaign is not None:
            query = query.where(Link.campaign == self.campaign)
        if self.channel is not None:
            query = query.where(Link.channel == self.channel)
        if self.template_id is not None:
            query = query.where(Link.template_id == self.template_id)
        if self.tag is not None:
            # ix_link_tags_tag: the ids of the tag's links, then the links by primary key.
            tagged = select(LinkTag.link_id).where(LinkTag.tag == self.tag)
            query = query.where(Link.id.in_(tagged))
        if self.q is not None:
            escaped = self.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped}%"
            query = query.where(
                or_(
                    func.lower(Link.campaign).like(pattern, escape="\\"),
                    func.lower(Link.media_source).like(pattern, escape="\\"),
                    func.lower(Link.shortlink_id).like(pattern, escape="\\"),
                    func.lower(Link.title).like(pattern, escape="\\"),
                    Link.id == self.q,
                )
            )
        return query


def _parse_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    stamp, sep, link_id = cursor.partition("|")
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        when = None
    if not sep or when is None or when.tzinfo is None or not LINK_ID_RE.match(link_id):
        raise InvalidParameter("cursor is not one this API gave out", field="cursor")
    return when, link_id


def _cursor_of(link: Link) -> str:
    return f"{link.created_at.isoformat()}|{link.id}"


def _newest_first(query: Select[Any], after: tuple[datetime, str] | None) -> Select[Any]:
    if after is not None:
        when, link_id = after
        query = query.where(
            or_(Link.created_at < when, and_(Link.created_at == when, Link.id < link_id))
        )
    return query.order_by(Link.created_at.desc(), Link.id.desc())


def list_links(
    session: Session,
    filters: LinkFilter,
    *,
    cursor: str | None,
    limit: int,
    scheme_for: SchemeFor,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of links, newest first; returns the items and the next page's cursor key."""
    query = _newest_first(filters.apply(select(Link)), _parse_cursor(cursor)).limit(limit + 1)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    templates = TemplateLookup(session, scheme_for)
    templates.preload(link.template_id for link in rows)
    items = [link_to_dict(link, templates.require(link.template_id)) for link in rows]
    return items, (_cursor_of(rows[-1]) if more and rows else None)


def iter_links(
    session: Session, filters: LinkFilter, *, chunk: int = 1_000
) -> Iterator[list[Link]]:
    """All matching links, newest first, in chunks (keyset pages: memory stays bounded)."""
    after: tuple[datetime, str] | None = None
    while True:
        rows = list(session.scalars(_newest_first(filters.apply(select(Link)), after).limit(chunk)))
        if not rows:
            return
        yield rows
        if len(rows) < chunk:
            return
        after = (rows[-1].created_at, rows[-1].id)
        session.expunge_all()
