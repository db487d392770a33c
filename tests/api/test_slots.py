"""The slot engine seen through the API: least-loaded assignment and every rebalancing trigger."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tests.api.builders import Client, follow, load_of, person, put_in_flood_wait, tracker, username


async def assert_counters_match(db: asyncpg.Connection[Any]) -> None:
    """Every counter equals the real count and no tracker is over its limit."""
    trackers = await db.fetch(
        "SELECT s.tracker_account_id, s.current_users, s.max_users,"
        " (SELECT count(*) FROM targets t WHERE t.tracker_account_id = s.tracker_account_id) AS real"
        " FROM tracker_settings s"
    )
    for row in trackers:
        assert row["current_users"] == row["real"], dict(row)
        assert row["current_users"] <= row["max_users"], dict(row)
    people = await db.fetch(
        "SELECT p.id, p.current_users, (SELECT count(*) FROM tracked_users tu WHERE tu.telegram_user_id = p.id) AS real"
        " FROM telegram_users p"
    )
    for row in people:
        assert row["current_users"] == row["real"], dict(row)
    orphans = await db.fetchval(
        "SELECT count(*) FROM targets t WHERE NOT EXISTS (SELECT 1 FROM tracked_users tu WHERE tu.target_id = t.id)"
    )
    assert orphans == 0


async def test_new_targets_go_to_the_tracker_with_most_free_slots(client: Client, db: asyncpg.Connection[Any]) -> None:
    small = await tracker(client, max_users=2)
    big = await tracker(client, max_users=5)
    owner = await person(client, max_users=10)
    placed = [(await follow(client, owner, username()))["tracker_account_id"] for _ in range(5)]
    # Free slots 2 vs 5: big takes targets until the two tie at 2, the tie goes to the older tracker.
    assert placed == [big["id"], big["id"], big["id"], small["id"], big["id"]]
    assert (await load_of(client, small), await load_of(client, big)) == (1, 4)
    await assert_counters_match(db)


async def test_unusable_trackers_get_nothing(client: Client) -> None:
    await tracker(client, active=False)
    await tracker(client, session=False)
    owner = await person(client)
    response = await client.post("/tracked-users/", json={"telegram_user_id": owner["id"], "username": username()})
    assert response.status_code == 409
    assert response.json()["code"] == "no_free_slot"


async def test_deleting_a_tracker_moves_its_targets(client: Client, db: asyncpg.Connection[Any]) -> None:
    doomed = await tracker(client, max_users=3)
    owner = await person(client, max_users=10)
    tracked = [await follow(client, owner, username()) for _ in range(3)]
    heir_a = await tracker(client, max_users=2)
    heir_b = await tracker(client, max_users=5)
    assert (await client.delete(f"/tracker-accounts/{doomed['id']}/")).status_code == 204
    after = [(await client.get(f"/tracked-users/{t['id']}")).json()["tracker_account_id"] for t in tracked]
    assert set(after) <= {heir_a["id"], heir_b["id"]}
    assert await load_of(client, heir_a) + await load_of(client, heir_b) == 3
    await assert_counters_match(db)


async def test_delete_without_room_is_refused_unless_forced(client: Client, db: asyncpg.Connection[Any]) -> None:
    doomed = await tracker(client, max_users=3)
    owner = await person(client)
    tracked = [await follow(client, owner, username()) for _ in range(3)]
    await tracker(client, max_users=1)
    refused = await client.delete(f"/tracker-accounts/{doomed['id']}/")
    assert refused.status_code == 409
    assert refused.json()["code"] == "insufficient_capacity"
    assert (await client.get(f"/tracker-accounts/{doomed['id']}/")).status_code == 200
    assert (await client.delete(f"/tracker-accounts/{doomed['id']}/?force=true")).status_code == 204
    states = [(await client.get(f"/tracked-users/{t['id']}")).json()["tracker_account_id"] for t in tracked]
    assert states.count(None) == 2
    await assert_counters_match(db)


async def test_deactivating_or_deauthorizing_moves_targets(client: Client, db: asyncpg.Connection[Any]) -> None:
    first = await tracker(client, max_users=5)
    owner = await person(client)
    tracked = await follow(client, owner, username())
    assert tracked["tracker_account_id"] == first["id"]
    second = await tracker(client, max_users=5)
    await client.patch(f"/tracker-accounts/{first['id']}/", json={"is_active": False})
    assert (await client.get(f"/tracked-users/{tracked['id']}")).json()["tracker_account_id"] == second["id"]
    await client.patch(f"/tracker-accounts/{first['id']}/", json={"is_active": True})
    await client.patch(f"/tracker-accounts/{second['id']}/", json={"is_auth": False})
    assert (await client.get(f"/tracked-users/{tracked['id']}")).json()["tracker_account_id"] == first["id"]
    await assert_counters_match(db)


async def test_lowering_the_limit_moves_the_excess(client: Client, db: asyncpg.Connection[Any]) -> None:
    crowded = await tracker(client, max_users=4)
    owner = await person(client)
    for _ in range(4):
        await follow(client, owner, username())
    spare = await tracker(client, max_users=1)
    response = await client.patch(f"/tracker-settings/{crowded['setting']['id']}/", json={"max_users": 2})
    assert response.json()["current_users"] == 2
    assert await load_of(client, spare) == 1
    waiting = await client.get("/tracked-users/")
    assert [row["tracker_account_id"] for row in waiting.json()].count(None) == 1
    await assert_counters_match(db)


async def test_capacity_that_appears_picks_up_waiting_targets_in_order(
    client: Client, db: asyncpg.Connection[Any]
) -> None:
    doomed = await tracker(client, max_users=3)
    owner = await person(client)
    tracked = [await follow(client, owner, username()) for _ in range(3)]
    await client.delete(f"/tracker-accounts/{doomed['id']}/?force=true")
    fresh = await tracker(client, max_users=2)
    states = [(await client.get(f"/tracked-users/{t['id']}")).json()["tracker_account_id"] for t in tracked]
    assert states == [fresh["id"], fresh["id"], None]
    await client.patch(f"/tracker-settings/{fresh['setting']['id']}/", json={"max_users": 3})
    assert (await client.get(f"/tracked-users/{tracked[2]['id']}")).json()["tracker_account_id"] == fresh["id"]
    await assert_counters_match(db)


async def test_freed_slot_goes_to_a_waiting_target(client: Client, db: asyncpg.Connection[Any]) -> None:
    only = await tracker(client, max_users=2)
    owner = await person(client)
    kept = [await follow(client, owner, username()) for _ in range(2)]
    spare = await tracker(client, max_users=1)
    third = await follow(client, owner, username())
    assert third["tracker_account_id"] == spare["id"]
    await client.patch(f"/tracker-accounts/{spare['id']}/", json={"is_active": False})
    assert (await client.get(f"/tracked-users/{third['id']}")).json()["tracker_account_id"] is None
    await client.delete(f"/tracked-users/{kept[0]['id']}/")
    assert (await client.get(f"/tracked-users/{third['id']}")).json()["tracker_account_id"] == only["id"]
    await assert_counters_match(db)


async def test_flood_wait_and_ban_make_a_tracker_unusable(client: Client, db: asyncpg.Connection[Any]) -> None:
    first = await tracker(client, max_users=5)
    owner = await person(client)
    tracked = await follow(client, owner, username())
    second = await tracker(client, max_users=5)
    await put_in_flood_wait(db, first["id"], "1 hour")
    assert (await client.get(f"/tracked-users/{tracked['id']}")).json()["tracker_account_id"] == second["id"]
    account = (await client.get(f"/tracker-accounts/{first['id']}")).json()
    assert account["health"]["state"] == "flood_wait"
    assert account["health"]["state_until"] is not None
    await assert_counters_match(db)


async def test_target_changes_notify_the_trackers_involved(client: Client, database_url: str) -> None:
    listener = await asyncpg.connect(database_url)
    received: list[str] = []
    await listener.add_listener("seeonline_targets", lambda *args: received.append(args[3]))
    try:
        first = await tracker(client, max_users=5)
        owner = await person(client)
        await follow(client, owner, username())
        second = await tracker(client, max_users=5)
        await client.patch(f"/tracker-accounts/{first['id']}/", json={"is_active": False})
        for _ in range(50):
            if str(second["id"]) in received:
                break
            await asyncio.sleep(0.05)
        assert str(first["id"]) in received
        assert str(second["id"]) in received
    finally:
        await listener.close()
