"""An encoded slash (``%2F``) in a path is part of a path value, never a separator: such paths match no route.

Uvicorn decodes the path before routing, so ``/tracker-accounts%2F1`` would otherwise answer account 1.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from seeonline.api.errors import ApiError

ENCODED_SLASH = b"%2f"


def refuse_encoded_slashes(app: ASGIApp) -> ASGIApp:
    """Litestar middleware factory: a 404 for a path whose raw form holds ``%2F``."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        raw_path = (scope.get("raw_path") or b"").split(b"?", 1)[0]  # httpx's test transport keeps the query
        if scope["type"] == ScopeType.HTTP and ENCODED_SLASH in raw_path.lower():
            raise ApiError(404, "Not Found", code="not_found")
        await app(scope, receive, send)

    return middleware
