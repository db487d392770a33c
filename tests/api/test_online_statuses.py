"""/online-statuses: the transition log, its time filters, streaming and bulk deletes."""

from __future__ import annotations

from typing import Any

from tests.api.builders import Client, create, follow, person, tracker, username


async def tracked_user(client: Client, name: str | None = None) -> dict[str, Any]:
    await tracker(client)
    return await follow(client, await person(client), name or username())


async def test_create_with_and_without_time(client: Client) -> None:
    tracked = await tracked_user(client)
    now = await create(client, "/online-statuses/", {"tracked_user_id": tracked["id"], "is_online": True})
    assert now["created_at"].endswith("+00:00")
    past = await create(
        client,
        "/online-statuses/",
        {"tracked_user_id": tracked["id"], "is_online": False, "created_at": "2025-03-01T10:00:00+03:00"},
    )
    assert past["created_at"].startswith("2025-03-01T07:00:00")
    naive = await create(
        client,
        "/online-statuses/",
        {"tracked_user_id": tracked["id"], "is_online": True, "created_at": "2025-03-01T10:00:00"},
    )
    assert naive["created_at"].startswith("2025-03-01T10:00:00")


async def test_reference_and_type_errors(client: Client) -> None:
    missing = await client.post("/online-statuses/", json={"tracked_user_id": 999_999, "is_online": True})
    assert missing.status_code == 400
    assert missing.json()["field"] == "tracked_user_id"
    tracked = await tracked_user(client)
    for body, field in [
        ({"tracked_user_id": tracked["id"], "is_online": "yes"}, "is_online"),
        ({"tracked_user_id": tracked["id"], "is_online": True, "created_at": "yesterday"}, "created_at"),
        ({"is_online": True}, "tracked_user_id"),
    ]:
        response = await client.post("/online-statuses/", json=body)
        assert response.status_code == 400, body
        assert response.json()["field"] == field


async def test_time_window_filters_are_inclusive(client: Client) -> None:
    tracked = await tracked_user(client)
    times = ["2025-01-01T00:00:00Z", "2025-01-01T10:00:00Z", "2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z"]
    rows = [
        await create(
            client, "/online-statuses/", {"tracked_user_id": tracked["id"], "is_online": i % 2 == 0, "created_at": t}
        )
        for i, t in enumerate(times)
    ]
    ids = [row["id"] for row in rows]
    base = f"/online-statuses/?tracked_user_id={tracked['id']}"
    for query, expected in [
        ("&created_at_after=2025-01-01&created_at_before=2025-01-02", ids[:3]),
        ("&created_at_after=2025-01-01 10:00:00", ids[1:]),
        ("&created_at_after=2025-01-01T10:00:00", ids[1:]),
        ("&created_at_before=2025-01-01T12:00:00%2B02:00", ids[:2]),
        ("&is_online=true", [ids[0], ids[2]]),
        ("&ordering=-created_at", ids[::-1]),
    ]:
        assert [row["id"] for row in (await client.get(base + query)).json()] == expected, query
    alias = await client.get(f"/online-statuses/?tracked_user={tracked['id']}")
    assert [row["id"] for row in alias.json()] == ids
    by_name = await client.get(f"/online-statuses/?username={tracked['username'].upper()}")
    assert [row["id"] for row in by_name.json()] == ids
    for bad in ("created_at_after=soon", "tracked_user_id=x", "is_online=maybe"):
        assert (await client.get(f"/online-statuses/?{bad}")).status_code == 400, bad


async def test_get_patch_delete(client: Client) -> None:
    tracked = await tracked_user(client)
    row = await create(client, "/online-statuses/", {"tracked_user_id": tracked["id"], "is_online": True})
    assert (await client.get(f"/online-statuses/{row['id']}")).json() == row
    patched = await client.patch(
        f"/online-statuses/{row['id']}/", json={"is_online": False, "created_at": "2024-12-31T23:59:59Z"}
    )
    assert patched.json()["is_online"] is False
    assert patched.json()["created_at"].startswith("2024-12-31T23:59:59")
    assert (await client.patch("/online-statuses/999999/", json={"is_online": True})).status_code == 404
    assert (await client.delete(f"/online-statuses/{row['id']}")).status_code == 204
    assert (await client.delete(f"/online-statuses/{row['id']}")).status_code == 404


async def test_bulk_deletes(client: Client) -> None:
    first = await tracked_user(client, "bulk_first")
    second = await follow(client, await person(client), "bulk_second")
    for tracked in (first, first, second):
        await create(client, "/online-statuses/", {"tracked_user_id": tracked["id"], "is_online": True})
    deleted = await client.delete(f"/online-statuses/by-tracked-user-id/{first['id']}/")
    assert deleted.status_code == 200
    assert deleted.json() == {"deleted_count": 2}
    assert (await client.delete(f"/online-statuses/by-tracked-user-id/{first['id']}")).status_code == 404
    by_name = await client.delete("/online-statuses/by-tracked-username/Bulk_Second")
    assert by_name.json() == {"deleted_count": 1}
    assert (await client.delete("/online-statuses/by-tracked-username/bulk_second")).status_code == 404


async def test_deleting_a_tracked_user_deletes_its_history(client: Client) -> None:
    tracked = await tracked_user(client)
    await create(client, "/online-statuses/", {"tracked_user_id": tracked["id"], "is_online": True})
    await client.delete(f"/tracked-users/{tracked['id']}")
    assert (await client.get(f"/online-statuses/?tracked_user_id={tracked['id']}")).json() == []


async def test_large_unpaginated_list_is_streamed_complete(client: Client, db: Any) -> None:
    tracked = await tracked_user(client)
    await db.execute(
        "INSERT INTO online_statuses (tracked_user_id, is_online, created_at)"
        " SELECT $1, i % 2 = 0, now() - i * interval '1 second' FROM generate_series(1, 5000) AS i",
        tracked["id"],
    )
    response = await client.get("/online-statuses/")
    assert response.status_code == 200
    rows = response.json()
    assert len(rows) == 5000
    assert [row["id"] for row in rows] == sorted(row["id"] for row in rows)
