"""API errors and the mapping of database errors to the contract's status codes."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_400_BAD_REQUEST

from seeonline.database.errors import DATABASE_ERRORS, RETRYABLE_SQLSTATES
from seeonline.logging import get_logger

log = get_logger(__name__)

# Constraint name -> the request field it guards (names follow models.base.NAMING_CONVENTION).
CONSTRAINT_FIELDS = {
    "uq_tracker_accounts_telegram_id": "telegram_id",
    "uq_tracker_accounts_api_id": "api_id",
    "uq_tracker_accounts_api_hash_lookup": "api_hash",
    "uq_tracker_settings_tracker_account_id": "tracker_account_id",
    "uq_tracker_settings_phone_number": "phone_number",
    "uq_telegram_users_telegram_id": "telegram_id",
    "uq_tracked_users_telegram_user_id_target_id": "username",
    "fk_tracker_settings_tracker_account_id": "tracker_account_id",
    "fk_tracked_users_telegram_user_id": "telegram_user_id",
    "fk_webhooks_telegram_user_id": "telegram_user_id",
    "fk_online_statuses_tracked_user_id": "tracked_user_id",
    "fk_targets_tracker_account_id": "tracker_account_id",
    "fk_tracker_privacy_checks_tracker_account_id": "tracker_account_id",
}

# Error details never grow past this: messages that quote a client's value (msgspec's, Postgres') stay short.
MAX_DETAIL_CHARS = 300

# query_canceled: statement_timeout fired (or a client that went away had its query cancelled).
STATEMENT_TIMEOUT_SQLSTATE = "57014"

# SQLSTATEs raised by the slot engine's SQL (db/sql): SO<http status>.
DOMAIN_SQLSTATES = {"SO400": 400, "SO403": 403, "SO404": 404, "SO409": 409}


class ApiError(Exception):
    """An error the client caused: becomes ``{"detail", "code"?, "field"?}`` with its status."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code
        self.field = field
        self.headers = headers

    def body(self) -> dict[str, Any]:
        """The JSON body of this error."""
        body: dict[str, Any] = {"detail": shortened(self.detail)}
        if self.code is not None:
            body["code"] = self.code
        if self.field is not None:
            body["field"] = self.field
        return body


def shortened(detail: str) -> str:
    """``detail`` cut to ``MAX_DETAIL_CHARS``."""
    return detail if len(detail) <= MAX_DETAIL_CHARS else detail[: MAX_DETAIL_CHARS - 1] + "…"


def not_found(resource: str) -> ApiError:
    """The 404 for an id or lookup key that matches nothing (DRF's wording)."""
    return ApiError(404, f"No {resource} matches the given query.", code="not_found")


def already_exists(field: str) -> ApiError:
    """409 ``unique``: another row holds this value of ``field``."""
    return ApiError(409, f"{field}: a row with this {field} already exists", code="unique", field=field)


def invalid(field: str, detail: str) -> ApiError:
    """A 400 naming the offending field."""
    return ApiError(400, f"{field}: {detail}", code="invalid", field=field)


def does_not_exist(field: str, detail: str = "the referenced row does not exist") -> ApiError:
    """400 ``does_not_exist``: a well-formed reference to a row that is not there (DRF's code for it).

    Its own code, not ``invalid``: the request was right in form; what it names is missing.
    """
    return ApiError(400, f"{field}: {detail}", code="does_not_exist", field=field)


_MSGSPEC_PATH = re.compile(r" - at `\$(?:\.([A-Za-z_][A-Za-z0-9_]*))?[^`]*`$")


def from_validation_error(exc: msgspec.ValidationError | msgspec.DecodeError) -> ApiError:
    """Turn msgspec's message (``Expected `int`, got `str` - at `$.telegram_id```) into a 400."""
    message = str(exc)
    match = _MSGSPEC_PATH.search(message)
    field = match.group(1) if match and match.group(1) else None
    text = _MSGSPEC_PATH.sub("", message)
    if not isinstance(exc, msgspec.ValidationError):  # not JSON at all (syntax, encoding); a misfit value is below
        return ApiError(400, f"Malformed JSON: {text}", code="parse_error", field=field)
    if field is None:
        missing = re.search(r"missing required field `([^`]+)`", message)
        field = missing.group(1) if missing else None
    if field is None:
        return ApiError(400, text, code="invalid")
    return invalid(field, text)


def from_database_error(exc: asyncpg.PostgresError) -> ApiError | None:
    """The client-facing error for a database error, or None when it is our fault."""
    sqlstate = getattr(exc, "sqlstate", None) or ""
    if sqlstate in DOMAIN_SQLSTATES:
        status = DOMAIN_SQLSTATES[sqlstate]
        code = str(getattr(exc, "message", "")) or None
        detail = str(getattr(exc, "detail", None) or code or "request refused")
        field = getattr(exc, "hint", None)
        return ApiError(status, detail, code=code, field=field)
    if sqlstate == STATEMENT_TIMEOUT_SQLSTATE:
        return ApiError(
            503,
            "The query ran longer than the server allows; narrow it (filters, a smaller offset).",
            code="statement_timeout",
            headers={"Retry-After": "5"},
        )
    if sqlstate in RETRYABLE_SQLSTATES:  # still conflicting after the retries
        return ApiError(503, "The database is busy with conflicting changes; retry shortly.", code="busy")
    constraint = getattr(exc, "constraint_name", None) or ""
    field = CONSTRAINT_FIELDS.get(constraint)
    if isinstance(exc, asyncpg.UniqueViolationError):
        return already_exists(field or "id")
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return does_not_exist(field or "id")
    if isinstance(exc, asyncpg.CheckViolationError | asyncpg.NotNullViolationError | asyncpg.DataError):
        return ApiError(400, f"invalid value: {getattr(exc, 'message', exc)}", code="invalid")
    return None


def api_error_handler(_request: Request[Any, Any, Any], exc: ApiError) -> Response[Any]:
    """Render an ``ApiError``."""
    return Response(exc.body(), status_code=exc.status, headers=exc.headers)


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Render Litestar's own errors (404 route, 405 method, a body it could not decode) in our body shape."""
    # Litestar answers a body it cannot decode with a 400 whose cause is msgspec's error (a 500 may have one too:
    # a dependency's value that did not fit is our fault, not the client's).
    if exc.status_code == HTTP_400_BAD_REQUEST and (malformed := decode_error_behind(exc)) is not None:
        return api_error_handler(request, from_validation_error(malformed))
    body: dict[str, Any] = {"detail": shortened(exc.detail)}
    return Response(body, status_code=exc.status_code, headers=exc.headers)


def decode_error_behind(exc: BaseException) -> msgspec.DecodeError | None:
    """The decoding error (bad syntax, or a ``ValidationError`` like a number no float holds) behind ``exc``."""
    cause = exc.__cause__
    while cause is not None and not isinstance(cause, msgspec.DecodeError):
        cause = cause.__cause__
    return cause


def unexpected_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Map database errors the client caused; log everything else as a 500."""
    if isinstance(exc, asyncpg.PostgresError) and (mapped := from_database_error(exc)) is not None:
        return api_error_handler(request, mapped)
    if isinstance(exc, DATABASE_ERRORS) and not isinstance(exc, asyncpg.PostgresError):
        # The database is unreachable or the connection broke: a retryable outage, not a bug.
        log.warning("database_unavailable", method=request.method, path=request.url.path, error=type(exc).__name__)
        return Response(
            {"detail": "Database unavailable, retry shortly."}, status_code=503, headers={"Retry-After": "1"}
        )
    log.exception("unhandled_error", method=request.method, path=request.url.path)
    return Response({"detail": "Internal server error"}, status_code=500)
