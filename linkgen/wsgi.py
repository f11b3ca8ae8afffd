"""Entries for production servers: `app` (WSGI: gunicorn, ...) and `front` (RSGI: `linkgen serve`).

Both are the same app as app.py; `front` reads each request's body on granian's event loop,
with a deadline, before a thread runs `app` (linkgen/web/front.py).
"""

import gc

from linkgen.clicks.detect import warm_up
from linkgen.factory import create_app
from linkgen.logs import configure_logging
from linkgen.runtime import close_on_exit, get_runtime
from linkgen.web.front import THREADS, RSGIFront, api_on_loop, clicks_on_loop

app = create_app()
_settings = get_runtime(app).settings
configure_logging(_settings)
close_on_exit(app)  # when the server stops this worker: commit queued clicks, close connections
warm_up()  # build the user-agent matchers now, not on the first click
# What is loaded by now (Flask, SQLAlchemy, the user-agent matchers: ~127,000 tracked objects)
# lives as long as the process. Out of the collector's sight, a full collection scans only what
# came later: one took 155 ms (wall clock, on a loaded box) in the middle of a click benchmark
# before this, and was the p99 of every click in flight.
gc.freeze()
front = RSGIFront(
    app,
    threads=THREADS,
    body_timeout=_settings.body_timeout_seconds,
    max_body=int(app.config["MAX_CONTENT_LENGTH"]),
    clicks=clicks_on_loop(app),
    api=api_on_loop(app),
)
