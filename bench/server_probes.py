"""The probes of ``bench/servers.py``: what the tests assert for uvicorn, on real sockets, against any server.

Each probe takes the server's base URL and returns what happened and whether it is what the tests want.
The server runs with 1 s deadlines; a probe gives it ``GIVE_UP_AFTER`` before it calls a behaviour missing.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import asyncpg
import httpx

from bench.api import API_KEY, _run_async

GIVE_UP_AFTER = 8.0  # seconds; the configured deadlines are 1 s
CLOSED_IN_TIME = 4.0


def address(base: str) -> tuple[str, int]:
    host, port = base.removeprefix("http://").split(":")
    return host, int(port)


def connect(base: str) -> socket.socket:
    sock = socket.create_connection(address(base))
    sock.settimeout(GIVE_UP_AFTER)
    return sock


def until_closed(sock: socket.socket) -> tuple[bytes, float | None]:
    """What the server sends until it closes, and after how many seconds (None: still open at the deadline)."""
    began, received = time.monotonic(), b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return received, None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return received, time.monotonic() - began
        received += chunk


def describe(answer: bytes, after: float | None) -> str:
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace")[9:] or "no answer"
    body = answer.partition(b"\r\n\r\n")[2][:40].decode(errors="replace")
    closed = f"closed after {after:.1f} s" if after is not None else f"still open after {GIVE_UP_AFTER:.0f} s"
    return f"{status}{f' {body!r}' if body else ''}, {closed}"


def closed_in_time(after: float | None) -> bool:
    return after is not None and after <= CLOSED_IN_TIME


def probe_silent(base: str) -> tuple[str, bool]:
    with connect(base) as sock:
        answer, after = until_closed(sock)
    return describe(answer, after), answer.startswith(b"HTTP/1.1 408") and closed_in_time(after)


def probe_trickled_headers(base: str) -> tuple[str, bool]:
    request = f"GET /telegram-users/ HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n" + "X-Pad: y\r\n" * 200
    with connect(base) as sock:
        began, sent = time.monotonic(), 0
        for byte in request.encode():
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
            time.sleep(0.05)  # 20 bytes a second
            if time.monotonic() - began > GIVE_UP_AFTER:
                return f"still reading after {GIVE_UP_AFTER:.0f} s ({sent} bytes)", False
        answer, _ = until_closed(sock)
    after = time.monotonic() - began
    return f"{describe(answer, after)} ({sent} bytes sent)", after <= CLOSED_IN_TIME


def post_head(length: int) -> bytes:
    return (
        f"POST /telegram-users/ HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def probe_stalled_body(base: str) -> tuple[str, bool]:
    with connect(base) as sock:
        sock.sendall(post_head(1000) + b'{"telegram_id": ')
        answer, after = until_closed(sock)
    return describe(answer, after), closed_in_time(after) and b" 201 " not in answer


def probe_trickled_body(base: str) -> tuple[str, bool]:
    with connect(base) as sock:
        sock.sendall(post_head(1000))
        began = time.monotonic()
        while time.monotonic() - began < GIVE_UP_AFTER:
            try:
                sock.sendall(b" ")  # 5 bytes a second: 1000 would take over 3 minutes
            except (BrokenPipeError, ConnectionResetError):
                after = time.monotonic() - began
                return f"cut after {after:.1f} s", after <= CLOSED_IN_TIME
            time.sleep(0.2)
        return f"still reading after {GIVE_UP_AFTER:.0f} s", False


def probe_idle_keep_alive(base: str) -> tuple[str, bool]:
    with connect(base) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer, after = until_closed(sock)
    return describe(answer, after), answer.startswith(b"HTTP/1.1 200") and closed_in_time(after)


def probe_stray_line_breaks(base: str) -> tuple[str, bool]:
    with connect(base) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        began = time.monotonic()
        while time.monotonic() - began < GIVE_UP_AFTER:
            time.sleep(0.5)
            try:
                sock.sendall(b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                after = time.monotonic() - began
                return f"closed after {after:.1f} s", after <= CLOSED_IN_TIME
        return f"still open after {GIVE_UP_AFTER:.0f} s", False


def header_probe(headers: str, path: str = "/health") -> Callable[[str], tuple[str, bool]]:
    def probe(base: str) -> tuple[str, bool]:
        with connect(base) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n".encode())
            answer, after = until_closed(sock)
        return describe(answer, after), answer.startswith(b"HTTP/1.1 431") and b'{"detail": ' in answer

    return probe


def many_headers(count: int) -> str:
    return "".join(f"X-Many-{i}: v\r\n" for i in range(count))


def big_header(size: int) -> str:
    return "X-Big: " + "b" * size + "\r\n"


def probe_within_limits(base: str) -> tuple[str, bool]:
    headers = "".join(f"X-Few-{i}: v\r\n" for i in range(10))
    with connect(base) as sock:
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n".encode())
        answer, after = until_closed(sock)
    return describe(answer, after), answer.startswith(b"HTTP/1.1 200")


def open_event_stream(base: str) -> socket.socket:
    sock = connect(base)
    sock.sendall(f"GET /events/ HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n\r\n".encode())
    return sock


def status_of(sock: socket.socket) -> str:
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return head.split(b"\r\n", 1)[0].decode(errors="replace")[9:12] or "none"


def probe_event_streams_released(base: str) -> tuple[str, bool]:
    """32 SSE streams per key: all taken, then their clients leave; a new stream must be accepted again."""
    streams = [open_event_stream(base) for _ in range(32)]
    statuses = {status_of(sock) for sock in streams}
    with open_event_stream(base) as refused:
        beyond = status_of(refused)
    for sock in streams:
        sock.close()
    began = time.monotonic()
    while time.monotonic() - began < GIVE_UP_AFTER:
        with open_event_stream(base) as again:
            if status_of(again) == "200":
                after = time.monotonic() - began
                return f"32 open ({statuses}), 33rd {beyond}; released {after:.1f} s after the clients left", True
        time.sleep(0.2)
    return f"32 open ({statuses}), 33rd {beyond}; not released after {GIVE_UP_AFTER:.0f} s", False


async def _api_queries_waiting(db: asyncpg.Connection) -> int:
    await db.execute("SELECT pg_stat_clear_snapshot()")
    count: int = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'seeonline-api'"
        " AND wait_event_type = 'Lock' AND query LIKE '%telegram_users%'"
    )
    return count


async def _cancel_on_leave(base: str, url: str) -> tuple[str, bool]:
    db = await asyncpg.connect(url)
    try:
        async with db.transaction():
            await db.execute("LOCK TABLE telegram_users IN ACCESS EXCLUSIVE MODE")
            with connect(base) as sock:
                sock.sendall(f"GET /telegram-users/ HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n\r\n".encode())
                began = time.monotonic()
                while await _api_queries_waiting(db) == 0:
                    if time.monotonic() - began > GIVE_UP_AFTER:
                        return "the query never started", False
                    await asyncio.sleep(0.05)
            left = time.monotonic()
            while time.monotonic() - left < GIVE_UP_AFTER:
                if await _api_queries_waiting(db) == 0:
                    return f"cancelled {time.monotonic() - left:.1f} s after the client left", True
                await asyncio.sleep(0.05)
            return f"still waiting {GIVE_UP_AFTER:.0f} s after the client left", False
    finally:
        await db.close()


def probe_slow_readers(base: str) -> tuple[str, bool]:
    """12 clients open the unpaginated status list (1M rows) and stop reading; others must still be served."""
    stalled = []
    for _ in range(12):
        sock = socket.create_connection(address(base))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(f"GET /online-statuses/ HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n\r\n".encode())
        stalled.append(sock)
    try:
        time.sleep(1)
        began = time.monotonic()
        with httpx.Client(base_url=base, headers={"X-API-Key": API_KEY}, timeout=5) as http:
            codes = [http.get("/telegram-users/1/").status_code for _ in range(5)]
        return f"{codes} in {time.monotonic() - began:.2f} s", codes == [200] * 5
    except httpx.TimeoutException:
        return "no answer in 5 s", False
    finally:
        for sock in stalled:
            sock.close()


def probe_concurrency_limit(base: str) -> tuple[str, bool]:
    """SEEONLINE_MAX_CONNECTIONS=4 and 4 event streams open: the next request is refused at once (503)."""
    streams = [open_event_stream(base) for _ in range(4)]
    try:
        began = time.monotonic()
        try:
            code = httpx.get(f"{base}/health", timeout=5).status_code
        except httpx.TimeoutException:
            return "no answer in 5 s (queued)", False
        return f"{code} after {time.monotonic() - began:.2f} s", code == 503
    finally:
        for sock in streams:
            sock.close()


Probe = Callable[[str], tuple[str, bool]]


def probes(url: str) -> list[tuple[str, Probe]]:
    """What the tests assert for uvicorn, in order; each takes the server's base URL."""
    return [
        ("connection that sends nothing: 408, closed after the header timeout", probe_silent),
        ("headers trickled at 20 B/s: cut off at the header timeout", probe_trickled_headers),
        ("body that stops after 16 of 1000 bytes: cut off at the body timeout", probe_stalled_body),
        ("body trickled at 5 B/s: cut off at the body timeout", probe_trickled_body),
        ("idle keep-alive connection: closed after the keep-alive timeout", probe_idle_keep_alive),
        ("stray CRLFs after an answer: closed anyway", probe_stray_line_breaks),
        ("30 headers (limit 20): 431 with a JSON body", header_probe(many_headers(30))),
        ("an 8,000-byte header (limit 4,096): 431 with a JSON body", header_probe(big_header(8000))),
        ("an 8,000-byte URL (limit 4,096): 431 with a JSON body", header_probe("", "/health?" + "q" * 8000)),
        ("120 headers (beyond any limit here): 431 with a JSON body", header_probe(many_headers(120))),
        ("a 40,000-byte header (beyond any limit here): 431 with a JSON body", header_probe(big_header(40_000))),
        ("10 headers, within the limits: 200", probe_within_limits),
        ("SSE: 32 streams per key, released when their clients leave", probe_event_streams_released),
        (
            "unpaginated list, client leaves: its query is cancelled",
            lambda base: _run_async(_cancel_on_leave(base, url)),
        ),
        ("12 stalled readers of a 1M-row list: other requests still answered", probe_slow_readers),
    ]
