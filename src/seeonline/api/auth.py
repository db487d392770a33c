"""``X-API-Key`` authentication for every resource route."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from seeonline.api.errors import ApiError
from seeonline.api.throttle import FailureThrottle

API_KEY_HEADER = "x-api-key"


def key_is_valid(supplied: str | None, keys: tuple[bytes, ...]) -> bool:
    """Compare against every configured key in constant time (no early exit on a match)."""
    if not supplied:
        return False
    candidate = supplied.encode("utf-8", "surrogateescape")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key)
    return matched


async def require_api_key(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """Guard: refuse with 401 unless ``X-API-Key`` carries a configured key.

    A coroutine on purpose: Litestar runs a synchronous guard in a worker thread on every request.
    An address that failed too often is answered 429 until it may try again (see ``throttle``).
    """
    throttle: FailureThrottle = connection.app.state.auth_throttle
    address = connection.client.host if connection.client else ""
    if wait := throttle.retry_after(address):
        raise ApiError(
            429,
            "Too many requests with a wrong X-API-Key from this address; retry later.",
            code="throttled",
            headers={"Retry-After": str(wait)},
        )
    if not key_is_valid(connection.headers.get(API_KEY_HEADER), connection.app.state.api_keys):
        throttle.failed(address)
        raise NotAuthorizedException("Missing or invalid X-API-Key header.")
