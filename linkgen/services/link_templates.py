"""The templates links are made on, looked up for link writes and kept for a second per engine."""

from __future__ import annotations

import itertools
import re
import time
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    event,
    select,
)
from sqlalchemy.orm import Session

from linkgen.domain.errors import InvalidParameter, NotFound
from linkgen.domain.links import (
    TemplateInfo,
)
from linkgen.services.link_views import SchemeFor
from linkgen.storage.models import Template

# Ids are letters and digits: anything else (an over-long value, a NUL byte that PostgreSQL
# refuses outright) is certainly unknown and never reaches a query.
_TEMPLATE_ID_RE = re.compile(r"\A[A-Za-z0-9]{1,16}\Z")


# --------------------------------------------------------------------------- templates


_TEMPLATE_COLUMNS = (Template.template_id, Template.domain, Template.redirect_allowlist)
_TEMPLATE_BY_ID = select(*_TEMPLATE_COLUMNS).where(Template.template_id == bindparam("tid"))
_TEMPLATES_BY_IDS = select(*_TEMPLATE_COLUMNS).where(
    Template.template_id.in_(bindparam("tids", expanding=True))
)


# Template rows (domain, allow-list) are kept per database engine for a second, so creating
# links in a burst does not query the template each time. An edit made through the ORM in this
# process (the API, the UI) empties the cache at once; an edit made by another process is seen
# within TEMPLATE_CACHE_SECONDS.
TEMPLATE_CACHE_SECONDS = 1.0
_TemplateRow = tuple[float, int, str, tuple[str, ...]]  # expires, generation, domain, allow-list
_template_rows: weakref.WeakKeyDictionary[Any, dict[str, _TemplateRow]] = (
    weakref.WeakKeyDictionary()
)
_template_generation = itertools.count(1)
_current_generation = 0


def _templates_changed(*_args: Any) -> None:
    global _current_generation
    _current_generation = next(_template_generation)


for _event in ("after_insert", "after_update", "after_delete"):
    event.listen(Template, _event, _templates_changed)


class TemplateLookup:
    """Templates by id for one transaction, loaded at most once each.

    Reads through an ORM session, a Core connection, or (outside any transaction) an engine,
    which lends a connection only when a template is not in the shared cache.
    """

    def __init__(self, session: Session | Connection | Engine, scheme_for: SchemeFor) -> None:
        self.session = session
        self.scheme_for = scheme_for
        self._cache: dict[str, TemplateInfo | None] = {}

    def _engine(self) -> Engine:
        source = self.session
        if isinstance(source, Session):
            bind = source.get_bind()
            return bind if isinstance(bind, Engine) else bind.engine
        return source if isinstance(source, Engine) else source.engine

    def _query(self, missing: list[str]) -> list[tuple[str, str, Any]]:
        # Prebuilt statements: building a select per call costs more than running it.
        stmt: Any = _TEMPLATE_BY_ID
        params: dict[str, Any] = {"tid": missing[0]}
        if len(missing) > 1:
            stmt, params = _TEMPLATES_BY_IDS, {"tids": sorted(missing)}
        source = self.session
        if isinstance(source, Engine):
            with source.connect() as conn:
                return [tuple(row) for row in conn.execute(stmt, params)]
        conn = source.connection() if isinstance(source, Session) else source
        return [tuple(row) for row in conn.execute(stmt, params)]

    def _remember(self, t_id: str, domain: str, allowlist: tuple[str, ...]) -> None:
        self._cache[t_id] = TemplateInfo(
            template_id=t_id,
            domain=domain,
            scheme=self.scheme_for(domain),
            redirect_allowlist=allowlist,
        )

    def preload(self, template_ids: Iterable[str]) -> None:
        """Load many templates with (at most) one query."""
        wanted = {t for t in template_ids if t not in self._cache and _TEMPLATE_ID_RE.match(t)}
        if not wanted:
            return
        shared = _template_rows.setdefault(self._engine(), {})
        now, generation = time.monotonic(), _current_generation
        missing: list[str] = []
        for t_id in wanted:
            hit = shared.get(t_id)
            if hit is not None and hit[0] > now and hit[1] == generation:
                self._remember(t_id, hit[2], hit[3])
            else:
                missing.append(t_id)
        if not missing:
            return
        found = self._query(missing)
        if len(shared) > 10_000:
            shared.clear()
        for t_id, domain, raw_allowlist in found:
            allowlist = tuple(raw_allowlist or ())
            shared[t_id] = (now + TEMPLATE_CACHE_SECONDS, generation, domain, allowlist)
            self._remember(t_id, domain, allowlist)
        for t_id in missing:
            self._cache.setdefault(t_id, None)

    def get(self, template_id: str) -> TemplateInfo | None:
        """A template, or None when there is none with this id."""
        if template_id not in self._cache:
            self.preload([template_id])
        return self._cache.get(template_id)

    def require(self, template_id: str) -> TemplateInfo:
        """A template the stored data refers to (404 if it vanished)."""
        info = self.get(template_id)
        if info is None:
            raise NotFound(f"no template {template_id!r}", field="template_id")
        return info


def body_template(body: Mapping[str, Any], templates: TemplateLookup) -> TemplateInfo:
    raw = body.get("template_id")
    if raw is None or raw == "":
        raise InvalidParameter("template_id is required", field="template_id")
    if not isinstance(raw, str):
        raise InvalidParameter("template_id must be a string", field="template_id")
    info = templates.get(raw)
    if info is None:
        raise InvalidParameter(f"no template {raw!r}", field="template_id")
    return info
