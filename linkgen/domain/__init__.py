"""Pure domain rules: no Flask, SQLAlchemy or httpx imports here (a test enforces it)."""
