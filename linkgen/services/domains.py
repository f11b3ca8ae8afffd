"""Branded domains: link domains added and removed at run time, beside LINKGEN_LINK_DOMAINS.

They live in `branded_domains` and are read in the transaction that needs them (a template's
domain check, the TLS `ask` answer), with no per-process copy to go stale: a domain added or
deleted through any process is in force for every process from its commit on. The click path
needs no list at all: it serves a template on its own domain only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from linkgen.domain.domains import normalize_link_domain
from linkgen.domain.errors import Conflict, InvalidParameter, NotFound
from linkgen.domain.validate import get_str, refuse_unknown
from linkgen.services.catalog import iso, page_by_id
from linkgen.storage.models import BrandedDomain, Template
from linkgen.storage.types import utcnow


def parse_domain_body(body: Mapping[str, Any]) -> str:
    """The `domain` of a POST body, normalised; a 400 naming the field otherwise."""
    refuse_unknown(body, frozenset({"domain"}))
    raw = get_str(body, "domain", required=True, max_length=255)
    assert raw is not None
    domain = normalize_link_domain(raw)
    if domain is None:
        raise InvalidParameter(
            "domain must be a host name such as go.example.com (host[:port])", field="domain"
        )
    return domain


def allowed_domains(session: Session, link_domains: Sequence[str]) -> list[str]:
    """Every domain a template may use: the settings' list, then the branded ones."""
    branded = session.scalars(select(BrandedDomain.domain).order_by(BrandedDomain.id))
    return [*link_domains, *(d for d in branded if d not in link_domains)]


def is_link_domain(session: Session, domain: str, link_domains: Sequence[str]) -> bool:
    """True when `domain` (any case) is a configured or branded link domain."""
    wanted = normalize_link_domain(domain)
    if wanted is None:
        return False
    if wanted in link_domains:
        return True
    row = session.scalar(select(BrandedDomain.id).where(BrandedDomain.domain == wanted))
    return row is not None


def mark_seen(session: Session, domain: str) -> None:
    """Remember that a TLS handshake for `domain` reached this server (DNS points here)."""
    session.execute(
        update(BrandedDomain).where(BrandedDomain.domain == domain).values(seen_at=utcnow())
    )


def add_domain(
    session: Session, body: Mapping[str, Any], *, link_domains: Sequence[str], actor: str
) -> BrandedDomain:
    """POST /domains: add a branded domain (409 when it is already a link domain)."""
    domain = parse_domain_body(body)
    if domain in link_domains:
        raise Conflict(f"{domain} is already a link domain (LINKGEN_LINK_DOMAINS)", field="domain")
    exists = session.scalar(select(BrandedDomain.id).where(BrandedDomain.domain == domain))
    if exists is not None:
        raise Conflict(f"{domain} was already added", field="domain")
    row = BrandedDomain(domain=domain, created_by=actor[:200])
    session.add(row)
    session.flush()
    return row


def get_domain(session: Session, domain: str) -> BrandedDomain:
    """One branded domain, or 404."""
    wanted = normalize_link_domain(domain) or domain
    row = session.scalar(select(BrandedDomain).where(BrandedDomain.domain == wanted))
    if row is None:
        raise NotFound(f"no branded domain {domain!r}", field="domain")
    return row


def delete_domain(session: Session, domain: str) -> None:
    """DELETE /domains/{domain}: refused (409) while templates use it, so no link breaks."""
    row = get_domain(session, domain)
    used = list(
        session.scalars(
            select(Template.template_id).where(func.lower(Template.domain) == row.domain).limit(5)
        )
    )
    if used:
        raise Conflict(
            f"{row.domain} is the domain of template(s) {', '.join(used)}: move them first",
            field="domain",
        )
    session.delete(row)


def list_domains(
    session: Session, *, after: int | None, limit: int
) -> tuple[list[BrandedDomain], int | None]:
    """A page of branded domains in the order they were added."""
    return page_by_id(session, BrandedDomain, after=after, limit=limit)


def domain_to_dict(row: BrandedDomain, *, points_to: str | None) -> dict[str, Any]:
    """The API shape: the DNS record to create and whether traffic for it has reached us."""
    host = row.domain.partition(":")[0]
    return {
        "domain": row.domain,
        # `active` once the TLS `ask` endpoint was asked about it: DNS reaches this server.
        "status": "active" if row.seen_at is not None else "pending_dns",
        "dns": {
            "type": "CNAME",
            "name": host,
            "value": points_to,
            "note": "point the name at the host that serves linkgen (an A/AAAA record works too)",
        },
        "created_at": iso(row.created_at),
        "seen_at": iso(row.seen_at),
    }
