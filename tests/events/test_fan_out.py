"""The cheap fan-out: routing by filter is the filter rule, shared chunks are Litestar's bytes, slow streams catch up.

A stream that is behind gets what queued for it in few, bounded writes; whatever it missed, and however
its backlog and the live chunks overlap, it sends every event once, in order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.response import ServerSentEventMessage

from seeonline.database.pool import create_pool
from seeonline.events.hub import EventHub, Subscriber
from seeonline.events.log import EventFilter, EventRecord
from seeonline.events.routing import Router
from seeonline.events.stream import EventStream, StreamRequest
from seeonline.events.wire import Chunk, encode_event
from seeonline.settings import Settings
from tests.events.support import add_tracked_users, insert_statuses, open_stream, serving
from tests.polling import wait_until

NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
IDS = re.compile(rb"(?:^|\n)id: (\d+)\r\n")


def _litestar(event: EventRecord) -> bytes:
    return ServerSentEventMessage(data=event.data, event=event.type, id=event.id).encode()


def _ids(message: ServerSentEventMessage) -> list[int]:
    return [int(found) for found in IDS.findall(message.encode())]


@dataclass(frozen=True, eq=False)
class Member:
    """A stand-in for a subscribed stream (the router needs only its filter)."""

    filter: EventFilter


events = st.lists(
    st.builds(
        EventRecord,
        id=st.just(0),
        type=st.sampled_from(["status", "visibility"]),
        recorded_at=st.just(NOW),
        is_online=st.sampled_from([True, False, None]),
        tracked_user_id=st.integers(1, 4),
        telegram_user_id=st.integers(1, 3),
        notify_mode=st.sampled_from(["online", "offline", "both", "none"]),
        mute_until=st.sampled_from([None, NOW - datetime.timedelta(hours=1), NOW + datetime.timedelta(hours=1)]),
        data=st.sampled_from(['{"a":1}', '{"b":"x y"}', '{"c":"line\\nbreak"}']),
    ),
    max_size=40,
)
filters = st.lists(
    st.builds(
        EventFilter,
        types=st.sampled_from([frozenset({"status"}), frozenset({"visibility"}), frozenset({"status", "visibility"})]),
        telegram_user_id=st.sampled_from([None, 1, 2, 3]),
        tracked_user_id=st.sampled_from([None, 1, 2, 4]),
        notify_only=st.booleans(),
    ),
    min_size=1,
    max_size=12,
)


@given(events, filters)
def test_routing_gives_each_stream_what_its_filter_matches_as_litestar_would_encode_it(
    batch: list[EventRecord], wanted: list[EventFilter]
) -> None:
    batch = [dataclasses.replace(event, id=n + 1) for n, event in enumerate(batch)]
    router: Router[Member] = Router()
    members = [Member(f) for f in wanted] + [Member(wanted[0])]  # two streams with one filter
    for member in members:
        router.add(member)
    routed = router.route(batch, NOW)
    chunk_of = {member: chunk for group, chunk in routed for member in group.members}
    for member in members:
        expected = [event for event in batch if member.filter.matches(event, NOW)]
        chunk = chunk_of.get(member)
        assert (chunk.ids if chunk else []) == [event.id for event in expected]
        assert (chunk.encode() if chunk else b"") == b"".join(_litestar(event) for event in expected)
    assert chunk_of.get(members[0]) is chunk_of.get(members[-1])  # encoded once, shared
    for member in members:
        assert router.remove(member)
    assert len(router) == 0
    assert router.route(batch, NOW) == []


def test_an_event_is_encoded_exactly_as_litestar_encodes_it() -> None:
    for data in ['{"a":1}', "two\nlines", "cr\rlf\r\nend", ""]:
        event = EventRecord(7, "status", NOW, True, 1, 2, "both", None, data)
        assert encode_event(event) == _litestar(event)


def test_a_stream_sends_only_what_its_backlog_has_not_sent() -> None:
    chunks = [Chunk.of(ids, [f"id: {n}\r\n\r\n".encode() for n in ids]) for ids in ([1, 2, 3], [4, 5], [6])]
    stream = EventStream.__new__(EventStream)  # only its cursor matters here
    stream.cursor = 4  # the backlog sent up to 4
    fresh = stream._fresh(chunks)
    assert fresh is not None and _ids(fresh) == [5, 6]
    assert stream.cursor == 6
    assert stream._fresh(chunks) is None  # nothing twice
    stream.cursor = 3
    assert stream._fresh(chunks[1:2]) is chunks[1]  # a whole chunk goes out as it was built, shared


@pytest.fixture
async def hub(database_url: str) -> AsyncIterator[EventHub]:
    """A started hub on its own pool."""
    pool = await create_pool(database_url, size=4)
    hub = EventHub(database_url, pool)
    await hub.start()
    await wait_until(hub.connected.is_set, what="the hub's listener")
    yield hub
    await hub.stop()
    await pool.close()


async def _fanned_out(hub: EventHub, db: asyncpg.Connection[Any]) -> None:
    newest: int = await db.fetchval("SELECT max(id) FROM events")
    await wait_until(lambda: hub.cursor == newest, what="the hub to fan out the commit")


async def _stalled_then_drained(
    hub: EventHub, db: asyncpg.Connection[Any], tracked: int, after_id: int | None
) -> tuple[list[ServerSentEventMessage], list[int], Subscriber]:
    """Open a stream, take its first write, stall while 10 commits are fanned out one by one, then read it all."""
    subscriber = hub.subscribe("key", EventFilter())
    request = StreamRequest(filter=subscriber.filter, after_id=after_id, max_age_s=600)
    messages = EventStream(hub, hub.pool, request, subscriber).messages()
    try:
        if after_id is None:
            await insert_statuses(db, tracked, [True, False] * 5)
        frames = [await asyncio.wait_for(anext(messages), 10)]
        for _ in range(10):  # the consumer reads nothing meanwhile
            await insert_statuses(db, tracked, [True, False] * 15)
            await _fanned_out(hub, db)
        assert len(subscriber.pending) >= 10  # one chunk per read of the log, queued
        total = await db.fetchval("SELECT count(*) FROM events")
        received = _ids(frames[0])
        while len(received) < total:
            frames.append(await asyncio.wait_for(anext(messages), 10))
            received += _ids(frames[-1])
        assert not subscriber.closed
        return frames, received, subscriber
    finally:
        await messages.aclose()


async def test_a_stalled_live_stream_catches_up_in_few_bounded_writes_every_event_once_in_order(
    hub: EventHub, db: asyncpg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("seeonline.events.stream.WRITE_LIMIT", 30_000)
    [tracked] = await add_tracked_users(db, 1)
    frames, received, _ = await _stalled_then_drained(hub, db, tracked, after_id=None)
    assert received == [row[0] for row in await db.fetch("SELECT id FROM events ORDER BY id")]
    per_event = sum(len(frame.encode()) for frame in frames) / len(received)
    assert len(frames) <= 6  # the 10 queued chunks (300 events, ~100 kB) went out in a few joined writes
    assert max(len(_ids(frame)) for frame in frames) > 30  # some write joined several chunks…
    assert all(len(frame.encode()) < 30_000 + 31 * per_event for frame in frames)  # …up to the bound


async def test_a_stream_resuming_far_behind_while_events_commit_gets_each_once_in_order(
    hub: EventHub, db: asyncpg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("seeonline.events.stream.PAGE_SIZE", 40)  # a backlog of several pages
    [tracked] = await add_tracked_users(db, 1)
    await insert_statuses(db, tracked, [True, False] * 60)
    _, received, _ = await _stalled_then_drained(hub, db, tracked, after_id=0)
    assert received == [row[0] for row in await db.fetch("SELECT id FROM events ORDER BY id")]


async def test_a_resumed_stream_racing_steady_commits_sends_each_event_once_in_order(
    settings: Settings, db: asyncpg.Connection[Any], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("seeonline.events.stream.PAGE_SIZE", 25)
    [tracked] = await add_tracked_users(db, 1)
    await insert_statuses(db, tracked, [True, False] * 50)
    writer = await asyncpg.connect(database_url)

    async def keep_committing() -> None:
        for _ in range(40):
            await insert_statuses(writer, tracked, [True, False, True])
            await asyncio.sleep(0.005)

    try:
        async with serving(settings) as base, open_stream(base, {"after_id": 0}) as stream:
            await keep_committing()
            total = await db.fetchval("SELECT count(*) FROM events")
            await wait_until(lambda: len(stream.of("status")) >= total, what="every event")
            received = [m.id for m in stream.of("status")]
    finally:
        await writer.close()
    assert received == [row[0] for row in await db.fetch("SELECT id FROM events ORDER BY id")]
