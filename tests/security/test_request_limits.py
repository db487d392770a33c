"""Requests cannot hold the database: stream slots answer 503 up front, statements time out, and a request
whose client left has its query cancelled."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import asyncpg
import httpx
from litestar import Litestar

from seeonline.server.app import create_app
from seeonline.settings import Settings, load_settings
from tests.api.live_server import running_api
from tests.polling import wait_until
from tests.support.keys import API_KEY, SECRET_KEY


def settings_for(database_url: str, **extra: str) -> Settings:
    return load_settings(
        {"DATABASE_URL": database_url, "SEEONLINE_API_KEYS": API_KEY, "SEEONLINE_SECRET_KEY": SECRET_KEY, **extra}
    )


def http_scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test"), (b"x-api-key", API_KEY.encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }


async def stalled_stream(app: Litestar, path: str) -> tuple[asyncio.Task[None], asyncio.Event]:
    """A request whose client reads the headers and then never the body (its first body chunk blocks)."""
    started, never = asyncio.Event(), asyncio.Event()
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await never.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message
            started.set()
        elif message.get("body"):
            await never.wait()

    task = asyncio.ensure_future(app(http_scope(path), receive, send))  # type: ignore[arg-type]
    await asyncio.wait_for(started.wait(), 30)
    return task, never


async def test_a_stream_beyond_the_slots_is_503_before_any_header(database_url: str, db: Any) -> None:
    await db.execute("INSERT INTO telegram_users (telegram_id) SELECT 8_000_000 + i FROM generate_series(1, 3000) AS i")
    app = create_app(settings_for(database_url, SEEONLINE_STREAM_LIMIT="1"))
    async with app.lifespan():
        stalled, _ = await stalled_stream(app, "/telegram-users/")
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers={"X-API-Key": API_KEY}
        ) as http:
            busy = await http.get("/telegram-users/")
            assert busy.status_code == 503, busy.text[:200]
            assert busy.json()["code"] == "busy"
            assert int(busy.headers["retry-after"]) > 0
            small = await http.get("/telegram-users/?limit=5")  # pages need no stream slot
            assert small.status_code == 200
            # The stalled client gives up before its body even started: its slot comes back.
            stalled.cancel()
            await asyncio.gather(stalled, return_exceptions=True)
            streamed = await http.get("/telegram-users/")
            assert streamed.status_code == 200
            assert len(streamed.json()) == 3000


async def test_a_statement_past_the_timeout_is_503_not_a_hang(database_url: str, db: Any) -> None:
    app = create_app(settings_for(database_url, SEEONLINE_STATEMENT_TIMEOUT="0.5"))
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://test", headers={"X-API-Key": API_KEY}) as http,
            db.transaction(),
        ):
            await db.execute("LOCK TABLE telegram_users IN ACCESS EXCLUSIVE MODE")  # every read of it now waits
            response = await http.get("/telegram-users/")
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "statement_timeout"
        assert "retry-after" in response.headers


async def api_queries_waiting(db: asyncpg.Connection[Any]) -> int:
    """The API's queries of telegram_users that wait for the test's lock."""
    await db.execute("SELECT pg_stat_clear_snapshot()")  # the activity view is cached per transaction
    count: int = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'seeonline-api'"
        " AND wait_event_type = 'Lock' AND query LIKE '%telegram_users%'"
    )
    return count


async def test_a_client_that_leaves_has_its_query_cancelled(database_url: str, db: Any) -> None:
    with running_api(database_url, SEEONLINE_STATEMENT_TIMEOUT="0") as base:  # no timeout: only the cancel ends it
        host, port = base.removeprefix("http://").split(":")
        async with db.transaction():
            await db.execute("LOCK TABLE telegram_users IN ACCESS EXCLUSIVE MODE")
            with socket.create_connection((host, int(port))) as sock:
                sock.sendall(f"GET /telegram-users/ HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n\r\n".encode())
                await wait_until(lambda: api_queries_waiting(db), timeout=30, what="the API's query to start")
            # The client is gone while its query still waits for the lock.
            await wait_until(lambda: _none_waiting(db), timeout=30, what="the abandoned query to be cancelled")


async def _none_waiting(db: asyncpg.Connection[Any]) -> bool:
    return await api_queries_waiting(db) == 0
