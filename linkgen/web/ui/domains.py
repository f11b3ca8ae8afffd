"""The branded domains page: add a domain, see the DNS record to create and whether it reaches
this server, remove one no template uses (the same service as /api/v1/domains)."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from linkgen.domain.errors import LinkgenError
from linkgen.runtime import get_runtime
from linkgen.services import domains as service
from linkgen.web.ui import bp, current_actor


def _page(errors: dict[str, str], form: dict[str, str], notice: str | None = None) -> str:
    rt = get_runtime()
    points_to = request.host.partition(":")[0]
    with rt.db.session() as db:
        rows, _ = service.list_domains(db, after=None, limit=500)
        domains = [service.domain_to_dict(r, points_to=points_to) for r in rows]
    return render_template(
        "settings/domains.html",
        domains=domains,
        bootstrap=rt.settings.link_domains,
        errors=errors,
        form=form,
        notice=notice,
    )


@bp.get("/domains")
def domains_list() -> str:
    notices = {"added": "Domain added.", "deleted": "Domain removed."}
    notice = notices.get(request.args.get("ok", ""))
    return _page({}, {}, notice)


@bp.post("/domains")
def domains_add() -> Response | tuple[str, int]:
    rt = get_runtime()
    try:
        with rt.db.session() as db:
            service.add_domain(
                db,
                {"domain": request.form.get("domain", "")},
                link_domains=rt.settings.link_domains,
                actor=current_actor(),
            )
    except LinkgenError as exc:
        return _page({exc.field or "form": exc.message}, dict(request.form.items())), exc.status
    return redirect(url_for("ui.domains_list", ok="added"))


@bp.post("/domains/<domain>/delete")
def domains_delete(domain: str) -> Response | tuple[str, int]:
    try:
        with get_runtime().db.session() as db:
            service.delete_domain(db, domain)
    except LinkgenError as exc:
        return _page({"form": exc.message}, {}), exc.status
    return redirect(url_for("ui.domains_list", ok="deleted"))
