"""Cheap SSE readers for the events benchmark, run in a process of their own.

A thousand streams at 1,000 events/s each is a million messages a second: a reader that parsed every
line in Python would be what the benchmark measures. Each stream here is a bare ``asyncio.Protocol``
that, per read, cuts at the last complete message, counts ``id:`` lines with ``bytes.count`` and
parses only the *first* event of the read (the oldest, so the latency it gives bounds every event in
that read from above). A few streams are ``exact``: every event's id and latency is recorded, to
check order, completeness and duplicates.

The parent talks to the process over a pipe: ``open`` (it answers once every stream is subscribed),
``mark`` (forget what was read so far), ``report`` (send the counts and latencies), ``close``.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any, cast

import uvloop

ID_LINE = b"\nid: "
IDS = re.compile(rb"\nid: (\d+)")
CREATED = re.compile(rb'"created_at"\s*:\s*"([^"]+)"')
MESSAGE_END = b"\r\n\r\n"


@dataclass(frozen=True)
class StreamSpec:
    """One stream to open: its query, its API key, and whether every event is recorded."""

    query: str
    key: str
    exact: bool = False


def _latency(created_at: bytes, now: float) -> float:
    return now - datetime.fromisoformat(created_at.decode()).timestamp()


class CountingStream(asyncio.Protocol):
    """One ``GET /events/`` on a raw socket: counts events, samples latency per read."""

    def __init__(self, port: int, spec: StreamSpec) -> None:
        self.request = (
            f"GET /events/?{spec.query} HTTP/1.1\r\nHost: bench\r\nX-API-Key: {spec.key}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()
        self.exact = spec.exact
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.rest = b""
        self.headers_done = False
        self.closed = False
        self.reset()

    def reset(self) -> None:
        """Forget what was read so far (the next scenario counts from zero)."""
        self.count = 0
        self.reads = 0
        self.samples: list[tuple[float, int]] = []  # (latency of the oldest event in a read, events in it)
        self.ids: list[int] = []
        self.latencies: list[float] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's is not an asyncio.Transport subclass
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError("the stream closed before its headers"))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buffer = self.rest + data if self.rest else data
        if not self.headers_done:
            end = buffer.find(MESSAGE_END)
            if end < 0:
                self.rest = buffer
                return
            if b" 200 " not in buffer[: buffer.find(b"\r\n")]:
                self.subscribed.set_exception(ConnectionError(buffer[:200].decode(errors="replace")))
                return
            self.headers_done = True
            self.subscribed.set_result(None)
            buffer = buffer[end + 2 :]  # keep the CRLF, so the first ``id:`` line follows a newline
        cut = buffer.rfind(MESSAGE_END)
        if cut < 0:
            self.rest = buffer
            return
        complete, self.rest = buffer[: cut + 4], buffer[cut + 2 :]
        events = complete.count(ID_LINE)
        if not events:
            return
        self.count += events
        self.reads += 1
        if self.exact:
            self.ids.extend(int(found) for found in IDS.findall(complete))
            self.latencies.extend(_latency(found, now) for found in CREATED.findall(complete))
        first = CREATED.search(complete)
        if first is not None:
            self.samples.append((_latency(first.group(1), now), events))


def weighted_percentiles(samples: list[tuple[float, int]]) -> dict[str, float]:
    """p50/p99/max in ms of values each standing for ``weight`` events."""
    if not samples:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    ordered = sorted(samples)
    total = sum(weight for _, weight in ordered)
    found: dict[str, float] = {}
    for name, share in (("p50_ms", 0.5), ("p99_ms", 0.99)):
        running = 0
        for value, weight in ordered:
            running += weight
            if running >= share * total:
                found[name] = round(value * 1000, 1)
                break
    found["max_ms"] = round(ordered[-1][0] * 1000, 1)
    return found


def report(streams: list[CountingStream]) -> dict[str, Any]:
    """What the streams read since the last mark."""
    samples = [sample for stream in streams for sample in stream.samples]
    return {
        "counts": [stream.count for stream in streams],
        "reads": sum(stream.reads for stream in streams),
        "closed": sum(stream.closed for stream in streams),
        "lag": weighted_percentiles(samples),  # per read, the oldest event's age: an upper bound
        "exact": [{"ids": s.ids, "latencies": s.latencies} for s in streams if s.exact],
    }


async def _serve(port: int, specs: list[StreamSpec], pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    streams: list[CountingStream] = []
    while True:
        command = await loop.run_in_executor(None, pipe.recv)  # a blocking pipe: large reports go whole
        if command == "open":
            try:
                for spec in specs:  # one at a time: a thousand handshakes at once would time out
                    stream = CountingStream(port, spec)
                    await loop.create_connection(lambda s=stream: s, "127.0.0.1", port)  # type: ignore[misc]
                    await asyncio.wait_for(stream.subscribed, 30)
                    streams.append(stream)
            except (OSError, TimeoutError) as exc:
                pipe.send({"error": repr(exc)})
                continue
            pipe.send({"opened": len(streams)})
        elif command == "mark":
            for stream in streams:
                stream.reset()
            pipe.send({"marked": time.time()})
        elif command == "report":
            pipe.send(report(streams))
        elif command == "close":
            for stream in streams:
                if stream.transport is not None:
                    stream.transport.close()
            pipe.send({"closed": len(streams)})
            return


def serve(port: int, specs: list[StreamSpec], pipe: Connection) -> None:
    """The reader process's entry point (``multiprocessing`` target)."""
    uvloop.run(_serve(port, specs, pipe))
