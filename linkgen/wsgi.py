"""WSGI entry for production servers (granian, gunicorn): the same app as app.py."""

from linkgen.clicks.detect import warm_up
from linkgen.factory import create_app

app = create_app()
warm_up()  # build the user-agent matchers now, not on the first click
