"""GET /_linkgen/tls-ask?domain=NAME: "is this one of my link domains?" for a TLS server.

Caddy's on-demand TLS asks this before it gets a certificate for a name a client asked for
(`on_demand_tls { ask http://127.0.0.1:8000/_linkgen/tls-ask }`): 200 for a link domain
(LINKGEN_LINK_DOMAINS or branded), 404 otherwise, so nobody can make the server request
certificates for names that are not ours. No authentication: the answer is public anyway (the
domain serves links). A branded domain asked about is marked as reaching this server.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from linkgen.runtime import get_runtime
from linkgen.services import domains as service

bp = Blueprint("tls", __name__)


@bp.get("/_linkgen/tls-ask")
def tls_ask() -> tuple[Response, int]:
    domain = request.args.get("domain", "")
    rt = get_runtime()
    with rt.db.session() as session:
        known = service.is_link_domain(session, domain, rt.settings.link_domains)
        if known:
            service.mark_seen(session, domain.strip().lower())
    return jsonify({"domain": domain, "allowed": known}), 200 if known else 404
