"""WSGI entry point (`flask --app app ...`)."""

from linkgen import create_app

app = create_app()
