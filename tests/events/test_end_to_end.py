"""End to end on the sandbox: flips become events on open streams, filtered, resumable, across a Postgres restart."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import httpx

from seeonline.sandbox import SandboxServer
from seeonline.settings import Settings
from seeonline_supervisor.process import ProcessOptions
from tests.events.support import SseClient, open_stream, serving
from tests.polling import wait_until
from tests.supervisor.test_end_to_end import _register_tracker, running_supervisor
from tests.support.keys import API_KEY
from tests.support.postgres import PostgresServer

logging.getLogger("telethon").setLevel(logging.ERROR)


async def _flip(sandbox: SandboxServer, db: asyncpg.Connection[Any], username: str, online: bool) -> None:
    """Set a sandbox person's status and wait until the worker recorded it."""
    before = await db.fetchval("SELECT count(*) FROM events")
    sandbox.world.set_status(username, online=online)

    async def recorded() -> bool:
        return bool(await db.fetchval("SELECT count(*) FROM events") > before)

    await wait_until(recorded, timeout=45, what=f"{username} {'online' if online else 'offline'} recorded")


def _statuses(stream: SseClient) -> list[tuple[int, bool]]:
    return [(m.data["tracked_user_id"], m.data["is_online"]) for m in stream.of("status")]


async def test_sandbox_flips_stream_in_order_filtered_resumable_and_survive_a_postgres_restart(
    settings: Settings, sandbox: SandboxServer, postgres_server: PostgresServer, db: asyncpg.Connection[Any]
) -> None:
    server = postgres_server.require_embedded()
    async with serving(settings) as base, httpx.AsyncClient(base_url=base, headers={"X-API-Key": API_KEY}) as http:
        account, _tracker = await _register_tracker(http, sandbox)  # type: ignore[arg-type]
        sandbox.world.add_person("dora_events", last_seen_ago=600)
        people = [(await http.post("/telegram-users/", json={"telegram_id": 9100 + n})).json() for n in range(3)]
        subscriptions = []
        for person, mode in zip(people, ("online", "both", "none"), strict=True):
            created = await http.post(
                "/tracked-users/",
                json={"telegram_user_id": person["id"], "username": "dora_events", "notify_mode": mode},
            )
            assert created.status_code == 201, created.text
            subscriptions.append(created.json())
        online_only, both, silent = (s["id"] for s in subscriptions)
        options = ProcessOptions(start_seconds=1.0, stop_grace=5.0, backoff_base=0.2)
        async with running_supervisor(settings, options):

            async def enrolled() -> bool:
                return len(sandbox.calls_to("contacts.addContact", account)) == 1

            await wait_until(enrolled, timeout=60, what="the worker to add the target as a contact")
            await wait_until(lambda: db.fetchval("SELECT count(*) FROM events"), timeout=30, what="the first status")
            start = await db.fetchval("SELECT max(id) FROM events")
            streams = {
                person["id"]: open_stream(base, {"telegram_user_id": person["id"], "notify_only": "true"})
                for person in people
            }
            opened = {key: await stream.__aenter__() for key, stream in streams.items()}
            try:
                async with open_stream(base, {"after_id": start}) as everything:
                    for online in (True, False, True):
                        await _flip(sandbox, db, "dora_events", online)
                    await wait_until(lambda: len(everything.of("status")) == 9, what="3 flips x 3 subscribers")
                    ids = [m.id for m in everything.of("status")]
                    assert ids == sorted(set(ids))
                    states = [online for _, online in _statuses(everything)]
                    assert states == [True] * 3 + [False] * 3 + [True] * 3  # in order, per flip
                    last_seen = ids[-1]
                # Disconnected: a burst commits meanwhile, then we resume from the last id we saw.
                for online in (False, True, False):
                    await _flip(sandbox, db, "dora_events", online)
                async with open_stream(base, headers={"Last-Event-ID": str(last_seen)}) as resumed:
                    await wait_until(lambda: len(resumed.of("status")) == 9, what="the missed burst")
                    resumed_ids = [m.id for m in resumed.of("status")]
                    everything_ids = [row[0] for row in await db.fetch("SELECT id FROM events WHERE id > $1", start)]
                    assert ids + resumed_ids == sorted(everything_ids)  # no gap, no duplicate

                    # Postgres restarts under the open streams; they stay open and keep delivering.
                    await asyncio.to_thread(server.restart)
                    await wait_until(lambda: len(resumed.of("status")) == 9, what="nothing lost")  # still open
                    db_after = await asyncpg.connect(settings.asyncpg_dsn)
                    try:
                        await _flip(sandbox, db_after, "dora_events", True)
                    finally:
                        await db_after.close()
                    await wait_until(lambda: len(resumed.of("status")) == 12, timeout=30, what="events after restart")

                # notify_mode, per subscriber: online hears onlines, both hears all, none nothing.
                await wait_until(lambda: len(opened[people[1]["id"]].of("status")) == 7, what="both's events")
                assert _statuses(opened[people[1]["id"]]) == [
                    (both, s) for s in (True, False, True, False, True, False, True)
                ]
                await wait_until(lambda: len(opened[people[0]["id"]].of("status")) == 4, what="online's events")
                assert {s for _, s in _statuses(opened[people[0]["id"]])} == {True}
                assert {t for t, _ in _statuses(opened[people[0]["id"]])} == {online_only}
                assert opened[people[2]["id"]].of("status") == []
                assert silent not in {t for t, _ in _statuses(opened[people[1]["id"]])}
            finally:
                for stream in streams.values():
                    await stream.__aexit__(None, None, None)
