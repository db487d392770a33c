"""Uvicorn's httptools protocol with the limits it lacks: header and body read timeouts, header count and size.

Uvicorn only times out a keep-alive connection *after* an answer: a client that connects and sends nothing,
trickles its headers a byte at a time, or never finishes its body holds the connection for ever, and
httptools accepts any number and size of headers. Here a deadline runs from the moment a request is awaited
(connection opened, or data after an answer) until its headers are complete, and another from then until
its body is complete; when one passes the connection is closed (with a ``408`` if nothing was answered yet).
Too many or too large headers are answered ``431``.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol


class HeaderLimitError(Exception):
    """The request's headers pass the configured count or size."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with read deadlines and header bounds (set the class attributes via ``limited``)."""

    header_timeout = 10.0
    body_timeout = 30.0
    max_headers = 100
    max_header_bytes = 16 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_headers = False
        self._header_count = 0
        self._header_bytes = 0
        self._refusal: tuple[int, str] | None = None

    # Deadlines

    def _arm(self, seconds: float, *, headers: bool) -> None:
        self._disarm()
        self._reading_headers = headers
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _idle(self) -> bool:
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._reading_headers and self._idle():
            self._send_error(408, "Request headers not received in time.")
        else:
            self.transport.close()  # the handler sees a disconnect

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout, headers=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Bytes after an answer that begin no request (stray CRLFs) cancelled the keep-alive timer: re-arm.
        if self._deadline is None and self._idle() and not self.transport.is_closing():
            self._arm(self.header_timeout, headers=True)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0
        self._header_bytes = 0
        if not self._reading_headers or self._deadline is None:
            self._arm(self.header_timeout, headers=True)

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.max_headers:
            self._refusal = (431, f"More than {self.max_headers} request headers.")
            raise HeaderLimitError
        self._count_header_bytes(len(name) + len(value))
        super().on_header(name, value)

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            self._refusal = (431, f"Request line and headers longer than {self.max_header_bytes} bytes.")
            raise HeaderLimitError

    def on_headers_complete(self) -> None:
        self._disarm()
        self._reading_headers = False
        queued = not self._idle()  # a pipelined request waits unread: its body is not late
        super().on_headers_complete()
        if not queued:
            self._arm(self.body_timeout, headers=False)

    def on_message_complete(self) -> None:
        if not self._reading_headers:
            self._disarm()
        super().on_message_complete()

    def _unsupported_upgrade_warning(self) -> None:
        """An ``Upgrade`` request is served as plain HTTP (no route speaks another protocol; ``ws="none"``).

        Uvicorn would log two warnings for each (one advising to install a WebSocket library): anyone could fill
        the log with them.
        """

    # Refusals in the contract's error shape

    def send_400_response(self, msg: str) -> None:
        """Uvicorn calls this on any parser error; ours (header limits) carry their own status."""
        status, detail = self._refusal or (400, msg)
        self._refusal = None
        self._send_error(status, detail)

    def _send_error(self, status: int, detail: str) -> None:
        self._disarm()
        body = ('{"detail": "%s"}' % detail).encode()  # noqa: UP031 - detail is our own text, no quotes
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
        self.transport.write(b"".join(head))
        self.transport.close()


def limited(
    *, header_timeout: float, body_timeout: float, max_headers: int, max_header_bytes: int
) -> type[LimitedHttpToolsProtocol]:
    """The protocol class with these limits, for ``uvicorn.Config(http=...)``."""
    return type(
        "ConfiguredHttpToolsProtocol",
        (LimitedHttpToolsProtocol,),
        {
            "header_timeout": header_timeout,
            "body_timeout": body_timeout,
            "max_headers": max_headers,
            "max_header_bytes": max_header_bytes,
        },
    )


class SettingsLimitedHttpToolsProtocol(LimitedHttpToolsProtocol):
    """The limits of the environment's settings: the class several worker processes import by name
    (``uvicorn.run(workers=N)`` pickles its config for each process, and a class made by ``limited`` is not
    importable)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.header_timeout, self.body_timeout, self.max_headers, self.max_header_bytes = _settings_limits()
        super().__init__(*args, **kwargs)


SETTINGS_PROTOCOL = f"{__name__}:{SettingsLimitedHttpToolsProtocol.__name__}"


@functools.cache
def _settings_limits() -> tuple[float, float, int, int]:
    from seeonline.settings import load_settings  # noqa: PLC0415 - read in the worker process

    settings = load_settings()
    return settings.header_timeout, settings.body_timeout, settings.max_headers, settings.max_header_bytes
