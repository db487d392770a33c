"""/online-statuses: the transition log, its time filters, streaming and bulk deletes."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx

from tests.api.builders import Client, create, follow, person, tracker, username
from tests.api.live_server import running_api
from tests.support.keys import API_KEY


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


async def test_slow_readers_of_big_lists_do_not_starve_other_requests(database_url: str, db: Any) -> None:
    """Clients that open unpaginated streams and stop reading must not block the API."""
    await db.execute(
        "INSERT INTO telegram_users (telegram_id) VALUES (1);"
        "INSERT INTO targets (username) VALUES ('slow_target');"
        "INSERT INTO tracked_users (telegram_user_id, target_id, username) VALUES (1, 1, 'slow_target');"
        "INSERT INTO online_statuses (tracked_user_id, is_online, created_at)"
        " SELECT 1, i % 2 = 0, now() - i * interval '1 second' FROM generate_series(1, 60000) AS i;"
    )
    with running_api(database_url, SEEONLINE_DB_POOL_SIZE="4") as base:
        port = int(base.rsplit(":", 1)[1])
        stalled = []
        for _ in range(12):  # more than the pool and the stream limit
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(f"GET /online-statuses/ HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n\r\n".encode())
            stalled.append(sock)
        try:
            await asyncio.sleep(1)
            async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": API_KEY}, timeout=5) as http:
                for _ in range(5):
                    response = await http.get("/telegram-users/1/")
                    assert response.status_code == 200
                page = await http.get("/online-statuses/?limit=3")
                assert len(page.json()) == 3
        finally:
            for sock in stalled:
                sock.close()


async def test_limit_zero_means_the_whole_list_and_limits_are_bounded(client: Client) -> None:
    tracked = await tracked_user(client)
    for _ in range(3):
        await create(client, "/online-statuses/", {"tracked_user_id": tracked["id"], "is_online": True})
    everything = await client.get("/online-statuses/?limit=0")
    assert len(everything.json()) == 3
    assert "link" not in everything.headers
    # A huge limit is lowered to the largest page (DRF's max_limit); a huge offset is refused.
    assert len((await client.get("/online-statuses/?limit=9223372036854775807")).json()) == 3
    response = await client.get("/online-statuses/?offset=9223372036854775807&limit=1")
    assert response.status_code == 400
    assert response.json()["field"] == "offset"


async def test_datetimes_outside_utc_years_are_400_naming_the_field(client: Client) -> None:
    tracked = await tracked_user(client)
    for value in ("9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00", "0001-01-01T00:00:00Z"):
        listed = await client.get(f"/online-statuses/?created_at_after={value.replace('+', '%2B')}")
        assert listed.status_code == 400
        assert listed.json()["field"] == "created_at_after"
        posted = await client.post(
            "/online-statuses/", json={"tracked_user_id": tracked["id"], "is_online": True, "created_at": value}
        )
        assert posted.status_code == 400
        assert posted.json()["field"] == "created_at"
