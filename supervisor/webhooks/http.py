"""One signed POST of a batch, to an address the SSRF guard allowed (pinned: no second DNS lookup)."""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

import httpx

from seeonline.webhooks.addresses import UnsafeUrlError, resolve_allowed
from seeonline.webhooks.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, signature

TIMEOUT = httpx.Timeout(10.0)
USER_AGENT = "SeeOnline-Webhooks/1"


class DeliveryError(Exception):
    """The endpoint did not acknowledge the batch; the message goes to ``last_error``."""


def _pinned(url: str, address: str) -> tuple[str, str]:
    """``url`` with its host replaced by ``address``, and the Host header it needs."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc)), parts.netloc


async def post_batch(
    http: httpx.AsyncClient, url: str, secret: str, body: bytes, last_id: int, *, allow_private: bool
) -> None:
    """POST ``body`` signed; returns on a 2xx, raises ``DeliveryError`` otherwise."""
    try:
        addresses = await resolve_allowed(url, allow_private=allow_private)
    except UnsafeUrlError as exc:
        raise DeliveryError(f"refused url: {exc}") from None
    target, host = _pinned(url, addresses[0])
    headers = {
        "Content-Type": "application/json",
        "Host": host,
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature(secret, int(time.time()), body),
        EVENT_ID_HEADER: str(last_id),
    }
    extensions = {"sni_hostname": urlsplit(url).hostname} if url.startswith("https") else {}
    try:
        response = await http.post(target, content=body, headers=headers, extensions=extensions)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}"[:500]) from None
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"HTTP {response.status_code}: {response.text[:200]}")
