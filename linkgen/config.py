"""Settings from the environment: one frozen object, parsed once, refusing bad values at start."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from linkgen.domain.domains import normalize_link_domain
from linkgen.domain.privacy import (
    ADDRESS_STORAGE,
    FULL,
    USER_AGENT_STORAGE,
    StoragePolicy,
)
from linkgen.domain.validate import is_digits

REPO_ROOT = Path(__file__).resolve().parent.parent
# A source checkout keeps its data in <repo>/instance; an installed package (a wheel) in
# ./instance of the directory it was started from, unless LINKGEN_INSTANCE_PATH says otherwise.
DEFAULT_INSTANCE = (
    REPO_ROOT / "instance"
    if (REPO_ROOT / "pyproject.toml").is_file()
    else Path("instance").resolve()
)

# Every variable linkgen reads; any other LINKGEN_* name (LINKGEN_TEST_* aside: the test
# suite's own) is refused as a likely typo.
KNOWN_VARIABLES = frozenset(
    {
        "LINKGEN_DATABASE_URL",
        "LINKGEN_SECRET_KEY",
        "LINKGEN_INITIAL_API_KEY",
        "LINKGEN_LINK_DOMAINS",
        "LINKGEN_CLEVERTAP_API_BASE",
        "LINKGEN_PUBLIC_SCHEME",
        "LINKGEN_HOST",
        "LINKGEN_PORT",
        "LINKGEN_INSTANCE_PATH",
        "LINKGEN_WORKER",
        "LINKGEN_LOG_LEVEL",
        "LINKGEN_LOG_FORMAT",
        "LINKGEN_BODY_TIMEOUT_SECONDS",
        "LINKGEN_HEADER_TIMEOUT_SECONDS",
        "LINKGEN_CLIENT_ADDRESS_STORAGE",
        "LINKGEN_USER_AGENT_STORAGE",
        "LINKGEN_RETENTION_DAYS",
        "LINKGEN_TRUSTED_PROXIES",
        "LINKGEN_METRICS_TOKEN",
    }
)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


@dataclass(frozen=True)
class Settings:
    """Everything linkgen is configured with."""

    database_url: str
    secret_key: str
    link_domains: tuple[str, ...] = ("localhost:8000", "127.0.0.1:8000")
    initial_api_key: str | None = None
    clevertap_api_base: str | None = None
    public_scheme: str | None = None  # None: https, but http for localhost / 127.0.0.1
    host: str = "127.0.0.1"
    port: int = 8000
    instance_path: Path = DEFAULT_INSTANCE
    run_worker: bool = True
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one object per line (linkgen/logs.py)
    # `linkgen serve`: how long a client may take to send its request headers, and then its
    # body, before the connection is dropped (headers) or answered 408 (body); docs/security.md
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 10.0
    privacy: StoragePolicy = FULL  # what stored clicks and launches keep (domain/privacy.py)
    retention_days: int | None = None  # the worker deletes raw clicks / launches past this
    # Reverse proxies whose X-Forwarded-* / Forwarded headers are believed (linkgen/web/proxy.py).
    trusted_proxies: tuple[Network, ...] = ()
    metrics_token: str | None = field(default=None, repr=False)  # a secret: never printed
    testing: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from the environment, refusing unknown or malformed values."""
        env = os.environ if env is None else env
        for name in env:
            if (
                name.startswith("LINKGEN_")
                and not name.startswith("LINKGEN_TEST_")
                and name not in KNOWN_VARIABLES
            ):
                raise SettingsError(name, "unknown setting (see README, Configuration)")
        instance = Path(env.get("LINKGEN_INSTANCE_PATH") or DEFAULT_INSTANCE)
        database_url = parse_database_url(
            env.get("LINKGEN_DATABASE_URL") or f"sqlite:///{instance / 'linkgen.db'}"
        )
        port = parse_port(env.get("LINKGEN_PORT", "8000"))
        return cls(
            database_url=database_url,
            secret_key=env.get("LINKGEN_SECRET_KEY") or "",
            # Unset, the link domains are where linkgen itself listens, so links work locally.
            link_domains=parse_link_domains(
                env.get("LINKGEN_LINK_DOMAINS") or f"localhost:{port},127.0.0.1:{port}"
            ),
            initial_api_key=parse_initial_api_key(env.get("LINKGEN_INITIAL_API_KEY")),
            clevertap_api_base=parse_api_base(env.get("LINKGEN_CLEVERTAP_API_BASE")),
            public_scheme=parse_scheme(env.get("LINKGEN_PUBLIC_SCHEME")),
            host=env.get("LINKGEN_HOST") or "127.0.0.1",
            port=port,
            instance_path=instance,
            run_worker=parse_bool("LINKGEN_WORKER", env.get("LINKGEN_WORKER", "true")),
            log_level=parse_log_level(env.get("LINKGEN_LOG_LEVEL", "INFO")),
            log_format=parse_log_format(env.get("LINKGEN_LOG_FORMAT", "text")),
            header_timeout_seconds=parse_seconds(
                "LINKGEN_HEADER_TIMEOUT_SECONDS", env.get("LINKGEN_HEADER_TIMEOUT_SECONDS", "10")
            ),
            body_timeout_seconds=parse_seconds(
                "LINKGEN_BODY_TIMEOUT_SECONDS", env.get("LINKGEN_BODY_TIMEOUT_SECONDS", "10")
            ),
            privacy=parse_privacy(
                env.get("LINKGEN_CLIENT_ADDRESS_STORAGE") or "full",
                env.get("LINKGEN_USER_AGENT_STORAGE") or "full",
            ),
            retention_days=parse_retention_days(env.get("LINKGEN_RETENTION_DAYS")),
            trusted_proxies=parse_trusted_proxies(env.get("LINKGEN_TRUSTED_PROXIES", "")),
            metrics_token=parse_metrics_token(env.get("LINKGEN_METRICS_TOKEN")),
        )

    def with_secret(self) -> Settings:
        """Return settings whose secret key is set, generating one into instance/ if needed."""
        if self.secret_key:
            return self
        return replace(self, secret_key=load_or_create_secret(self.instance_path))

    def scheme_for(self, domain: str) -> str:
        """The scheme printed in generated links for a link domain."""
        if self.public_scheme:
            return self.public_scheme
        host = domain.rsplit(":", 1)[0] if not domain.startswith("[") else domain
        return "http" if host in ("localhost", "127.0.0.1", "[::1]") else "https"


def parse_database_url(value: str) -> str:
    """Accept SQLite and PostgreSQL SQLAlchemy URLs."""
    if value.startswith("postgresql://"):
        value = "postgresql+psycopg://" + value[len("postgresql://") :]
    if value.startswith("postgres://"):
        value = "postgresql+psycopg://" + value[len("postgres://") :]
    if not (value.startswith("sqlite:") or value.startswith("postgresql+psycopg://")):
        raise SettingsError(
            "LINKGEN_DATABASE_URL",
            "must be a sqlite:/// or postgresql+psycopg:// URL",
        )
    return value


def parse_link_domains(value: str) -> tuple[str, ...]:
    """Comma-separated host[:port] list, lower-cased."""
    domains: list[str] = []
    for raw in value.split(","):
        if not raw.strip():
            continue
        item = normalize_link_domain(raw)
        if item is None:
            raise SettingsError("LINKGEN_LINK_DOMAINS", f"{raw.strip()!r} is not a host[:port]")
        domains.append(item)
    if not domains:
        raise SettingsError("LINKGEN_LINK_DOMAINS", "at least one domain is needed")
    return tuple(domains)


def parse_initial_api_key(value: str | None) -> str | None:
    """An initial admin API key must be long enough to be a secret."""
    if not value:
        return None
    if len(value) < 16 or any(c.isspace() for c in value):
        raise SettingsError(
            "LINKGEN_INITIAL_API_KEY", "must be at least 16 characters, without spaces"
        )
    return value


def parse_api_base(value: str | None) -> str | None:
    """Override of the CleverTap host, e.g. http://127.0.0.1:9000/{region}."""
    if not value:
        return None
    if not value.startswith(("http://", "https://")):
        raise SettingsError("LINKGEN_CLEVERTAP_API_BASE", "must start with http:// or https://")
    return value.rstrip("/")


def parse_scheme(value: str | None) -> str | None:
    """http or https (or unset)."""
    if not value:
        return None
    if value not in ("http", "https"):
        raise SettingsError("LINKGEN_PUBLIC_SCHEME", "must be http or https")
    return value


def parse_port(value: str) -> int:
    """A TCP port number."""
    if not is_digits(value) or not 1 <= int(value) <= 65535:
        raise SettingsError("LINKGEN_PORT", f"{value!r} is not a port number (1-65535)")
    return int(value)


def parse_bool(name: str, value: str) -> bool:
    """true/false, 1/0, yes/no, on/off."""
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(name, f"{value!r} is not a boolean (true/false)")


def parse_log_level(value: str) -> str:
    """A logging level name."""
    upper = value.strip().upper()
    if upper not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError("LINKGEN_LOG_LEVEL", "must be DEBUG, INFO, WARNING or ERROR")
    return upper


def parse_log_format(value: str) -> str:
    """text (human lines) or json (one object per line, for log collectors)."""
    lowered = value.strip().lower()
    if lowered not in ("text", "json"):
        raise SettingsError("LINKGEN_LOG_FORMAT", "must be text or json")
    return lowered


def parse_seconds(name: str, value: str) -> float:
    """A duration in seconds: a number from 0.1 to 3600."""
    try:
        seconds = float(value.strip())
    except ValueError:
        seconds = -1.0
    if not 0.1 <= seconds <= 3600:  # also refuses nan and inf
        raise SettingsError(name, f"{value!r} is not a number of seconds (0.1 to 3600)")
    return seconds


def parse_privacy(address: str, user_agent: str) -> StoragePolicy:
    """LINKGEN_CLIENT_ADDRESS_STORAGE and LINKGEN_USER_AGENT_STORAGE."""
    a, u = address.strip().lower(), user_agent.strip().lower()
    if a not in ADDRESS_STORAGE:
        raise SettingsError(
            "LINKGEN_CLIENT_ADDRESS_STORAGE",
            "must be " + ", ".join(ADDRESS_STORAGE[:-1]) + " or none",
        )
    if u not in USER_AGENT_STORAGE:
        raise SettingsError("LINKGEN_USER_AGENT_STORAGE", "must be full or parsed")
    return StoragePolicy(address=a, user_agent=u)


def parse_retention_days(value: str | None) -> int | None:
    """Days of raw clicks and launches to keep: 31 (the longest lookback + 1) to 3650."""
    if not value:
        return None
    if not is_digits(value.strip()) or not 31 <= int(value) <= 3650:
        raise SettingsError("LINKGEN_RETENTION_DAYS", "must be a number of days from 31 to 3650")
    return int(value)


def parse_trusted_proxies(value: str) -> tuple[Network, ...]:
    """Comma-separated IPv4 / IPv6 addresses and CIDRs (`10.0.0.0/8`, `::1`); empty: none."""
    networks: list[Network] = []
    for raw in value.split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise SettingsError(
                "LINKGEN_TRUSTED_PROXIES", f"{item!r} is not an IP address or CIDR"
            ) from None
    return tuple(networks)


def parse_metrics_token(value: str | None) -> str | None:
    """The bearer token /metrics asks for: long enough to be a secret, no spaces."""
    if not value:
        return None
    if len(value) < 16 or any(c.isspace() or not c.isprintable() for c in value):
        raise SettingsError(
            "LINKGEN_METRICS_TOKEN", "must be at least 16 characters, without spaces"
        )
    return value


def load_or_create_secret(instance: Path) -> str:
    """Read instance/secret_key, creating it (mode 600) on first run."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key
