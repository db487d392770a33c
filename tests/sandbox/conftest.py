"""Fixtures for the sandbox tests: an in-process sandbox and unmodified Telethon clients connected to it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from telethon import TelegramClient, events
from telethon.network import ConnectionTcpFull

from seeonline.sandbox import Account, SandboxServer
from seeonline.telegram import build_client

logging.getLogger("telethon").setLevel(logging.ERROR)


class StatusWatcher:
    """Collects the ``UserUpdate`` status events a client receives."""

    def __init__(self, client: TelegramClient) -> None:
        self.client = client
        self.queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        client.add_event_handler(self._on_update, events.UserUpdate)

    async def _on_update(self, event: Any) -> None:
        if event.status is not None:
            await self.queue.put((event.user_id, event.status))

    async def next(self, timeout: float = 5.0) -> tuple[int, Any]:
        """The next (user_id, status) pushed to this client."""
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def nothing(self, wait: float = 0.3) -> None:
        """Assert that nothing arrives within ``wait`` seconds."""
        with contextlib.suppress(TimeoutError):
            got = await asyncio.wait_for(self.queue.get(), wait)
            raise AssertionError(f"unexpected push {got}")


ConnectFactory = Callable[..., contextlib.AbstractAsyncContextManager[TelegramClient]]


@pytest.fixture
def connect(sandbox: SandboxServer) -> ConnectFactory:
    """Connect a pre-authorized client for an account: ``async with connect(account) as client``."""

    @contextlib.asynccontextmanager
    async def _connect(account: Account, connection: type = ConnectionTcpFull, **kwargs: Any) -> AsyncIterator[Any]:
        kwargs.setdefault("retry_delay", 0.1)
        client = build_client(
            sandbox.session_string_for(account), account.api_id, account.api_hash, connection=connection, **kwargs
        )
        await client.connect()
        try:
            yield client
        finally:
            await client.disconnect()

    return _connect


@pytest.fixture
def watch() -> type[StatusWatcher]:
    """``watch(client)`` starts collecting the client's status pushes."""
    return StatusWatcher
