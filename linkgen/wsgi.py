"""WSGI entry for production servers (granian, gunicorn): the same app as app.py."""

from linkgen.factory import create_app

app = create_app()
