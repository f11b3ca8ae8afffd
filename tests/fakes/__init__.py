"""Real HTTP fakes of the services linkgen talks to (no network beyond 127.0.0.1)."""
