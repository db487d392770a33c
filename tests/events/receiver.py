"""A local webhook receiver (a tiny ASGI app under uvicorn) that records requests and answers scripted statuses."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from seeonline.local.embedded_postgres import find_free_port


@dataclass
class Received:
    """One POST as the receiver saw it, and what it answered."""

    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def ids(self) -> list[int]:
        """The event ids of the batch."""
        return [item["id"] for item in json.loads(self.body)]


@dataclass
class Receiver:
    """Records every request; answers the statuses in ``script`` first, then ``default``."""

    url: str = ""
    script: list[int] = field(default_factory=list)
    default: int = 200
    delay: float = 0.0  # seconds before answering (after the request is recorded)
    received: list[Received] = field(default_factory=list)

    def acknowledged_ids(self) -> list[int]:
        """The ids of every batch answered with a 2xx, in arrival order."""
        return [event_id for request in self.received if request.status < 300 for event_id in request.ids]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status = self.script.pop(0) if self.script else self.default
        headers = {key.decode().lower(): value.decode() for key, value in scope["headers"]}
        self.received.append(Received(headers, body, status))
        if self.delay:
            await asyncio.sleep(self.delay)
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok" if status < 300 else b"boom"})


@contextlib.asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[Receiver]:
    """Serve ``receiver`` on a free loopback port (its ``url`` set)."""
    port = find_free_port()
    server = uvicorn.Server(uvicorn.Config(receiver, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
