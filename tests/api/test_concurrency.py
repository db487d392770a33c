"""Slot invariants under concurrent load: every counter exact, no tracker over its limit, no 500."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import asyncpg

from tests.api.builders import Client, person, tracker
from tests.api.test_slots import assert_counters_match


async def test_200_concurrent_creations_then_deletions(client: Client, db: asyncpg.Connection[Any]) -> None:
    trackers = [await tracker(client, max_users=20) for _ in range(5)]  # capacity: 100 targets
    people = [await person(client, max_users=20) for _ in range(20)]
    rng = random.Random(7)
    # 200 requests over 150 distinct usernames: some targets are shared, so more than 100 may succeed.
    requests = [(people[i % 20]["id"], f"load_target_{rng.randrange(150):04d}") for i in range(200)]

    async def create(owner: int, name: str) -> Any:
        return await client.post("/tracked-users/", json={"telegram_user_id": owner, "username": name})

    responses = await asyncio.gather(*(create(owner, name) for owner, name in requests))
    codes = sorted({response.status_code for response in responses})
    assert set(codes) <= {201, 409}, [r.text for r in responses if r.status_code not in (201, 409)]
    refusals = {r.json()["code"] for r in responses if r.status_code == 409}
    assert refusals <= {"no_free_slot", "unique"}
    created = [r.json() for r in responses if r.status_code == 201]
    assert len(created) == await db.fetchval("SELECT count(*) FROM tracked_users")
    assert await db.fetchval("SELECT count(*) FROM targets") == 100  # the pool is full, exactly
    assert all(row["tracker_account_id"] is not None for row in created)
    await assert_counters_match(db)
    assert (
        sum([(await client.get(f"/tracker-settings/{t['setting']['id']}")).json()["current_users"] for t in trackers])
        == 100
    )

    deletions = await asyncio.gather(*(client.delete(f"/tracked-users/{row['id']}/") for row in created))
    assert {response.status_code for response in deletions} == {204}
    await assert_counters_match(db)
    assert await db.fetchval("SELECT sum(current_users) FROM tracker_settings") == 0
    assert await db.fetchval("SELECT sum(current_users) FROM telegram_users") == 0


async def test_tracker_deletion_racing_with_creations(client: Client, db: asyncpg.Connection[Any]) -> None:
    trackers = [await tracker(client, max_users=15) for _ in range(4)]
    people = [await person(client, max_users=50) for _ in range(4)]

    async def create(i: int) -> Any:
        return await client.post(
            "/tracked-users/", json={"telegram_user_id": people[i % 4]["id"], "username": f"race_target_{i:04d}"}
        )

    async def delete_trackers() -> list[Any]:
        results = []
        for doomed in trackers[:2]:
            await asyncio.sleep(0.02)
            results.append(await client.delete(f"/tracker-accounts/{doomed['id']}/?force=true"))
        return results

    outcome = await asyncio.gather(delete_trackers(), *(create(i) for i in range(80)))
    deleted, creations = outcome[0], outcome[1:]
    assert [response.status_code for response in deleted] == [204, 204]
    assert {response.status_code for response in creations} <= {201, 409}
    await assert_counters_match(db)
    survivors = {t["id"] for t in trackers[2:]}
    placed = await db.fetch("SELECT tracker_account_id FROM targets WHERE tracker_account_id IS NOT NULL")
    assert {row["tracker_account_id"] for row in placed} <= survivors
    # Whatever could not fit waits; the survivors are full before anything waits.
    waiting = await db.fetchval("SELECT count(*) FROM targets WHERE tracker_account_id IS NULL")
    if waiting:
        assert await db.fetchval("SELECT sum(max_users - current_users) FROM tracker_settings") == 0


async def test_concurrent_subscribe_and_unsubscribe_of_one_target(client: Client, db: asyncpg.Connection[Any]) -> None:
    await tracker(client, max_users=3)
    people = [await person(client) for _ in range(10)]
    for _round in range(5):
        created = await asyncio.gather(
            *(
                client.post("/tracked-users/", json={"telegram_user_id": p["id"], "username": "hot_target"})
                for p in people
            )
        )
        assert {r.status_code for r in created} == {201}
        ids = [r.json()["id"] for r in created]
        extra = await asyncio.gather(
            *(client.delete(f"/tracked-users/{i}/") for i in ids[:5]),
            *(
                client.post("/tracked-users/", json={"telegram_user_id": p["id"], "username": "other_target"})
                for p in people[:5]
            ),
        )
        assert {r.status_code for r in extra} <= {201, 204}
        await assert_counters_match(db)
        await asyncio.gather(*(client.delete(f"/tracked-users/{i}/") for i in ids[5:]))
        await db.execute("DELETE FROM online_statuses")
        rows = await db.fetch("SELECT id FROM tracked_users")
        await asyncio.gather(*(client.delete(f"/tracked-users/{row['id']}/") for row in rows))
        await assert_counters_match(db)
        assert await db.fetchval("SELECT count(*) FROM targets") == 0


async def test_concurrent_patches_and_deletes_of_one_tracked_user_keep_counters(
    client: Client, db: asyncpg.Connection[Any]
) -> None:
    await tracker(client, max_users=100)
    people = [await person(client, max_users=50) for _ in range(4)]
    for round_number in range(10):
        tracked = (
            await client.post(
                "/tracked-users/", json={"telegram_user_id": people[0]["id"], "username": f"patched_{round_number:03d}"}
            )
        ).json()
        path = f"/tracked-users/{tracked['id']}/"
        responses = await asyncio.gather(
            client.patch(path, json={"telegram_user_id": people[1]["id"]}),
            client.patch(path, json={"telegram_user_id": people[2]["id"], "username": f"renamed_{round_number:03d}"}),
            client.patch(path, json={"username": f"other_{round_number:03d}"}),
            client.delete(path) if round_number % 2 else client.patch(path, json={"visible_online": False}),
        )
        assert {r.status_code for r in responses} <= {200, 204, 404}, [r.text for r in responses]
        await assert_counters_match(db)
