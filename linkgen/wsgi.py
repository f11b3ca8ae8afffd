"""WSGI entry for production servers (granian, gunicorn): the same app as app.py."""

from linkgen.clicks.detect import warm_up
from linkgen.factory import create_app
from linkgen.logs import configure_logging
from linkgen.runtime import close_on_exit, get_runtime

app = create_app()
configure_logging(get_runtime(app).settings)
close_on_exit(app)  # when the server stops this worker: commit queued clicks, close connections
warm_up()  # build the user-agent matchers now, not on the first click
