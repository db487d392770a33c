"""Helpers for event tests: the app on a real socket (SSE needs real streaming), an SSE reader, rows."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import uvicorn

from seeonline.local.embedded_postgres import find_free_port
from seeonline.server.app import create_app
from seeonline.settings import Settings
from tests.support.keys import API_KEY


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[str]:
    """The app served by uvicorn on this loop at a free port; yields its base URL."""
    port = find_free_port()
    app = create_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, lifespan="on", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                await task
                raise AssertionError("uvicorn exited before starting")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Message:
    """One SSE message as a client sees it."""

    event: str
    id: int  # 0 when the message had none
    data: dict[str, Any]  # empty when the message had none


@dataclass
class SseClient:
    """Reads one SSE stream; ``messages`` collects everything, ``comments`` counts pings."""

    response: httpx.Response
    messages: list[Message] = field(default_factory=list)
    comments: int = 0
    _task: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        event, event_id, data = "message", 0, list[str]()
        async for line in self.response.aiter_lines():
            if line == "":
                if data or event != "message":
                    text = "\n".join(data)
                    self.messages.append(Message(event, event_id, json.loads(text) if text else {}))
                event, event_id, data = "message", 0, []
            elif line.startswith(":"):
                self.comments += 1
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("id:"):
                event_id = int(line[3:].strip())
            elif line.startswith("data:"):
                data.append(line[5:].strip())

    def of(self, event: str) -> list[Message]:
        """The messages of one type."""
        return [message for message in self.messages if message.event == event]


@contextlib.asynccontextmanager
async def open_stream(
    base: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> AsyncIterator[SseClient]:
    """An open ``GET /events/`` stream being read in the background."""
    async with (
        httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(5.0, read=None)) as http,
        http.stream("GET", "/events/", params=params, headers={"X-API-Key": API_KEY, **(headers or {})}) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        client = SseClient(response)
        client._task = asyncio.create_task(client._read())
        try:
            yield client
        finally:
            client._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await client._task


async def insert_statuses(connection: asyncpg.Connection[Any], tracked_user_id: int, flips: list[bool]) -> None:
    """Record ``flips`` for a tracked user in one transaction, a second apart, ending now."""
    await connection.execute(
        "INSERT INTO online_statuses (tracked_user_id, is_online, created_at, source)"
        " SELECT $1, f.online, now() - (count(*) OVER () - f.n) * interval '1 second', 'api'"
        " FROM unnest($2::boolean[]) WITH ORDINALITY AS f(online, n) ORDER BY f.n",
        tracked_user_id,
        flips,
    )


async def add_tracked_users(db: asyncpg.Connection[Any], count: int) -> list[int]:
    """One bot user following ``count`` targets of its own; the tracked users' ids."""
    owner = await db.fetchval("INSERT INTO telegram_users (telegram_id, max_users) VALUES (1, 1000) RETURNING id")
    ids = []
    for n in range(count):
        target = await db.fetchval("INSERT INTO targets (username) VALUES ($1) RETURNING id", f"target_{n}")
        ids.append(
            await db.fetchval(
                "INSERT INTO tracked_users (telegram_user_id, target_id, username) VALUES ($1, $2, $3) RETURNING id",
                owner,
                target,
                f"target_{n}",
            )
        )
    return ids
