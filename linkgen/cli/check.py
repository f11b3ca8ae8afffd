"""`linkgen check`: a preflight of settings, database, schema, link domains and CleverTap.

Each check answers one line, `ok`, `warn` or `FAIL`, and a FAIL says what to fix; the command
exits 1 when anything failed. It reads only (no migration, no write), so it can run beside a
live server, e.g. after an upgrade or from a deployment script before traffic is let in.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from linkgen.config import Settings
from linkgen.runtime import Runtime, get_runtime

Level = Literal["ok", "warn", "FAIL"]
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True)
class Finding:
    """One check's answer."""

    level: Level
    subject: str
    message: str

    def line(self) -> str:
        """As printed."""
        return f"{self.level:<4} {self.subject}: {self.message}"


def check_settings(settings: Settings) -> Iterator[Finding]:
    """What the environment leaves to chance in production."""
    yield Finding("ok", "settings", "read from the environment")
    if not settings.database_url.startswith("sqlite"):
        return
    # On one host the generated instance/secret_key is fine; it must then be kept with backups.
    secret = settings.instance_path / "secret_key"
    if secret.exists() and secret.read_text().strip() == settings.secret_key:
        yield Finding(
            "ok",
            "secret key",
            f"generated into {secret}; keep it with the backups (sessions and signing use it)",
        )


def check_database(rt: Runtime) -> Iterator[Finding]:
    """Reachable, and migrated to the newest revision this linkgen has."""
    # Imported here, not with the module: every web process registers the CLI, and alembic is
    # about 10 MB of a process that never migrates (benchmarks/memory.py's 150 MB target).
    from alembic.runtime.migration import MigrationContext

    from linkgen.services.backup import known_revisions

    if not rt.db.ping():
        yield Finding(
            "FAIL",
            "database",
            "does not answer: check LINKGEN_DATABASE_URL and that the server is running",
        )
        return
    yield Finding("ok", "database", f"reachable ({rt.db.dialect})")
    alembic_log = logging.getLogger("alembic")
    level = alembic_log.level
    alembic_log.setLevel(logging.WARNING)  # its "Context impl ..." lines are noise here
    try:
        with rt.db.engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    finally:
        alembic_log.setLevel(level)
    known, heads = known_revisions(rt.settings.database_url)
    if current == heads:
        yield Finding("ok", "migrations", f"at head ({', '.join(sorted(heads))})")
    elif current - known:
        yield Finding(
            "FAIL",
            "migrations",
            f"the database is at {', '.join(sorted(current))}, which this linkgen does not "
            "know: a newer linkgen migrated it; run that version",
        )
    else:
        at = ", ".join(sorted(current)) or "no revision (empty database)"
        yield Finding(
            "FAIL",
            "migrations",
            f"at {at}, head is {', '.join(sorted(heads))}: run linkgen db upgrade",
        )


def check_link_domains(rt: Runtime) -> Iterator[Finding]:
    """Every template's domain is a configured link domain; public ones get https links."""
    from linkgen.storage.models import Template

    settings = rt.settings
    allowed = set(settings.link_domains)
    for domain in settings.link_domains:
        host = domain.rsplit(":", 1)[0]
        scheme = settings.scheme_for(domain)
        if scheme == "http" and host not in LOCAL_HOSTS:
            yield Finding(
                "warn",
                f"link domain {domain}",
                "links are printed as http://: Universal Links and App Links need https "
                "(unset LINKGEN_PUBLIC_SCHEME behind a TLS proxy)",
            )
        else:
            yield Finding("ok", f"link domain {domain}", f"links are printed as {scheme}://")
    from linkgen.services.domains import allowed_domains

    try:
        with rt.db.sessions() as session:
            used = sorted(set(session.scalars(select(Template.domain))))
            allowed = set(allowed_domains(session, settings.link_domains))
    except Exception:  # noqa: BLE001 - the database check above says why
        return
    for domain in used:
        if domain.lower() not in allowed:
            yield Finding(
                "FAIL",
                f"template domain {domain}",
                "is used by a template but is neither in LINKGEN_LINK_DOMAINS nor a branded "
                "domain: add it (POST /api/v1/domains)",
            )


def check_clevertap(rt: Runtime, *, network: bool) -> Iterator[Finding]:
    """Each active integration has credentials, and (with the network) CleverTap takes them."""
    from linkgen.delivery.clevertap_client import check_integration
    from linkgen.services.integrations import stored_settings
    from linkgen.storage.models import App

    try:
        with rt.db.sessions() as session:
            app_ids = list(session.scalars(select(App.app_id).order_by(App.app_id)))
            settings = {app_id: stored_settings(session, app_id) for app_id in app_ids}
    except Exception:  # noqa: BLE001 - the database check above says why
        return
    for app_id, integration in settings.items():
        subject = f"CleverTap for {app_id}"
        if integration is None or not integration.active:
            yield Finding("ok", subject, "not active (no postbacks are sent)")
            continue
        if not network:
            if integration.account_id and integration.account_passcode:
                yield Finding("ok", subject, "credentials set (not checked: --no-network)")
            else:
                yield Finding(
                    "FAIL",
                    subject,
                    "active without an account ID and passcode: set both in the integration",
                )
            continue
        ok, status, message = check_integration(
            integration, api_base=rt.settings.clevertap_api_base
        )
        if ok:
            yield Finding("ok", subject, message)
        else:
            where = f" (HTTP {status})" if status is not None else ""
            yield Finding(
                "FAIL",
                subject,
                f"{message}{where} Fix the account ID, passcode or region of the integration.",
            )


@click.command("check")
@click.option("--no-network", is_flag=True, help="Do not call CleverTap to test credentials.")
@with_appcontext
def check_cmd(no_network: bool) -> None:
    """Check settings, database, migrations, link domains and CleverTap credentials."""
    rt = get_runtime()
    findings = [
        *check_settings(rt.settings),
        *check_database(rt),
        *check_link_domains(rt),
        *check_clevertap(rt, network=not no_network),
    ]
    for finding in findings:
        click.echo(finding.line())
    failed = sum(f.level == "FAIL" for f in findings)
    if failed:
        click.echo(f"{failed} problem(s) to fix", err=True)
        sys.exit(1)
    click.echo("all checks passed")
