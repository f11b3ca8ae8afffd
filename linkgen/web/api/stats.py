"""Reports: GET /api/v1/stats?group_by=link|campaign|channel|media_source&from=&to=, and
GET /api/v1/stats/breakdowns?by=platform|os|country|referrer&from=&to=&campaign= (or
channel= or media_source=): the clicks rolled up by the worker (services/rollups.py).

Sums the `stat_counters` rows (kept as clicks, launches and events arrive) over the days from
`from` to `to` (both optional, inclusive, YYYY-MM-DD in UTC), one item per value of the grouping
column; an empty key (a click on a long link has no link id, an organic install no campaign) is
reported as null. `group_by` defaults to `link`. Every group is returned (the number of groups is
the number of links or campaigns, not of events), so `next` is always null. `revenue` is the sum
of `af_revenue` as reported, in whatever currencies the events named.
"""

from __future__ import annotations

from flask import Response, jsonify, request

from linkgen.domain.errors import InvalidParameter
from linkgen.runtime import get_runtime
from linkgen.services.rollups import DIMENSIONS, breakdowns
from linkgen.services.stats import parse_filter, parse_range, parse_report, summarise_counters
from linkgen.web.api import bp


@bp.get("/stats")
def get_stats() -> Response:
    group_by, day_from, day_to = parse_report(request.args)
    with get_runtime().db.session() as session:
        items = summarise_counters(session, group_by, day_from, day_to)
    return jsonify({"items": items, "next": None})


@bp.get("/stats/breakdowns")
def get_breakdowns() -> Response:
    by = request.args.get("by") or None
    if by is not None and by not in DIMENSIONS:
        raise InvalidParameter(f"by must be one of {', '.join(DIMENSIONS)}", field="by")
    day_from, day_to = parse_range(request.args)
    scope, value = parse_filter(request.args) or ("all", "")
    with get_runtime().db.session() as session:
        found = breakdowns(session, day_from, day_to, scope=scope, scope_value=value, top=None)
    items = [
        {
            "dimension": dimension,
            "value": row.value or None,
            "label": row.label,
            "human_clicks": row.human_clicks,
            "bot_clicks": row.bot_clicks,
            "clicks": row.clicks,
        }
        for dimension in DIMENSIONS
        if by in (None, dimension)
        for row in found[dimension]
    ]
    return jsonify({"items": items, "next": None})
