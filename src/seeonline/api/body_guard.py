"""Checks on a request body before Litestar decodes it: JSON only (415), and no nesting deep enough to crash.

Litestar first decodes a body untyped, then converts it to the handler's Struct; msgspec's untyped decode
raises ``RecursionError`` on about a thousand nested arrays, which would be a 500.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any

from litestar import Request

from seeonline.api.errors import ApiError
from seeonline.api.params import shown

# No contract body nests deeper than 3 levels; unknown fields are ignored, but not past this depth.
MAX_BODY_DEPTH = 100
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in _STEP)


def is_json(media_type: str) -> bool:
    """``application/json`` or a ``+json`` type (parameters such as charset are fine)."""
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def nesting_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in ``body`` (brackets inside strings do not count)."""
    if body.count(b"[") + body.count(b"{") <= MAX_BODY_DEPTH:
        return 0  # cannot be too deep: skip the scan
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def has_body(request: Request[Any, Any, Any]) -> bool:
    """Whether the request announces a body (a non-zero Content-Length, or chunked)."""
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in request.headers


async def check_body(request: Request[Any, Any, Any]) -> None:
    """``before_request`` hook: 415 for a body that is not JSON, 400 for one nested too deeply."""
    if request.method not in BODY_METHODS or not has_body(request):
        return
    media_type = request.content_type[0].lower()
    if not is_json(media_type):
        raise ApiError(
            415,
            f"Unsupported media type {shown(media_type)} in request; send application/json.",
            code="unsupported_media_type",
        )
    if nesting_depth(await request.body()) > MAX_BODY_DEPTH:
        raise ApiError(400, f"JSON nested deeper than {MAX_BODY_DEPTH} levels.", code="parse_error")
