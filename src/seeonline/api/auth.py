"""``X-API-Key`` authentication for every resource route."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

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
    """
    if not key_is_valid(connection.headers.get(API_KEY_HEADER), connection.app.state.api_keys):
        raise NotAuthorizedException("Missing or invalid X-API-Key header.")
