"""How a link is shown: its URLs, its JSON answer, canonical params, ids."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from linkgen.domain.links import (
    KNOWN_PARAMS,
    TemplateInfo,
    build_long_url,
    build_short_url,
    clevertap_block,
    link_ref,
    with_qr_flag,
)
from linkgen.storage.models import Template

PARTNER = "clevertap"
SchemeFor = Callable[[str], str]
_KNOWN_RANK = {name: rank for rank, name in enumerate(KNOWN_PARAMS)}
_SEQUENCE = itertools.count()

# --------------------------------------------------------------------------- ids and shapes


def new_link_id() -> str:
    """A 32-character hex id: creation time in ms, a per-process sequence, then 56 random bits.

    Ids sort in creation order (a bulk insert shares one created_at, and the list orders ties
    by id) and keep inserts at the end of the primary-key index; the random tail keeps them
    unguessable and unique across processes.
    """
    seq = next(_SEQUENCE) & 0xFFFFFF
    return f"{time.time_ns() // 1_000_000:012x}{seq:06x}{os.urandom(7).hex()}"


def canonical_params(params: Mapping[str, str]) -> dict[str, str]:
    """Known params in table order, then custom params sorted by name."""
    known = sorted((k for k in params if k in _KNOWN_RANK), key=_KNOWN_RANK.__getitem__)
    custom = sorted(k for k in params if k not in _KNOWN_RANK)
    return {k: str(params[k]) for k in (*known, *custom)}


@dataclass(frozen=True)
class LinkUrls:
    """The URLs of a link."""

    long_url: str
    short_url: str | None

    @property
    def shared_url(self) -> str:
        """The URL people get: the short one when there is one."""
        return self.short_url or self.long_url


def template_info(t: Template, scheme_for: SchemeFor) -> TemplateInfo:
    """The builder's view of a template."""
    return TemplateInfo(
        template_id=t.template_id,
        domain=t.domain,
        scheme=scheme_for(t.domain),
        redirect_allowlist=tuple(t.redirect_allowlist or ()),
    )


class LinkRow(Protocol):
    """What serializing a link reads: a stored `Link` or a just-inserted `NewLink`."""

    @property
    def id(self) -> str: ...
    @property
    def template_id(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def media_source(self) -> str: ...
    @property
    def campaign(self) -> str | None: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def short(self) -> bool: ...
    @property
    def shortlink_id(self) -> str | None: ...
    @property
    def ttl_seconds(self) -> int | None: ...
    @property
    def renew_ttl(self) -> bool: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def created_by(self) -> str | None: ...
    @property
    def title(self) -> str | None: ...
    @property
    def tags(self) -> list[str] | None: ...
    @property
    def notes(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class NewLink:
    """A row as inserted (cheaper than a transient ORM object on the hot create path)."""

    id: str
    template_id: str
    channel: str
    media_source: str
    campaign: str | None
    params: dict[str, Any]
    short: bool
    shortlink_id: str | None
    ttl_seconds: int | None
    renew_ttl: bool
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    title: str | None = None
    tags: list[str] | None = None
    notes: str | None = None


def _url_params(link: LinkRow, params: Mapping[str, str]) -> dict[str, str]:
    """`ordered_params` of a stored link whose params are already canonical (same order)."""
    out: dict[str, str] = {"pid": link.media_source}
    if link.campaign is not None:
        out["c"] = link.campaign
    out["af_channel"] = link.channel
    out.update(params)
    return out


def _urls(link: LinkRow, info: TemplateInfo, params: Mapping[str, str]) -> LinkUrls:
    long_url = build_long_url(info, _url_params(link, params), ref=link_ref(link.id))
    short_url = None
    if link.short and link.shortlink_id:
        short_url = build_short_url(info, link.shortlink_id, params)
    return LinkUrls(long_url=long_url, short_url=short_url)


def link_urls(link: LinkRow, info: TemplateInfo) -> LinkUrls:
    """The long URL and (short links) the short URL of a stored link."""
    return _urls(link, info, canonical_params(link.params or {}))


def qr_url(link: LinkRow, info: TemplateInfo) -> str:
    """What a link's QR code encodes: the short URL (else the long URL) with af_qr=true."""
    return with_qr_flag(link_urls(link, info).shared_url)


def link_to_dict(link: LinkRow, info: TemplateInfo) -> dict[str, Any]:
    """The API shape of a link (the contract's fields first)."""
    params = canonical_params(link.params or {})
    urls = _urls(link, info, params)
    base = f"/api/v1/links/{link.id}"
    return {
        "id": link.id,
        "template_id": link.template_id,
        "channel": link.channel,
        "media_source": link.media_source,
        "campaign": link.campaign,
        "params": params,
        "partner": PARTNER,
        "long_url": urls.long_url,
        "short_url": urls.short_url,
        "shortlink_id": link.shortlink_id,
        "expires_at": _iso(link.expires_at),
        "clevertap": clevertap_block(urls.shared_url, link.channel),
        "qr_png_url": f"{base}/qr.png",
        "qr_svg_url": f"{base}/qr.svg",
        "short": link.short,
        "ttl": ttl_text(link.ttl_seconds),
        "renew_ttl": link.renew_ttl,
        "created_at": _iso(link.created_at),
        "updated_at": _iso(link.updated_at),
        "created_by": link.created_by,
        "title": link.title,
        "tags": list(link.tags or ()),
        "notes": link.notes,
    }


def _iso(value: datetime | None) -> str | None:
    # catalog.iso's format (seconds, Z) without strftime, which costs more than the rest of
    # the link's serialization; stored times are always UTC.
    if value is None:
        return None
    return value.isoformat(timespec="seconds")[:19] + "Z"


def ttl_text(seconds: int | None) -> str | None:
    """A TTL as the API answers it (`31d`, `2h`, `10m`), None when the link never expires."""
    if seconds is None:
        return None
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds // 60}m"
