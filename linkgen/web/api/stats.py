"""Reports: GET /api/v1/stats?group_by=link|campaign|channel|media_source&from=&to=.

Sums the `stat_counters` rows (kept as clicks, launches and events arrive) over the days from
`from` to `to` (both optional, inclusive, YYYY-MM-DD in UTC), one item per value of the grouping
column; an empty key (a click on a long link has no link id, an organic install no campaign) is
reported as null. `group_by` defaults to `link`. Every group is returned (the number of groups is
the number of links or campaigns, not of events), so `next` is always null. `revenue` is the sum
of `af_revenue` as reported, in whatever currencies the events named.
"""

from __future__ import annotations

from flask import Response, jsonify, request

from linkgen.runtime import get_runtime
from linkgen.services.stats import parse_report, summarise_counters
from linkgen.web.api import bp


@bp.get("/stats")
def get_stats() -> Response:
    group_by, day_from, day_to = parse_report(request.args)
    with get_runtime().db.session() as session:
        items = summarise_counters(session, group_by, day_from, day_to)
    return jsonify({"items": items, "next": None})
