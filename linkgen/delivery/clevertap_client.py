"""The CleverTap upload API client (httpx).

One call uploads at most 1000 records and answers an `UploadResult` whose `outcome` tells the
worker what to do next:

    ok      HTTP 200: CleverTap took the call; `failed` maps record indexes to the records it
            refused (its `unprocessed` list), which must not be retried as they are.
    retry   timeout, connection error, 429 (too many concurrent uploads) or 5xx: try again later.
            A timed-out call may still have been processed; records carry `linkgen_id` so a
            duplicate can be recognised downstream.
    reject  401 (credentials or region), 400 and any other status: retrying the same call will
            not help.

The passcode is passed per call and never stored on the client, so it cannot leak through a repr;
it is never logged, and any text taken from a lower-level exception is scrubbed of it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Literal, Self
from urllib.parse import urlsplit

import httpx

log = logging.getLogger(__name__)

MAX_RECORDS_PER_UPLOAD: Final = 1000
DEFAULT_TIMEOUT: Final = 10.0

UploadOutcome = Literal["ok", "retry", "reject"]


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


def _scrub(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


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
        self, *, timeout: float = DEFAULT_TIMEOUT, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.timeout = timeout
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
        except httpx.TimeoutException:
            log.warning("CleverTap upload to %s timed out", _host(endpoint))
            return UploadResult(
                "retry", None, f"CleverTap did not answer within {self.timeout:g} s."
            )
        except httpx.HTTPError as exc:
            reason = _scrub(str(exc) or type(exc).__name__, passcode, account_id)
            log.warning("CleverTap upload to %s failed: %s", _host(endpoint), reason)
            return UploadResult(
                "retry", None, f"Could not reach CleverTap at {_host(endpoint)}: {reason}"
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
