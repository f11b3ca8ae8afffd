"""Postback delivery to CleverTap: the HTTP client, the outbox and the worker."""
