"""GET /api/v1/openapi.json and GET /api/v1/docs: the API's description and its page.

Both need no API key (their own blueprint, outside the `api` blueprint's Bearer check). The
document is built by `linkgen/web/openapi.py`, imported here on the first request for it, not
when the app is made: pydantic and the models are about 10 MB of each web process (VmRSS of
`import linkgen.wsgi`: 140.2 MB with them, 130.8 MB without), which the click path's memory
target (150 MB through a million clicks) cannot spare for a page that is rarely asked for.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, jsonify, render_template

bp = Blueprint("openapi", __name__)


@bp.get("/api/v1/openapi.json")
def openapi_document() -> Response:
    """Serve the document (no API key needed)."""
    from linkgen.web.openapi import build_document  # on first use: see the module's docstring

    resp = jsonify(build_document())
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


@bp.get("/api/v1/docs")
def reference_page() -> str:
    """The document as a page: operations, parameters, bodies and answers (no API key)."""
    from linkgen.web.apidocs import inline_code, reference
    from linkgen.web.openapi import build_document

    return render_template("api/docs.html", ref=reference(build_document()), text=inline_code)


def init_app(app: Flask) -> None:
    """Register the reference's blueprint."""
    app.register_blueprint(bp)
