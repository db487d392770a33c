"""What handlers take: the request, the database handles injected by parameter name, and query flags.

The app assembly (:mod:`seeonline.server.dependencies`) provides one dependency per parameter name; a
domain marks its own service the same way (``BotUsers = NamedDependency[BotUserService]``).
"""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from litestar import Request
from litestar.di import NamedDependency

from seeonline.api.params import in_path, parse_bool, parse_id, parse_int
from seeonline.database.pool import StreamSource

AnyRequest = Request[Any, Any, Any]
Pool = NamedDependency[asyncpg.Pool]
Streams = NamedDependency[StreamSource]
# Path values arrive as text and are parsed by the handler (``path_id``, ``parse_int``), documented as parsed.
PathId = Annotated[str, in_path(parse_id)]
PathBigInt = Annotated[str, in_path(parse_int)]


def query_flag(request: AnyRequest, name: str) -> bool:
    """An optional boolean query parameter (``?name=true``); false when absent."""
    raw = request.query_params.get(name)
    return parse_bool(name, raw) if raw not in (None, "") else False


def force_flag(request: AnyRequest) -> bool:
    """``?force=true`` on deletes that would leave targets without a tracker."""
    return query_flag(request, "force")
