"""Where a session string may make a client connect: Telegram's own data centres only.

A Telethon string session names its data centre's address; a crafted one would make a worker dial any
host (a cloud metadata endpoint, a service on the loopback). Outside sandbox mode (``SEEONLINE_TELEGRAM_DC``
unset) the address must lie in the networks Telegram publishes for its data centres
(https://core.telegram.org/resources/cidr.txt) on a port Telegram serves MTProto on. Sandbox addresses are
accepted as well: the one ``SEEONLINE_TELEGRAM_DC`` names, and those of sandboxes running in this process
(tests), which the supervisor hands on to the workers it forks. A string that is not a string session at
all never makes a client dial anywhere (Telethon refuses to load it), so only decodable ones are judged.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import struct
from typing import NamedTuple

DC_ENV = "SEEONLINE_TELEGRAM_DC"  # the sandbox's host:port (test and demo only)

TELEGRAM_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "91.105.192.0/23",
        "91.108.4.0/22",
        "91.108.8.0/22",
        "91.108.12.0/22",
        "91.108.16.0/22",
        "91.108.20.0/22",
        "91.108.56.0/22",
        "149.154.160.0/20",
        "185.76.151.0/24",
        "2001:67c:4e8::/48",
        "2001:b28:f23c::/48",
        "2001:b28:f23d::/48",
        "2001:b28:f23f::/48",
        "2a0a:f280::/32",
    )
)
TELEGRAM_PORTS = frozenset({80, 443, 5222})
TELEGRAM_DC_IDS = range(1, 6)

_AUTH_KEY_BYTES = 256


class SessionAddress(NamedTuple):
    """The data centre a string session connects to."""

    dc_id: int
    host: str
    port: int


def session_address(session: str) -> SessionAddress | None:
    """The data centre named by a Telethon string session (format 1), or None when it is not one."""
    if not session.startswith("1"):
        return None
    body = session[1:]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        return None
    ip_bytes = len(raw) - 1 - 2 - _AUTH_KEY_BYTES
    if ip_bytes not in (4, 16):
        return None
    dc_id, ip, port, _key = struct.unpack(f">B{ip_bytes}sH{_AUTH_KEY_BYTES}s", raw)
    return SessionAddress(dc_id, str(ipaddress.ip_address(ip)), port)


_sandboxes: set[tuple[str, int]] = set()  # sandboxes listening in this process (tests, ``seeonline sandbox``)


def trust_sandbox(host: str, port: int) -> None:
    """Accept sessions pointing at a sandbox this process runs."""
    _sandboxes.add((host, port))


def forget_sandbox(host: str, port: int) -> None:
    """The sandbox stopped: its address is just an address again."""
    _sandboxes.discard((host, port))


def trusted_sandboxes() -> frozenset[tuple[str, int]]:
    """The sandbox addresses sessions may point at: ``SEEONLINE_TELEGRAM_DC``'s and this process's sandboxes."""
    trusted = set(_sandboxes)
    value = os.environ.get(DC_ENV)
    if value:
        host, _, port = value.rpartition(":")
        if host and port.isdigit():
            trusted.add((host, int(port)))
    return frozenset(trusted)


def adopt_sandboxes(addresses: frozenset[tuple[str, int]]) -> None:
    """In a forked worker: accept the sandboxes its supervisor accepted when it forked it."""
    _sandboxes.update(addresses)


def refused_address(session: str) -> str | None:
    """Why a session string may not be used here (its address is not Telegram's), or None when it may."""
    address = session_address(session)
    if address is None:
        return None
    if (address.host, address.port) in trusted_sandboxes():
        return None
    in_telegram = any(ipaddress.ip_address(address.host) in network for network in TELEGRAM_NETWORKS)
    if in_telegram and address.port in TELEGRAM_PORTS and address.dc_id in TELEGRAM_DC_IDS:
        return None
    return "the session's data centre address is not one of Telegram's"
