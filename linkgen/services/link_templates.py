"""The templates links are made on, looked up for link writes (rows kept by the database for a
second: linkgen/storage/template_rows.py)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    select,
)
from sqlalchemy.orm import Session

from linkgen.domain.errors import InvalidParameter, NotFound
from linkgen.domain.links import (
    TemplateInfo,
)
from linkgen.services.link_views import SchemeFor
from linkgen.storage.models import Template
from linkgen.storage.template_rows import TemplateRows

# Ids are letters and digits: anything else (an over-long value, a NUL byte that PostgreSQL
# refuses outright) is certainly unknown and never reaches a query.
_TEMPLATE_ID_RE = re.compile(r"\A[A-Za-z0-9]{1,16}\Z")


# --------------------------------------------------------------------------- templates


_TEMPLATE_COLUMNS = (Template.template_id, Template.domain, Template.redirect_allowlist)
_TEMPLATE_BY_ID = select(*_TEMPLATE_COLUMNS).where(Template.template_id == bindparam("tid"))
_TEMPLATES_BY_IDS = select(*_TEMPLATE_COLUMNS).where(
    Template.template_id.in_(bindparam("tids", expanding=True))
)


class TemplateLookup:
    """Templates by id for one transaction, loaded at most once each.

    Reads through an ORM session, a Core connection, or (outside any transaction) an engine,
    which lends a connection only when a template is not in the shared rows. The shared rows
    are the database's (`Database.template_rows`): a session its database made carries them
    (`TemplateRows.of`); with an engine or a connection, pass them as `rows` (without, every
    template is read). A session that flushed a template edit reads past them until it
    commits (`TemplateRows.edited`).
    """

    def __init__(
        self,
        session: Session | Connection | Engine,
        scheme_for: SchemeFor,
        rows: TemplateRows | None = None,
    ) -> None:
        self.session = session
        self.scheme_for = scheme_for
        if rows is None and isinstance(session, Session):
            rows = TemplateRows.of(session)
        self.rows = rows
        self._cache: dict[str, TemplateInfo | None] = {}

    def _shared(self) -> TemplateRows | None:
        source = self.session
        if isinstance(source, Session) and TemplateRows.edited(source):
            return None  # its own uncommitted edit: neither served nor kept from the cache
        return self.rows

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
        shared = self._shared()
        now = time.monotonic()
        generation = shared.generation if shared is not None else 0  # before reading rows
        missing: list[str] = []
        if shared is None:
            missing.extend(wanted)
        else:
            for t_id in wanted:
                hit = shared.fresh(t_id, now)
                if hit is not None:
                    self._remember(t_id, hit[0], hit[1])
                else:
                    missing.append(t_id)
            if not missing:
                return
        found = [
            (t_id, domain, tuple(raw_allowlist or ()))
            for t_id, domain, raw_allowlist in self._query(missing)
        ]
        if shared is not None:
            shared.keep(generation, now, found)
        for t_id, domain, allowlist in found:
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
