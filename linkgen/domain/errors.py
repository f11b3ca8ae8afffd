"""The error tree of linkgen.

    LinkgenError                 base; carries message, field and HTTP status
    +-- InvalidParameter         400 invalid_parameter (field names the request field)
    +-- Unauthorized             401 unauthorized
    +-- Forbidden                403 forbidden
    +-- NotFound                 404 not_found
    +-- Conflict                 409 conflict
    +-- Throttled                429 rate_limited

Lower-level errors (database, HTTP) are translated into these at the boundary; the web layer
turns them into JSON (API) or HTML (pages) in one handler module.
"""

from __future__ import annotations


class LinkgenError(Exception):
    """Base of every error linkgen raises on purpose."""

    status = 400
    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, object]:
        """The JSON body of the error."""
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return {"error": body}


class InvalidParameter(LinkgenError):
    """A request field is missing or malformed; `field` is its path as sent."""

    status = 400
    code = "invalid_parameter"


class Unauthorized(LinkgenError):
    status = 401
    code = "unauthorized"


class Forbidden(LinkgenError):
    status = 403
    code = "forbidden"


class NotFound(LinkgenError):
    status = 404
    code = "not_found"


class Conflict(LinkgenError):
    status = 409
    code = "conflict"


class Throttled(LinkgenError):
    """A caller over its rate limit; `retry_after` is the whole seconds until a token is back."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
