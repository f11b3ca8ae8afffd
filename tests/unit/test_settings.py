"""Settings rules: defaults, parsing, refusals that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from linkgen.config import Settings, SettingsError


def test_defaults_use_embedded_sqlite_under_instance() -> None:
    s = Settings.from_env({})
    assert s.database_url.startswith("sqlite:///")
    assert s.database_url.endswith("instance/linkgen.db")
    assert s.link_domains == ("localhost:8000", "127.0.0.1:8000")
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.initial_api_key is None and s.clevertap_api_base is None
    assert (s.log_level, s.log_format) == ("INFO", "text")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LINKGEN_PORT": "9001"}, ("port", 9001)),
        ({"LINKGEN_HOST": "0.0.0.0"}, ("host", "0.0.0.0")),  # noqa: S104
        (
            {"LINKGEN_LINK_DOMAINS": "Go.Example.com, x.io:8443"},
            ("link_domains", ("go.example.com", "x.io:8443")),
        ),
        ({"LINKGEN_PUBLIC_SCHEME": "http"}, ("public_scheme", "http")),
        (
            {"LINKGEN_CLEVERTAP_API_BASE": "http://127.0.0.1:9000/{region}/"},
            ("clevertap_api_base", "http://127.0.0.1:9000/{region}"),
        ),
        (
            {"LINKGEN_DATABASE_URL": "postgresql://u@h/db"},
            ("database_url", "postgresql+psycopg://u@h/db"),
        ),
        ({"LINKGEN_INITIAL_API_KEY": "k" * 20}, ("initial_api_key", "k" * 20)),
        ({"LINKGEN_WORKER": "off"}, ("run_worker", False)),
        ({"LINKGEN_LOG_FORMAT": " JSON "}, ("log_format", "json")),
        ({"LINKGEN_LOG_FORMAT": "text"}, ("log_format", "text")),
        ({"LINKGEN_BODY_TIMEOUT_SECONDS": "2.5"}, ("body_timeout_seconds", 2.5)),
        ({"LINKGEN_HEADER_TIMEOUT_SECONDS": " 30 "}, ("header_timeout_seconds", 30.0)),
    ],
    ids=[
        "port",
        "host",
        "domains",
        "scheme",
        "api_base",
        "pg_url",
        "initial_key",
        "worker_off",
        "log_json",
        "log_text",
        "body_timeout",
        "header_timeout",
    ],
)
def test_values_are_parsed(env: dict[str, str], expected: tuple[str, object]) -> None:
    name, value = expected
    assert getattr(Settings.from_env(env), name) == value


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"LINKGEN_PORT": "80a"}, "LINKGEN_PORT"),
        ({"LINKGEN_PORT": "70000"}, "LINKGEN_PORT"),
        ({"LINKGEN_PUBLIC_SCHEME": "ftp"}, "LINKGEN_PUBLIC_SCHEME"),
        ({"LINKGEN_LINK_DOMAINS": "https://go.example.com"}, "LINKGEN_LINK_DOMAINS"),
        ({"LINKGEN_LINK_DOMAINS": " , "}, "LINKGEN_LINK_DOMAINS"),
        ({"LINKGEN_DATABASE_URL": "mysql://x"}, "LINKGEN_DATABASE_URL"),
        ({"LINKGEN_CLEVERTAP_API_BASE": "ftp://x"}, "LINKGEN_CLEVERTAP_API_BASE"),
        ({"LINKGEN_INITIAL_API_KEY": "short"}, "LINKGEN_INITIAL_API_KEY"),
        ({"LINKGEN_WORKER": "maybe"}, "LINKGEN_WORKER"),
        ({"LINKGEN_LOG_FORMAT": "logfmt"}, "LINKGEN_LOG_FORMAT"),
        ({"LINKGEN_DATABSE_URL": "sqlite://"}, "LINKGEN_DATABSE_URL"),
        ({"LINKGEN_BODY_TIMEOUT_SECONDS": "0"}, "LINKGEN_BODY_TIMEOUT_SECONDS"),
        ({"LINKGEN_BODY_TIMEOUT_SECONDS": "nan"}, "LINKGEN_BODY_TIMEOUT_SECONDS"),
        ({"LINKGEN_HEADER_TIMEOUT_SECONDS": "ten"}, "LINKGEN_HEADER_TIMEOUT_SECONDS"),
    ],
    ids=[
        "port_nan",
        "port_range",
        "scheme",
        "domain_url",
        "domain_empty",
        "db_kind",
        "api_base",
        "key_short",
        "bool",
        "log_format",
        "typo",
        "body_timeout_zero",
        "body_timeout_nan",
        "header_timeout_word",
    ],
)
def test_bad_values_are_refused_naming_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert info.value.variable == variable
    assert variable in str(info.value)


@pytest.mark.parametrize(
    ("domain", "forced", "scheme"),
    [
        ("localhost:8000", None, "http"),
        ("127.0.0.1:8000", None, "http"),
        ("go.example.com", None, "https"),
        ("go.example.com", "http", "http"),
    ],
)
def test_public_scheme(domain: str, forced: str | None, scheme: str) -> None:
    env = {"LINKGEN_PUBLIC_SCHEME": forced} if forced else {}
    assert Settings.from_env(env).scheme_for(domain) == scheme


def test_secret_key_is_generated_once_into_instance(tmp_path: Path) -> None:
    s = Settings.from_env({"LINKGEN_INSTANCE_PATH": str(tmp_path)})
    first = s.with_secret().secret_key
    assert first and (tmp_path / "secret_key").exists()
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert s.with_secret().secret_key == first


def test_settings_are_frozen() -> None:
    s = Settings.from_env({})
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "domains"),
    [
        ({"LINKGEN_PORT": "9001"}, ("localhost:9001", "127.0.0.1:9001")),
        (
            {"LINKGEN_PORT": "9001", "LINKGEN_LINK_DOMAINS": ""},
            ("localhost:9001", "127.0.0.1:9001"),
        ),
        ({"LINKGEN_PORT": "9001", "LINKGEN_LINK_DOMAINS": "go.example.com"}, ("go.example.com",)),
    ],
)
def test_link_domains_follow_the_port_when_unset(
    env: dict[str, str], domains: tuple[str, ...]
) -> None:
    assert Settings.from_env(env).link_domains == domains
