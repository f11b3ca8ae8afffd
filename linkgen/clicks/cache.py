"""What the click path needs to know about templates and short links, cached per process.

Every template or link edit bumps the `routes` cache epoch in its own transaction. The process
that made the edit clears its cache as soon as the edit commits; every other process polls the
epoch (twice a second) and clears its cache when it moved. So a click never follows an edit by
more than one poll interval, and most clicks cost no query at all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, select

from linkgen.domain.apps import default_store_url
from linkgen.domain.links import link_id_of_ref
from linkgen.domain.routing import TemplateRouting
from linkgen.domain.templates import host_of
from linkgen.storage.db import Database
from linkgen.storage.epochs import read_epoch
from linkgen.storage.models import App, Link, Template
from linkgen.threads import Thread

log = logging.getLogger("linkgen.clicks")

MAX_ENTRIES = 200_000  # bounds memory when bots probe random ids

K = TypeVar("K")
V = TypeVar("V")


class NotCached(LookupError):
    """The entry is not in memory and the caller asked not to query the database for it."""


@dataclass(frozen=True, slots=True)
class CachedTemplate:
    """A template as the click path uses it."""

    template_id: str
    domain_host: str  # the template's domain without port, lower-cased
    routing: TemplateRouting
    ios_app_id: str | None
    android_app_id: str | None
    not_found_url: str | None = None  # unknown or deleted short links go here (else a 404)


@dataclass(slots=True)
class CachedLink:
    """A link's stored parameters (expires_at moves as clicks renew it)."""

    id: str
    template_id: str
    shortlink_id: str | None
    media_source: str
    campaign: str | None
    channel: str
    params: dict[str, str]  # pid, c, af_channel, then the stored params
    ttl_seconds: int | None  # None: never expires
    renew_ttl: bool
    expires_at: datetime | None


def link_params(link: Link) -> dict[str, str]:
    """A link's full parameter set in URL order."""
    params: dict[str, str] = {"pid": link.media_source}
    if link.campaign:
        params["c"] = link.campaign
    params["af_channel"] = link.channel
    for key, value in (link.params or {}).items():
        params[str(key)] = str(value)
    return params


class RouteCache:
    """Templates by id, links by (template id, shortlink id) and by id, with negative entries."""

    def __init__(self, db: Database, *, poll_interval: float = 0.5) -> None:
        self.db = db
        self.poll_interval = poll_interval
        self._templates: dict[str, CachedTemplate | None] = {}
        self._links: dict[tuple[str, str], CachedLink | None] = {}
        self._links_by_ref: dict[str, CachedLink | None] = {}
        self._epoch: int | None = None
        self._generation = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # -- lookups ---------------------------------------------------------------------------

    def template(self, template_id: str, *, load: bool = True) -> CachedTemplate | None:
        """A template, or None when it does not exist.

        Not in memory and not `load`: `NotCached` (the caller may not wait for the database)."""
        try:
            return self._templates[template_id]
        except KeyError:  # the hit path stays one dict lookup; a miss loads
            return self._fill(load, self._templates, template_id, self._load_template, template_id)

    def link(self, template_id: str, shortlink_id: str, *, load: bool = True) -> CachedLink | None:
        """A short link, or None when it does not exist (`NotCached`: see `template`)."""
        key = (template_id, shortlink_id)
        try:
            return self._links[key]
        except KeyError:
            return self._fill(load, self._links, key, self._load_link, template_id, shortlink_id)

    def link_by_ref(self, ref: str, *, load: bool = True) -> CachedLink | None:
        """The link a long URL's `lg_link` value names, or None when it names none.

        Kept by the value as sent, so a cached click decodes nothing."""
        try:
            return self._links_by_ref[ref]
        except KeyError:
            return self._fill(load, self._links_by_ref, ref, self._load_by_ref, ref)

    def reload_link(
        self, template_id: str, shortlink_id: str, *, load: bool = True
    ) -> CachedLink | None:
        """Read a link again (another process may have renewed its expiry)."""
        key = (template_id, shortlink_id)
        return self._fill(load, self._links, key, self._load_link, template_id, shortlink_id)

    def _fill(
        self, load: bool, table: dict[K, V], key: K, fetch: Callable[..., V], *args: Any
    ) -> V:
        """Load one entry and remember it (unless a clear() came meanwhile)."""
        if not load:
            raise NotCached(key)
        generation = self._generation
        found = fetch(*args)
        self._remember(generation, table, key, found)
        return found

    def _remember(self, generation: int, table: dict[Any, Any], key: Any, value: Any) -> None:
        # A value loaded before a clear() may predate the edit that caused it: drop it.
        if generation != self._generation:
            return
        if len(table) >= MAX_ENTRIES:
            table.clear()
        table[key] = value

    def clear(self) -> None:
        """Forget everything (called after an edit commits, and when the epoch moves)."""
        with self._lock:
            self._generation += 1
            self._templates = {}
            self._links = {}
            self._links_by_ref = {}

    # -- loading ---------------------------------------------------------------------------

    def _load_template(self, template_id: str) -> CachedTemplate | None:
        with self.db.sessions() as session:
            t = session.scalar(select(Template).where(Template.template_id == template_id))
            if t is None:
                return None
            stores: dict[str, str | None] = {}
            for app_id in (t.ios_app_id, t.android_app_id):
                if app_id:
                    app = session.scalar(select(App).where(App.app_id == app_id))
                    if app is not None:
                        stores[app_id] = app.store_url or default_store_url(
                            app.app_id, app.platform
                        )
            routing = TemplateRouting(
                template_id=t.template_id,
                ios_app_id=t.ios_app_id,
                android_app_id=t.android_app_id,
                ios_store_url=stores.get(t.ios_app_id or ""),
                android_store_url=stores.get(t.android_app_id or ""),
                uri_scheme=t.uri_scheme,
                universal_links=t.universal_links,
                app_links=t.app_links,
                web_fallback_url=t.web_fallback_url,
                redirect_allowlist=tuple(t.redirect_allowlist or ()),
            )
            return CachedTemplate(
                template_id=t.template_id,
                domain_host=host_of(t.domain),
                routing=routing,
                ios_app_id=t.ios_app_id,
                android_app_id=t.android_app_id,
                not_found_url=t.not_found_url or t.web_fallback_url,
            )

    def _load_link(self, template_id: str, shortlink_id: str) -> CachedLink | None:
        return self._load(Link.template_id == template_id, Link.shortlink_id == shortlink_id)

    def _load_by_ref(self, ref: str) -> CachedLink | None:
        link_id = link_id_of_ref(ref)
        return None if link_id is None else self._load(Link.id == link_id)

    def _load(self, *where: ColumnElement[bool]) -> CachedLink | None:
        with self.db.sessions() as session:
            link = session.scalar(select(Link).where(*where))
            if link is None:
                return None
            return CachedLink(
                id=link.id,
                template_id=link.template_id,
                shortlink_id=link.shortlink_id,
                media_source=link.media_source,
                campaign=link.campaign,
                channel=link.channel,
                params=link_params(link),
                ttl_seconds=link.ttl_seconds,
                renew_ttl=link.renew_ttl,
                expires_at=link.expires_at,
            )

    # -- epoch polling -----------------------------------------------------------------------

    def check_epoch(self) -> bool:
        """Clear the cache when another process edited templates or links; True if cleared."""
        with self.db.sessions() as session:
            epoch = read_epoch(session)
        if self._epoch is not None and epoch != self._epoch:
            self._epoch = epoch
            self.clear()
            return True
        self._epoch = epoch
        return False

    def start(self) -> None:
        """Start the epoch poller thread (idempotent)."""
        if self._poller is not None:
            return
        self._stop.clear()
        self._poller = Thread(target=self._poll, name="linkgen-routes", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        """Stop the poller."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
            self._poller = None

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.check_epoch()
            except Exception:  # a poll failure must not kill the poller
                log.warning("route cache epoch poll failed", exc_info=True)
                self.clear()  # without a fresh epoch, do not trust the cache
