"""Links out: the CSV export in chunks and the QR codes of a campaign."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import (
    select,
)
from sqlalchemy.orm import Session

from linkgen.domain.bulk import links_to_csv
from linkgen.domain.errors import InvalidParameter, NotFound
from linkgen.services.link_queries import LINK_ID_RE, LinkFilter, get_link, iter_links
from linkgen.services.link_templates import TemplateLookup
from linkgen.services.link_views import SchemeFor, canonical_params, link_to_dict, qr_url
from linkgen.services.links import INSERT_CHUNK, MAX_QR_LINKS
from linkgen.storage.models import Link

# --------------------------------------------------------------------------- export, QR


def export_csv_chunks(
    session: Session, filters: LinkFilter, *, scheme_for: SchemeFor
) -> Iterator[str]:
    """The CSV export (links_to_csv's format) in pieces, so large exports stream.

    A first pass collects the param names (the header needs them all), then the rows are
    written chunk by chunk with the same columns.
    """
    names: set[str] = set()
    only_params = filters.apply(select(Link.params)).execution_options(yield_per=2_000)
    for params in session.scalars(only_params):
        names.update(params or ())
    # links_to_csv names columns in first-seen order: a leading row holding every name fixes
    # the columns for each chunk; that row (all empty cells) and repeated headers are cut.
    column_row = {"params": dict.fromkeys(canonical_params(dict.fromkeys(names, "")))}
    templates = TemplateLookup(session, scheme_for)
    first = True
    for query_rows in iter_links(session, filters):
        templates.preload(link.template_id for link in query_rows)
        dicts = [link_to_dict(link, templates.require(link.template_id)) for link in query_rows]
        text = links_to_csv([column_row, *dicts])
        header, _, rest = text.partition("\r\n")
        _, _, body = rest.partition("\r\n")
        yield (header + "\r\n" + body) if first else body
        first = False
    if first:
        yield links_to_csv([])


def qr_targets(
    session: Session,
    *,
    ids: Sequence[str] | None,
    campaign: str | None,
    scheme_for: SchemeFor,
) -> list[tuple[str, str]]:
    """(file name, QR data) for the given link ids or a campaign's links.

    File names are the shortlink id (else the link id). Unknown ids are a 400 naming
    `ids[i]`; a campaign without links is a 404.
    """
    templates = TemplateLookup(session, scheme_for)
    if ids is not None:
        valid = [i for i in ids if LINK_ID_RE.match(i)]
        found: dict[str, Link] = {}
        for start in range(0, len(valid), INSERT_CHUNK):
            for link in session.scalars(
                select(Link).where(Link.id.in_(valid[start : start + INSERT_CHUNK]))
            ):
                found[link.id] = link
        for pos, link_id in enumerate(ids):
            if link_id not in found:
                raise InvalidParameter(f"no link {link_id!r}", field=f"ids[{pos}]")
        links = [found[i] for i in ids]
    else:
        links = []
        for chunk in iter_links(session, LinkFilter(campaign=campaign)):
            links.extend(chunk)
            if len(links) > MAX_QR_LINKS:
                raise InvalidParameter(
                    f"campaign has more than {MAX_QR_LINKS} links; ask by ids", field="campaign"
                )
        if not links:
            raise NotFound(f"no links in campaign {campaign!r}", field="campaign")
    templates.preload(link.template_id for link in links)
    return [
        (link.shortlink_id or link.id, qr_url(link, templates.require(link.template_id)))
        for link in links
    ]


def link_qr_data(session: Session, link_id: str, *, scheme_for: SchemeFor) -> str:
    """The data one link's QR code encodes."""
    link = get_link(session, link_id)
    return qr_url(link, TemplateLookup(session, scheme_for).require(link.template_id))
