"""Entries for production servers: `app` (WSGI: gunicorn, ...) and `front` (RSGI: `linkgen serve`).

Both are the same app as app.py; `front` reads each request's body on granian's event loop,
with a deadline, before a thread runs `app` (linkgen/web/front.py).
"""

from linkgen.clicks.detect import warm_up
from linkgen.factory import create_app
from linkgen.logs import configure_logging
from linkgen.runtime import close_on_exit, get_runtime
from linkgen.web.front import THREADS, RSGIFront, clicks_on_loop

app = create_app()
_settings = get_runtime(app).settings
configure_logging(_settings)
close_on_exit(app)  # when the server stops this worker: commit queued clicks, close connections
warm_up()  # build the user-agent matchers now, not on the first click
front = RSGIFront(
    app,
    threads=THREADS,
    body_timeout=_settings.body_timeout_seconds,
    max_body=int(app.config["MAX_CONTENT_LENGTH"]),
    clicks=clicks_on_loop(app),
)
