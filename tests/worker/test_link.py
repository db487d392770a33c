"""The Telegram link against a peer that accepts each connection and closes it at once (real Telethon client)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from types import SimpleNamespace
from typing import Any

from telethon import TelegramClient
from telethon.crypto import AuthKey
from telethon.sessions import StringSession

from seeonline.logging import get_logger
from seeonline_supervisor.worker.link import TelegramLink
from tests.worker.conftest import FAST


def _closing_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


def _link(client: TelegramClient) -> TelegramLink:
    events = {name: asyncio.Event() for name in ("connected", "resync", "resynced")}
    telegram: Any = SimpleNamespace(client=client)
    return TelegramLink(
        telegram, keeper=None, options=FAST, call_errors=None, on_change=lambda: None,  # type: ignore[arg-type]
        on_resynced=lambda: None, log=get_logger("test_link"), **events,
    )  # fmt: skip


async def test_time_spent_waiting_to_redial_a_peer_that_closes_at_once_is_not_counted_as_connected() -> None:
    server = await asyncio.start_server(_closing_peer, "127.0.0.1", 0)
    session = StringSession()
    session.set_dc(2, "127.0.0.1", server.sockets[0].getsockname()[1])
    session.auth_key = AuthKey(os.urandom(256))
    client = TelegramClient(session, 1, "0" * 32, connection_retries=3, retry_delay=0.1)
    link = _link(client)
    connecting = asyncio.create_task(client.connect())  # its first request never gets an answer
    samples = []
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        samples.append(link.uptime.since is not None)
        await asyncio.sleep(0.01)
    connecting.cancel()
    with contextlib.suppress(BaseException):
        await connecting
    await client.disconnect()
    server.close()
    # Connected only from each accept to its close (well under a millisecond); redials wait 0.1-0.5 s each.
    assert sum(samples) <= len(samples) * 0.1, f"{sum(samples)} of {len(samples)} samples counted as connected"
    assert link.pacing.delay == FAST.reconnect_max  # it did redial, and kept backing off
