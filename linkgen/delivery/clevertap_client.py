"""The CleverTap API client (httpx): the upload API, the partner credentials check, and the
Get Events API used to find out whether records of an interrupted upload arrived.

One upload call carries at most 1000 records and answers an `UploadResult` whose `outcome` tells
the worker what to do next:

    ok       HTTP 200: CleverTap took the call; `failed` maps record indexes to the records it
             refused (its `unprocessed` list), which must not be retried as they are.
    retry    the request certainly did not reach CleverTap (no connection could be made) or
             CleverTap said it did not take it (429 too many concurrent uploads, 5xx other than
             504): try again later.
    unknown  the request went out but no answer came back (read timeout, connection dropped,
             504 gateway timeout): CleverTap may or may not have stored the records, and it has
             no idempotency, so they must not simply be sent again (see `find_linkgen_ids`).
    reject   401 (credentials or region), 400 and any other status: retrying the same call will
             not help.

`find_linkgen_ids` pages through CleverTap's Get Events API (`POST /1/events.json?batch_size=N`
with `{"event_name", "from", "to"}` answers a cursor; `GET /1/events.json?cursor=...` answers a
batch of records and `next_cursor` until there is none) and collects the `linkgen_id` event
property of the records it lists.

The passcode is passed per call and never stored on the client, so it cannot leak through a repr;
it is never logged, and any text taken from a lower-level exception is scrubbed of it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from types import TracebackType
from typing import Any, Final, Literal, Self
from urllib.parse import urlsplit

import httpx

from linkgen.domain.clevertap import IntegrationSettings, connect_endpoint, scrub_secrets

log = logging.getLogger(__name__)

MAX_RECORDS_PER_UPLOAD: Final = 1000
MAX_EVENTS_BATCH: Final = 5000  # the Get Events API's largest batch_size
DEFAULT_TIMEOUT: Final = 10.0
# A person (the API's test button, `linkgen check`) waits for the answer: well under any proxy's.
CHECK_TIMEOUT: Final = 5.0
UPLOAD_PATH: Final = "/1/upload"
EVENTS_PATH: Final = "/1/events.json"

UploadOutcome = Literal["ok", "retry", "unknown", "reject"]
# Transport errors raised before any byte of the request can have reached CleverTap.
_NOT_SENT_ERRORS: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.LocalProtocolError,
    httpx.UnsupportedProtocol,
)


@dataclass(frozen=True)
class RecordFailure:
    """CleverTap's answer for one record it did not process (codes 509-555)."""

    code: int | None
    error: str
    status: str = "fail"


@dataclass(frozen=True)
class UploadResult:
    """The result of one upload call; `failed` is keyed by the record's index in the call."""

    outcome: UploadOutcome
    status: int | None
    message: str
    processed: int | None = None
    failed: Mapping[int, RecordFailure] = field(default_factory=dict)
    # Unprocessed items whose record could not be matched to one we sent (kept for the log).
    unmatched: Sequence[Mapping[str, Any]] = ()
    body: Any = None

    @property
    def ok(self) -> bool:
        """CleverTap accepted the call (some records may still have failed)."""
        return self.outcome == "ok"


@dataclass(frozen=True)
class EventsLookup:
    """What the Get Events API said about one event name and day range.

    `ok` means every page was read (or every wanted id was found before the end): `found` is
    then the complete answer. Otherwise `message` says what went wrong and `found` is partial.
    """

    ok: bool
    found: frozenset[str]
    pages: int
    message: str
    status: int | None = None


def events_endpoint(upload_url: str) -> str | None:
    """The Get Events URL on the host an upload URL points at (None for an unknown shape)."""
    if not upload_url.endswith(UPLOAD_PATH):
        return None
    return upload_url[: -len(UPLOAD_PATH)] + EVENTS_PATH


def ymd(day: date) -> int:
    """A day as the Get Events API's `from` / `to` integer (YYYYMMDD)."""
    return day.year * 10_000 + day.month * 100 + day.day


def _scrub(text: str, *secrets: str | None) -> str:
    return str(scrub_secrets(text, secrets))


def _valid_header_value(value: str) -> bool:
    return bool(value) and value.isascii() and value.isprintable() and " " not in value


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _linkgen_id(record: Any) -> str | None:
    if isinstance(record, Mapping):
        data = record.get("evtData")
        if isinstance(data, Mapping):
            value = data.get("linkgen_id")
            if isinstance(value, str):
                return value
    return None


def _map_unprocessed(
    records: Sequence[Mapping[str, Any]], unprocessed: Any
) -> tuple[dict[int, RecordFailure], list[Mapping[str, Any]]]:
    """Match CleverTap's unprocessed items to record indexes by `evtData.linkgen_id`."""
    by_id: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        key = _linkgen_id(record)
        if key is not None:
            by_id.setdefault(key, []).append(index)
    failed: dict[int, RecordFailure] = {}
    unmatched: list[Mapping[str, Any]] = []
    if not isinstance(unprocessed, list):
        return failed, unmatched
    for item in unprocessed:
        if not isinstance(item, Mapping):
            continue
        code = item.get("code")
        failure = RecordFailure(
            code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            error=str(item.get("error", "")),
            status=str(item.get("status", "fail")),
        )
        returned = item.get("record")
        key = _linkgen_id(returned)
        candidates = by_id.get(key, []) if key is not None else []
        match = next((i for i in candidates if i not in failed), None)
        if match is None:
            # Fall back to an exact match for records sent without a linkgen_id.
            match = next(
                (i for i, r in enumerate(records) if i not in failed and r == returned), None
            )
        if match is None:
            unmatched.append(item)
        else:
            failed[match] = failure
    return failed, unmatched


class CleverTapClient:
    """Uploads event records to CleverTap and checks partner credentials; always with a timeout."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        events_attempts: int = 3,
        events_retry_pause: float = 0.5,
    ) -> None:
        self.timeout = timeout
        # A lookup may need many Get Events requests in a row; one busy answer should not throw
        # the whole lookup away, so each request is tried up to this many times.
        self.events_attempts = max(1, events_attempts)
        self.events_retry_pause = events_retry_pause
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,  # a redirect would carry the passcode to another host
            headers={"User-Agent": "linkgen"},
        )

    def __repr__(self) -> str:
        return f"CleverTapClient(timeout={self.timeout!r})"

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @staticmethod
    def _headers(account_id: str, passcode: str) -> dict[str, str]:
        return {
            "X-CleverTap-Account-Id": account_id,
            "X-CleverTap-Passcode": passcode,
            "Content-Type": "application/json",
        }

    def upload(
        self,
        endpoint: str,
        account_id: str | None,
        passcode: str | None,
        records: Sequence[Mapping[str, Any]],
    ) -> UploadResult:
        """POST `{"d": records}` to an upload endpoint and classify the answer."""
        if len(records) > MAX_RECORDS_PER_UPLOAD:
            raise ValueError(
                f"CleverTap takes at most {MAX_RECORDS_PER_UPLOAD} records a call, "
                f"got {len(records)}."
            )
        if not account_id or not passcode:
            return UploadResult(
                "reject",
                None,
                "The account ID and passcode are both needed to upload to CleverTap.",
            )
        if not _valid_header_value(account_id) or not _valid_header_value(passcode):
            return UploadResult(
                "reject", None, "The account ID or passcode contains characters HTTP cannot send."
            )
        if not records:
            return UploadResult("ok", None, "Nothing to upload.", processed=0)
        content = json.dumps({"d": list(records)}, separators=(",", ":"), ensure_ascii=False)
        try:
            response = self._http.post(
                endpoint,
                content=content.encode("utf-8"),
                headers=self._headers(account_id, passcode),
            )
        except _NOT_SENT_ERRORS as exc:
            reason = _scrub(str(exc) or type(exc).__name__, passcode, account_id)
            log.warning("CleverTap upload to %s failed: %s", _host(endpoint), reason)
            return UploadResult(
                "retry", None, f"Could not reach CleverTap at {_host(endpoint)}: {reason}"
            )
        except httpx.TimeoutException:
            log.warning("CleverTap upload to %s timed out", _host(endpoint))
            return UploadResult(
                "unknown", None, f"CleverTap did not answer within {self.timeout:g} s."
            )
        except httpx.HTTPError as exc:
            reason = _scrub(str(exc) or type(exc).__name__, passcode, account_id)
            log.warning("CleverTap upload to %s got no answer: %s", _host(endpoint), reason)
            return UploadResult(
                "unknown", None, f"The connection to CleverTap broke before it answered: {reason}"
            )
        return self._classify_upload(response, records, passcode)

    def _classify_upload(
        self, response: httpx.Response, records: Sequence[Mapping[str, Any]], passcode: str
    ) -> UploadResult:
        status = response.status_code
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = None
        error = _scrub(self._error_text(body, response), passcode)
        if status == 200:
            if isinstance(body, Mapping) and body.get("status") not in (None, "success"):
                return UploadResult(
                    "reject", status, f"CleverTap refused the upload: {error}", body=body
                )
            processed = body.get("processed") if isinstance(body, Mapping) else None
            failed, unmatched = _map_unprocessed(
                records, body.get("unprocessed") if isinstance(body, Mapping) else None
            )
            message = (
                f"{len(failed) + len(unmatched)} of {len(records)} records were refused."
                if failed or unmatched
                else "Uploaded."
            )
            return UploadResult(
                "ok",
                status,
                message,
                processed=processed if isinstance(processed, int) else None,
                failed=failed,
                unmatched=unmatched,
                body=body,
            )
        if status == 401:
            message = (
                "CleverTap refused the account ID and passcode (401): check them and the "
                "region (an account is refused by another region's server)."
            )
            return UploadResult("reject", status, message, body=body)
        if status == 429:
            message = "CleverTap is busy (429: too many concurrent uploads); will retry."
            return UploadResult("retry", status, message, body=body)
        if status == 504:
            # A gateway gave up waiting: the server behind it may still have stored the records.
            message = "CleverTap's gateway timed out (504) before CleverTap answered."
            return UploadResult("unknown", status, message, body=body)
        if 500 <= status < 600:
            message = f"CleverTap had a server error ({status}); will retry."
            return UploadResult("retry", status, message, body=body)
        return UploadResult(
            "reject", status, f"CleverTap refused the upload ({status}): {error}", body=body
        )

    @staticmethod
    def _error_text(body: Any, response: httpx.Response) -> str:
        if isinstance(body, Mapping) and body.get("error"):
            return str(body["error"])[:300]
        return response.text[:300] if response.text else response.reason_phrase

    def check_credentials(
        self, connect_url: str, account_id: str | None, passcode: str | None
    ) -> tuple[bool, int | None, str]:
        """GET the partner connect URL: `(ok, CleverTap's status or None, plain message)`."""
        if not account_id or not passcode:
            missing = " and ".join(
                name
                for name, value in (("account ID", account_id), ("passcode", passcode))
                if not value
            )
            return (
                False,
                None,
                f"No {missing} is set: CleverTap needs both the account ID and the passcode.",
            )
        if not _valid_header_value(account_id) or not _valid_header_value(passcode):
            return False, None, "The account ID or passcode contains characters HTTP cannot send."
        host = _host(connect_url)
        try:
            response = self._http.get(
                connect_url,
                headers={
                    "X-CleverTap-Account-Id": account_id,
                    "X-CleverTap-Passcode": passcode,
                },
            )
        except httpx.TimeoutException:
            return False, None, f"CleverTap ({host}) did not answer within {self.timeout:g} s."
        except httpx.HTTPError as exc:
            reason = _scrub(str(exc) or type(exc).__name__, passcode, account_id)
            return False, None, f"Could not connect to CleverTap at {host}: {reason}"
        status = response.status_code
        if status == 200:
            return True, status, f"CleverTap ({host}) accepted the account ID and passcode."
        if status == 401:
            return (
                False,
                status,
                "CleverTap refused the account ID or passcode, or the account is in another "
                "region: check all three.",
            )
        if status == 429:
            return False, status, "CleverTap is busy (429); try again in a moment."
        if 500 <= status < 600:
            return False, status, f"CleverTap had a server error ({status}); try again later."
        return False, status, f"CleverTap answered with an unexpected status ({status})."

    # --- Get Events API ------------------------------------------------------------------------

    def find_linkgen_ids(
        self,
        events_url: str,
        account_id: str,
        passcode: str,
        *,
        event_name: str,
        first_day: date,
        last_day: date,
        wanted: Collection[str],
        batch_size: int = MAX_EVENTS_BATCH,
        max_pages: int = 1000,
    ) -> EventsLookup:
        """Which of `wanted` CleverTap lists as `event_name` events between two days.

        Pages through the cursor until it ends, or stops early once every wanted id was seen.
        Any failure (timeout, 401, 429, 5xx, an answer that is not `"status": "success"`, more
        than `max_pages` pages) gives `ok=False`: the caller must not read absence into it.
        """
        if not 1 <= batch_size <= MAX_EVENTS_BATCH:
            raise ValueError(f"batch_size must be 1..{MAX_EVENTS_BATCH}")
        wanted_set = set(wanted)
        found: set[str] = set()
        if not _valid_header_value(account_id) or not _valid_header_value(passcode):
            return EventsLookup(
                False,
                frozenset(),
                0,
                "The account ID or passcode contains characters HTTP cannot send.",
            )
        headers = self._headers(account_id, passcode)
        query = {"event_name": event_name, "from": ymd(first_day), "to": ymd(last_day)}
        params = {"batch_size": str(batch_size), "events": "false", "profile": "false"}
        body, error = self._events_call(
            "POST", events_url, passcode, headers=headers, params=params, json=query
        )
        if error is not None:
            return EventsLookup(False, frozenset(), 0, error.message, error.status)
        cursor = body.get("cursor")
        pages = 0
        while isinstance(cursor, str) and cursor and not wanted_set <= found:
            if pages >= max_pages:
                return EventsLookup(
                    False,
                    frozenset(found),
                    pages,
                    f"CleverTap listed more than {max_pages} pages of {event_name!r} events "
                    "for these days; linkgen stopped paging.",
                )
            body, error = self._events_call(
                "GET", events_url, passcode, headers=headers, params={"cursor": cursor}
            )
            if error is not None:
                return EventsLookup(False, frozenset(found), pages, error.message, error.status)
            pages += 1
            found.update(_listed_linkgen_ids(body.get("records"), wanted_set))
            cursor = body.get("next_cursor")
        return EventsLookup(True, frozenset(found), pages, "Read CleverTap's events.", 200)

    def _events_call(
        self, method: str, url: str, passcode: str, **kwargs: Any
    ) -> tuple[Mapping[str, Any], _CallError | None]:
        """One Get Events request, tried again after a pause (doubling) on a timeout, a lost
        connection, 429 or 5xx, up to `events_attempts` times; 401 and other refusals are
        final."""
        body, error = self._events_request(method, url, passcode, **kwargs)
        for attempt in range(1, self.events_attempts):
            if error is None or not error.transient:
                break
            time.sleep(self.events_retry_pause * 2 ** (attempt - 1))
            body, error = self._events_request(method, url, passcode, **kwargs)
        return body, error

    def _events_request(
        self, method: str, url: str, passcode: str, **kwargs: Any
    ) -> tuple[Mapping[str, Any], _CallError | None]:
        """One Get Events request: its JSON body, or what went wrong (passcode scrubbed)."""
        host = _host(url)
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TimeoutException:
            log.warning("CleverTap events query to %s timed out", host)
            return {}, _CallError(
                None, f"CleverTap's events API did not answer within {self.timeout:g} s."
            )
        except httpx.HTTPError as exc:
            reason = _scrub(str(exc) or type(exc).__name__, passcode)
            log.warning("CleverTap events query to %s failed: %s", host, reason)
            return {}, _CallError(
                None, f"Could not reach CleverTap's events API at {host}: {reason}"
            )
        status = response.status_code
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if status == 200 and isinstance(body, Mapping) and body.get("status") == "success":
            return body, None
        detail = _scrub(self._error_text(body, response), passcode)
        if status == 401:
            text = "CleverTap's events API refused the account ID and passcode (401)."
        elif status == 429:
            text = "CleverTap's events API is busy (429)."
        elif status == 200:
            text = f"CleverTap's events API did not answer with success: {detail}"
        else:
            text = f"CleverTap's events API answered {status}: {detail}"
        log.warning("CleverTap events query to %s: %s", host, text)
        return {}, _CallError(status, text)


@dataclass(frozen=True)
class _CallError:
    status: int | None
    message: str

    @property
    def transient(self) -> bool:
        """No answer, 429 or 5xx: the same request may well succeed a moment later."""
        return self.status is None or self.status == 429 or self.status >= 500


def _listed_linkgen_ids(records: Any, wanted: Collection[str]) -> set[str]:
    """The wanted `linkgen_id`s among the `event_props` of a Get Events page."""
    found: set[str] = set()
    if not isinstance(records, list):
        return found
    for item in records:
        if not isinstance(item, Mapping):
            continue
        props = item.get("event_props")
        if isinstance(props, Mapping):
            value = props.get("linkgen_id")
            if isinstance(value, str) and value in wanted:
                found.add(value)
    return found


def check_integration(
    settings: IntegrationSettings,
    *,
    api_base: str | None,
    client: CleverTapClient | None = None,
) -> tuple[bool, int | None, str]:
    """Check an integration's credentials at its region's connect URL:
    `(ok, CleverTap's status or None, plain message)`. Without a client, a fresh one with
    `CHECK_TIMEOUT` makes the call."""
    url = connect_endpoint(settings.region, api_base)
    if client is not None:
        return client.check_credentials(url, settings.account_id, settings.account_passcode)
    with CleverTapClient(timeout=CHECK_TIMEOUT) as fresh:
        return fresh.check_credentials(url, settings.account_id, settings.account_passcode)
