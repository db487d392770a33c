"""The HTTP server closes idle, slow-header and slow-body connections, and bounds the headers (a real process).

The server runs with one-second deadlines; each test gives it a generous multiple of that before failing,
so the assertions are about whether the server closes the connection, not about how fast.
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.api.live_server import running_api
from tests.support.keys import API_KEY
from tests.support.postgres import PostgresServer, new_database

LIMITS = {
    "SEEONLINE_HEADER_TIMEOUT": "1",
    "SEEONLINE_BODY_TIMEOUT": "1",
    "SEEONLINE_KEEP_ALIVE_TIMEOUT": "1",
    "SEEONLINE_MAX_HEADERS": "20",
    "SEEONLINE_MAX_HEADER_BYTES": "4096",
}
GIVE_UP_AFTER = 15.0  # seconds: far beyond the configured 1 s, so only a server that never closes fails


@pytest.fixture(scope="module")
async def limits_database(postgres_server: PostgresServer, template_database: str) -> AsyncIterator[str]:
    name = await new_database(postgres_server, template_database)
    yield postgres_server.url(name)
    await postgres_server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def server(limits_database: str) -> Iterator[tuple[str, int]]:
    """One server for the module: nothing here writes to the database."""
    with running_api(limits_database, **LIMITS) as base:
        host, port = base.removeprefix("http://").split(":")
        yield host, int(port)


def connect(server: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(server)
    sock.settimeout(GIVE_UP_AFTER)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; fails when it keeps the connection past the deadline."""
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            pytest.fail(f"the server kept the connection open for {GIVE_UP_AFTER}s (got {received[:200]!r})")
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def test_a_connection_that_sends_nothing_is_closed(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer


def test_headers_trickled_byte_by_byte_are_cut_off(server: tuple[str, int]) -> None:
    request = f"GET /telegram-users/ HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n" + "X-Pad: y\r\n" * 200
    with connect(server) as sock:
        deadline = time.monotonic() + GIVE_UP_AFTER
        for byte in request.encode():
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.05)  # 20 bytes a second: the whole request would take over 2 minutes
            if time.monotonic() > deadline:
                pytest.fail("the server was still reading trickled headers after the deadline")
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408") or answer == b"", answer


def test_a_body_that_never_completes_is_cut_off(server: tuple[str, int]) -> None:
    head = (
        f"POST /telegram-users/ HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    with connect(server) as sock:
        sock.sendall(head.encode() + b'{"telegram_id": ')
        answer = read_until_closed(sock)
    assert b" 201 " not in answer


def test_an_idle_keep_alive_connection_is_closed(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200"), answer


def test_stray_line_breaks_do_not_keep_a_connection_open(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + GIVE_UP_AFTER
        closed = False
        while time.monotonic() < deadline and not closed:
            time.sleep(0.5)  # less than the keep-alive timeout each time
            try:
                sock.sendall(b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
        assert closed, "stray CRLFs kept the connection open"


@pytest.mark.parametrize(
    "headers",
    ["".join(f"X-Many-{i}: v\r\n" for i in range(30)), "X-Big: " + "b" * 8000 + "\r\n", ""],
    ids=["too-many", "too-large", "long-url"],
)
def test_too_many_or_too_large_headers_are_431(server: tuple[str, int], headers: str) -> None:
    path = "/health" if headers else "/health?" + "q" * 8000
    with connect(server) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b'{"detail": ' in answer


def test_requests_within_the_limits_are_served(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        headers = "".join(f"X-Few-{i}: v\r\n" for i in range(10))
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n".encode())
        assert read_until_closed(sock).startswith(b"HTTP/1.1 200")


def test_a_websocket_upgrade_is_answered_as_plain_http(server: tuple[str, int]) -> None:
    # No route speaks WebSocket: the request is served like any other, in the JSON error shape where it fails.
    upgrade = (
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
    )
    with connect(server) as sock:
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: x\r\n{upgrade}\r\n".encode())
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    with connect(server) as sock:
        sock.sendall(f"GET /telegram-users/ HTTP/1.1\r\nHost: x\r\n{upgrade}\r\n".encode())
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 401"), answer
    assert b'"detail"' in answer, answer
