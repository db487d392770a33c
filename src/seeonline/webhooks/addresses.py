"""The SSRF guard: webhook URLs may not point at loopback, private or otherwise internal addresses.

Checked when a webhook is saved (a 400) and again for every delivery, on the addresses the deliverer
then connects to (so a name that later resolves to an internal address is refused too).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

SCHEMES = ("http", "https")
MAX_URL_LENGTH = 2048
_PORT = "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
# The URLs ``split_url`` takes, as the OpenAPI document shows them (a subset: host names only, no userinfo).
URL_PATTERN = (
    "^(?:" + "|".join("".join(f"[{c.upper()}{c}]" for c in scheme) for scheme in SCHEMES) + ")"
    f"://[A-Za-z0-9.-]+(?::{_PORT})?(?:[/?#][^\\x00\\s]*)?$"
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrlError(ValueError):
    """The URL is malformed, does not resolve, or points at an address webhooks may not reach."""


class RefusedUrlError(UnsafeUrlError):
    """A well-formed URL whose host does not resolve, or resolves to an address webhooks may not reach."""


def is_public(address: IPAddress) -> bool:
    """True for globally routable unicast addresses."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def split_url(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an http(s) URL, or ``UnsafeUrlError``."""
    if len(url) > MAX_URL_LENGTH:
        msg = f"longer than {MAX_URL_LENGTH} characters"
        raise UnsafeUrlError(msg)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrlError(str(exc)) from None
    if parts.scheme not in SCHEMES or not parts.hostname:
        msg = "must be an http:// or https:// URL with a host"
        raise UnsafeUrlError(msg)
    if parts.username or parts.password:
        msg = "must not carry credentials"
        raise UnsafeUrlError(msg)
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def resolve_allowed(url: str, *, allow_private: bool) -> list[str]:
    """The addresses ``url``'s host resolves to, all of them allowed; ``UnsafeUrlError`` otherwise."""
    _scheme, host, port = split_url(url)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        msg = f"host {host!r} does not resolve"
        raise RefusedUrlError(msg) from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        msg = f"host {host!r} does not resolve"
        raise RefusedUrlError(msg)
    if not allow_private:
        for address in addresses:
            if not is_public(ipaddress.ip_address(address.split("%", 1)[0])):
                msg = (
                    f"{host!r} resolves to {address}, a loopback or private address"
                    " (set SEEONLINE_WEBHOOK_ALLOW_PRIVATE=true to allow)"
                )
                raise RefusedUrlError(msg)
    return addresses
