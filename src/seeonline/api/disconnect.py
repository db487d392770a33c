"""Cancel a request whose client went away, so its SQL is cancelled too, and run its clean-ups.

Uvicorn keeps running a handler after its client disconnected; asyncpg cancels the running query when the
awaiting task is cancelled. This middleware watches the connection once the body has been read and cancels
the request's task on ``http.disconnect`` before the answer is complete. Clean-ups registered with
:func:`on_request_end` run however the request ended, even when a streamed body never started.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from seeonline.logging import get_logger

log = get_logger(__name__)

Cleanup = Callable[[], Awaitable[None]]
_cleanups: ContextVar[list[Cleanup] | None] = ContextVar("seeonline_request_cleanups", default=None)
DISCONNECT: ReceiveMessage = {"type": "http.disconnect"}


def on_request_end(cleanup: Cleanup) -> bool:
    """Run ``cleanup`` when the current request ends; False outside a request this middleware serves."""
    cleanups = _cleanups.get()
    if cleanups is None:
        return False
    cleanups.append(cleanup)
    return True


class _Receiver:
    """Reads the client's messages for the app, at most one body chunk ahead, then waits for a disconnect."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._messages: asyncio.Queue[ReceiveMessage] = asyncio.Queue()
        self._taken = asyncio.Event()
        self.disconnected = asyncio.Event()

    async def pump(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.disconnected.set()
                return
            self._taken.clear()
            self._messages.put_nowait(message)
            if message.get("more_body", False):
                await self._taken.wait()  # keep uvicorn's back-pressure: one chunk at a time

    async def receive(self) -> ReceiveMessage:
        if self._messages.empty() and self.disconnected.is_set():
            return DISCONNECT
        getter = asyncio.ensure_future(self._messages.get())
        gone = asyncio.ensure_future(self.disconnected.wait())
        try:
            await asyncio.wait({getter, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            self._taken.set()
            return getter.result()
        return DISCONNECT


def cancel_on_disconnect(app: ASGIApp) -> ASGIApp:
    """Litestar middleware factory: see the module docstring."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        receiver = _Receiver(receive)
        answered = False

        async def tracked_send(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True  # from here on a disconnect is the normal end of the exchange
            await send(message)

        cleanups: list[Cleanup] = []
        token = _cleanups.set(cleanups)
        try:
            handler = asyncio.ensure_future(app(scope, receiver.receive, tracked_send))
        finally:
            _cleanups.reset(token)
        pump = asyncio.ensure_future(receiver.pump())
        gone = asyncio.ensure_future(receiver.disconnected.wait())
        try:
            await asyncio.wait({handler, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not handler.done() and not answered:
                handler.cancel()
                log.info("request_cancelled_client_gone", method=scope.get("method"), path=scope.get("path"))
            try:
                await handler
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # the server is stopping this request, not us
        finally:
            for task in (pump, gone, handler):
                task.cancel()
            for cleanup in reversed(cleanups):
                await cleanup()

    return middleware
