"""uvicorn (what ``seeonline api`` runs) against granian: the same limits, probed on real sockets, then throughput.

    .venv/bin/python bench/servers.py [--database-url postgresql://postgres@127.0.0.1:5432/test] [--duration 10]

granian is not a dependency: put it where this interpreter finds it (``pip install granian``, or
``pip install --target DIR granian`` and ``PYTHONPATH=DIR``). Both servers get the same app
(``seeonline.cli.serve:app_from_environment``), the same settings and the closest options each has:
uvicorn through ``seeonline api`` (its limited httptools protocol, ``limit_concurrency``,
``timeout_keep_alive``), granian with ``--http1-header-read-timeout``, ``--http1-buffer-size`` and
``--backpressure`` (it has no body deadline, keep-alive timeout or header count option). Each probe is
the behaviour a test in ``tests/security`` or ``tests/events`` asserts for uvicorn; a server that does
not behave that way within a generous deadline is marked ``no``. Then ``wrk`` (``bench/wrk/``) measures
requests per second with ``--workers`` processes, alternating the servers ``--rounds`` times.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import asyncpg
import httpx

from bench.api import API_KEY, SECRET_KEY, Result, _die_with_parent, _run_async, _seed, database, parse_wrk, wrk
from seeonline.database import migrations
from seeonline.local.embedded_postgres import find_free_port
from seeonline.logging import configure_logging

# The deadlines of tests/security/test_connection_limits.py; every probe allows GIVE_UP_AFTER.
LIMITS = {
    "SEEONLINE_HEADER_TIMEOUT": "1",
    "SEEONLINE_BODY_TIMEOUT": "1",
    "SEEONLINE_KEEP_ALIVE_TIMEOUT": "1",
    "SEEONLINE_MAX_HEADERS": "20",
    "SEEONLINE_MAX_HEADER_BYTES": "4096",
    "SEEONLINE_DB_POOL_SIZE": "4",
    "SEEONLINE_STATEMENT_TIMEOUT": "0",  # only a cancel ends a query that waits for a lock
}
CONCURRENCY = {"SEEONLINE_MAX_CONNECTIONS": "4"}
GIVE_UP_AFTER = 8.0  # seconds; the configured deadlines are 1 s
CLOSED_IN_TIME = 4.0
SERVERS = ("uvicorn", "granian")
APP_FACTORY = "seeonline.cli.serve:app_from_environment"


def command_line(server: str, port: int, workers: int, env: dict[str, str]) -> list[str]:
    """Each server with the closest options it has to the settings in ``env``."""
    if server == "uvicorn":
        return [sys.executable, "-m", "seeonline", "api", "--port", str(port), "--workers", str(workers)]
    header_ms = int(float(env.get("SEEONLINE_HEADER_TIMEOUT", "10")) * 1000)
    buffer = max(8192, int(env.get("SEEONLINE_MAX_HEADER_BYTES", "16384")))  # granian's minimum is 8192
    return [
        sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--loop", "uvloop", "--http", "1",
        "--no-ws", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--http1-header-read-timeout", str(header_ms), "--http1-buffer-size", str(buffer),
        "--backpressure", env.get("SEEONLINE_MAX_CONNECTIONS", "1000"), "--log-level", "warning", APP_FACTORY,
    ]  # fmt: skip


@contextlib.contextmanager
def serving(server: str, url: str, workdir: Path, settings: dict[str, str], workers: int = 1) -> Iterator[str]:
    """``server`` on a free port until the block ends; yields its base URL once /ready answers."""
    port = find_free_port()
    env = dict(os.environ) | {"DATABASE_URL": url, "SEEONLINE_API_KEYS": API_KEY, "SEEONLINE_SECRET_KEY": SECRET_KEY}
    env |= {"SEEONLINE_LOG_LEVEL": "warning", **settings}
    log = (workdir / f"{server}.log").open("ab")
    process = subprocess.Popen(
        command_line(server, port, workers, env),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its workers go with it: the group is signalled
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads yet that could hold locks
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                msg = f"{server} exited with {process.returncode}: see {workdir / f'{server}.log'}"
                raise RuntimeError(msg)
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                msg = f"{server} was not ready in 60 s"
                raise RuntimeError(msg)
            time.sleep(0.1)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


# -- probes: each returns (what happened, whether it is what the tests want) ------------------------------


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


@dataclass
class Probed:
    name: str
    observed: dict[str, str]
    wanted: dict[str, bool]


def probe_all(url: str, workdir: Path) -> list[Probed]:
    """Every probe against each server: one start with LIMITS, one more for the concurrency limit."""
    listed = probes(url)
    results = [Probed(name, {}, {}) for name, _ in listed]
    results.append(Probed("concurrency limit 4, 4 streams open: the next request 503 at once", {}, {}))
    for server in SERVERS:
        print(f"probing {server} ...", flush=True)
        with serving(server, url, workdir, LIMITS) as base:
            for result, (name, probe) in zip(results, listed, strict=False):
                observed, ok = probe(base)
                result.observed[server], result.wanted[server] = observed, ok
                print(f"  {'yes' if ok else 'NO '}  {name}: {observed}", flush=True)
        with serving(server, url, workdir, LIMITS | CONCURRENCY) as base:
            observed, ok = probe_concurrency_limit(base)
            results[-1].observed[server], results[-1].wanted[server] = observed, ok
            print(f"  {'yes' if ok else 'NO '}  {results[-1].name}: {observed}", flush=True)
    return results


# -- throughput -------------------------------------------------------------------------------------------


def throughput(
    url: str, workdir: Path, args: argparse.Namespace, person_ids: tuple[int, int]
) -> dict[str, list[Result]]:
    measured: dict[str, list[Result]] = {server: [] for server in SERVERS}
    for round_number in range(args.rounds):
        for server in SERVERS if round_number % 2 == 0 else reversed(SERVERS):
            with serving(server, url, workdir, {}, workers=args.workers) as base:
                wrk(base, "telegram_user.lua", 2, args.connections, [str(n) for n in person_ids])  # warm-up
                result = Result("a", f"{server} GET /telegram-users/{{id}}/")
                parse_wrk(
                    wrk(base, "telegram_user.lua", args.duration, args.connections, [str(n) for n in person_ids]),
                    result,
                )
                measured[server].append(result)
                print(
                    f"  {server} round {round_number + 1}: {result.rps:,.0f} req/s, "
                    f"p99 {result.p99_ms:.1f} ms, errors {result.errors}",
                    flush=True,
                )
    return measured


def print_tables(probed: list[Probed], measured: dict[str, list[Result]], args: argparse.Namespace) -> None:
    print("\n| behaviour (as the tests want it) | uvicorn | granian |\n|---|---|---|")
    for result in probed:
        cells = [f"{'yes' if result.wanted[s] else '**no**'}: {result.observed[s]}" for s in SERVERS]
        print(f"| {result.name} | {' | '.join(cells)} |")
    if measured:
        print(
            f"\n`wrk -t1 -c{args.connections}` GET /telegram-users/{{id}}/, {args.duration:g} s, "
            f"--workers {args.workers}:\n"
        )
        print("| server | req/s per round | p99 ms per round | errors |\n|---|---|---|---:|")
        for server, results in measured.items():
            rps = ", ".join(f"{r.rps:,.0f}" for r in results)
            p99 = ", ".join(f"{r.p99_ms:.1f}" for r in results)
            print(f"| {server} | {rps} | {p99} | {sum(r.errors for r in results)} |")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a server to create the scratch database on (else embedded)")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="processes per server for the throughput runs")
    parser.add_argument("--rounds", type=int, default=2, help="throughput runs per server, alternating")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--no-probes", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if importlib.util.find_spec("granian") is None:
        print("granian is not importable: pip install granian (see the docstring)", file=sys.stderr)
        return 2
    if not args.no_throughput and shutil.which("wrk") is None:
        print("wrk is not installed: apt-get update && apt-get install -y wrk", file=sys.stderr)
        return 2
    configure_logging("warning")
    workdir = Path(tempfile.mkdtemp(prefix="seeonline-servers-"))
    workdir.chmod(0o755)  # an embedded server runs as an unprivileged user when we are root
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; logs in {workdir}", flush=True)
    with database(args, workdir) as url:
        migrations.upgrade(url)
        seeded, _ = _run_async(_seed(url))
        probed = [] if args.no_probes else probe_all(url, workdir)
        measured = {} if args.no_throughput else throughput(url, workdir, args, seeded.person_ids)
    print_tables(probed, measured, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
