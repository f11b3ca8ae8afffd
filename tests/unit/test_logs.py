"""linkgen/logs.py: the two formats, the handler it owns, request ids and logged paths."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from linkgen.config import Settings
from linkgen.logs import (
    CHATTY_LIBRARIES,
    MAX_LOGGED_PATH,
    JsonFormatter,
    configure_logging,
    granian_log_config,
    loggable_path,
    request_id_from,
)


def _record(
    msg: str = "hello %s", args: tuple[object, ...] = ("world",), **extra: object
) -> logging.LogRecord:
    record = logging.LogRecord("linkgen.test", logging.WARNING, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_lines_carry_the_documented_fields_and_extras() -> None:
    line = JsonFormatter().format(_record(status=201, path="/api/v1/apps"))
    assert "\n" not in line
    out = json.loads(line)
    assert out["level"] == "WARNING" and out["logger"] == "linkgen.test"
    assert out["message"] == "hello world"
    assert isinstance(out["process"], int)
    assert out["status"] == 201 and out["path"] == "/api/v1/apps"
    assert "exception" not in out
    assert out["ts"].endswith("Z")
    ts = datetime.fromisoformat(out["ts"].replace("Z", "+00:00"))
    assert ts.tzinfo is not None and ts.utcoffset() == UTC.utcoffset(ts)
    assert abs((datetime.now(UTC) - ts).total_seconds()) < 60
    # Only the documented keys and the extras: no LogRecord internals leak into the line.
    assert set(out) == {"ts", "level", "logger", "message", "process", "status", "path"}


def test_json_lines_include_the_exception_text_on_one_line() -> None:
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logging.LogRecord(
            "linkgen.test", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    out = json.loads(line)
    assert "Traceback" in out["exception"] and "ValueError: boom\nsecond line" in out["exception"]


def test_values_json_cannot_encode_are_written_as_text() -> None:
    out = json.loads(JsonFormatter().format(_record(when=datetime(2024, 5, 1, tzinfo=UTC))))
    assert out["when"] == "2024-05-01 00:00:00+00:00"


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    chatty = {name: logging.getLogger(name).level for name in CHATTY_LIBRARIES}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in chatty.items():
        logging.getLogger(name).setLevel(old)


@pytest.mark.usefixtures("root_restored")
def test_configure_logging_replaces_its_own_handler_and_keeps_others() -> None:
    root = logging.getLogger()
    other = logging.NullHandler()
    root.addHandler(other)
    first, second = io.StringIO(), io.StringIO()
    configure_logging(Settings.from_env({"LINKGEN_LOG_FORMAT": "json"}), stream=first)
    configure_logging(
        Settings.from_env({"LINKGEN_LOG_FORMAT": "json", "LINKGEN_LOG_LEVEL": "WARNING"}),
        stream=second,
    )
    assert other in root.handlers
    assert sum(1 for h in root.handlers if getattr(h, "_linkgen", False)) == 1
    assert root.level == logging.WARNING
    logging.getLogger("linkgen.test").info("dropped at WARNING")
    logging.getLogger("linkgen.test").warning("kept %d", 1, extra={"app_id": "com.x"})
    assert first.getvalue() == ""
    (line,) = second.getvalue().splitlines()
    assert json.loads(line)["message"] == "kept 1" and json.loads(line)["app_id"] == "com.x"


@pytest.mark.usefixtures("root_restored")
def test_chatty_libraries_speak_only_when_debugging() -> None:
    stream = io.StringIO()
    configure_logging(Settings.from_env({}), stream=stream)
    logging.getLogger("httpx").info("HTTP Request: POST https://eu1.api.clevertap.com/1/upload")
    logging.getLogger("alembic.runtime.migration").info("Running upgrade a -> b")
    assert "HTTP Request" not in stream.getvalue() and "Running upgrade" in stream.getvalue()
    configure_logging(Settings.from_env({"LINKGEN_LOG_LEVEL": "DEBUG"}), stream=stream)
    logging.getLogger("httpx").info("HTTP Request: again")
    assert "HTTP Request: again" in stream.getvalue()


@pytest.mark.usefixtures("root_restored")
def test_text_is_the_default_human_format() -> None:
    stream = io.StringIO()
    configure_logging(Settings.from_env({}), stream=stream)
    logging.getLogger("linkgen.test").warning("plain %s", "text")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING linkgen\.test: plain text\n",
        stream.getvalue(),
    )


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_granian_logs_in_the_same_format(log_format: str) -> None:
    config = granian_log_config(Settings.from_env({"LINKGEN_LOG_FORMAT": log_format}))
    assert set(config["loggers"]) == {"_granian", "granian.access"}
    assert "root" not in config  # the WSGI module configures the root logger itself
    assert config["handlers"]["linkgen"]["stream"] == "ext://sys.stderr"
    # Build the formatter the way dictConfig will (without touching this process's loggers).
    formatter = logging.config.DictConfigurator(config).configure_formatter(
        dict(config["formatters"]["linkgen"])
    )
    line = formatter.format(_record("Listening at %s", ("http://127.0.0.1:8000",)))
    if log_format == "json":
        assert json.loads(line)["message"] == "Listening at http://127.0.0.1:8000"
    else:
        assert line.endswith(" WARNING linkgen.test: Listening at http://127.0.0.1:8000")


@pytest.mark.parametrize(
    "value",
    ["0f8e4c1a2b3d4e5f", "6f1c9c2e-8f5b-4a53-9b51-6f0a3c2d1e4f", "Root=1-5759e988-bd862e3f"],
)
def test_well_formed_request_ids_are_kept(value: str) -> None:
    assert request_id_from(value) == value


@pytest.mark.parametrize(
    "value",
    [None, "", "a" * 129, "abc\nfake log line", "id with spaces", '"quoted"', "-leading-dash"],
)
def test_other_request_ids_are_replaced(value: str | None) -> None:
    made = request_id_from(value)
    assert made != value and re.fullmatch(r"[0-9a-f]{32}", made)


def test_logged_paths_are_one_printable_bounded_line() -> None:
    assert loggable_path("/api/v1/apps") == "/api/v1/apps"
    assert loggable_path("/x\nINFO forged\r\x00") == "/x\\nINFO forged\\r\\x00"
    long = loggable_path("/" + "a" * 5000)
    assert len(long) == MAX_LOGGED_PATH + 3 and long.endswith("...")
