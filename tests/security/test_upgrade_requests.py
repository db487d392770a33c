"""A request asking to switch protocols is served as plain HTTP, without a warning in the log for each."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from seeonline.server.http_protocol import LimitedHttpToolsProtocol

UPGRADE = (
    b"GET /health HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8000) if name in {"sockname", "peername"} else default

    def is_closing(self) -> bool:
        return self.closing

    def write(self, data: Any) -> None:
        pass

    def close(self) -> None:
        self.closing = True


async def test_an_upgrade_request_logs_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    config = Config(app, ws="none", log_config=None)
    config.load()
    protocol = LimitedHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(Transport())
    with caplog.at_level(logging.DEBUG, logger="uvicorn.error"):
        protocol.data_received(UPGRADE)
        await asyncio.sleep(0.05)  # the request runs as plain HTTP
    assert protocol.scope["path"] == "/health"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    protocol.connection_lost(None)
