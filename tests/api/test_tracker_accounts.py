"""/tracker-accounts: CRUD, filters, masking, lookups by Telegram id."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.api.builders import Client, create, tracker, unique


def account_body(**overrides: Any) -> dict[str, Any]:
    n = unique()
    return {"telegram_id": 700_000 + n, "api_id": 800_000 + n, "api_hash": f"secret-hash-{n:06d}", **overrides}


async def test_create_returns_full_object_with_masked_hash(client: Client) -> None:
    body = account_body(api_hash="0123456789abcdef0123456789abcdef")
    created = await create(client, "/tracker-accounts/", body)
    assert created["api_hash"] == "****cdef"
    assert created["is_active"] is False
    assert created["is_auth"] is False
    assert created["telegram_id"] == body["telegram_id"]
    assert created["created_at"].endswith("+00:00")
    assert set(created) >= {
        "id",
        "telegram_id",
        "api_id",
        "api_hash",
        "is_active",
        "is_auth",
        "created_at",
        "updated_at",
    }


async def test_api_hash_is_encrypted_at_rest(client: Client, db: asyncpg.Connection[Any]) -> None:
    created = await create(client, "/tracker-accounts/", account_body(api_hash="plain-text-hash-value"))
    row = await db.fetchrow("SELECT * FROM tracker_accounts WHERE id = $1", created["id"])
    assert row is not None
    assert "plain-text-hash-value" not in " ".join(str(value) for value in row.values())


async def test_read_only_fields_are_ignored(client: Client) -> None:
    created = await create(client, "/tracker-accounts/", account_body(id=999, created_at="garbage", updated_at=5))
    assert created["id"] != 999


async def test_duplicate_unique_fields_are_409_naming_the_field(client: Client) -> None:
    first = account_body()
    await create(client, "/tracker-accounts/", first)
    for field in ("telegram_id", "api_id", "api_hash"):
        clash = account_body(**{field: first[field]})
        response = await client.post("/tracker-accounts/", json=clash)
        assert response.status_code == 409, field
        assert response.json()["field"] == field


async def test_bad_bodies_are_400_naming_the_field(client: Client) -> None:
    cases = [
        ({**account_body(), "telegram_id": "abc"}, "telegram_id"),
        ({**account_body(), "api_id": -1}, "api_id"),
        ({**account_body(), "is_active": "maybe"}, "is_active"),
        ({**account_body(), "telegram_id": 2**70}, "telegram_id"),
        ({"api_id": 5, "api_hash": "x"}, "telegram_id"),
    ]
    for body, field in cases:
        response = await client.post("/tracker-accounts/", json=body)
        assert response.status_code == 400, body
        assert response.json()["field"] == field, response.json()


async def test_malformed_json_is_400(client: Client) -> None:
    for raw in (b"{", b"", b"[1, 2]", b"null", b'"text"'):
        response = await client.post("/tracker-accounts/", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 400, raw


async def test_get_patch_delete_by_id_with_and_without_slash(client: Client) -> None:
    created = await create(client, "/tracker-accounts/", account_body())
    for path in (f"/tracker-accounts/{created['id']}", f"/tracker-accounts/{created['id']}/"):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.json()["id"] == created["id"]
    patched = await client.patch(f"/tracker-accounts/{created['id']}", json={"is_active": True})
    assert patched.status_code == 200
    assert patched.json()["is_active"] is True
    assert patched.json()["updated_at"] >= created["updated_at"]
    assert (await client.delete(f"/tracker-accounts/{created['id']}/")).status_code == 204
    assert (await client.get(f"/tracker-accounts/{created['id']}/")).status_code == 404


async def test_unknown_and_bad_ids(client: Client) -> None:
    assert (await client.get("/tracker-accounts/999999/")).status_code == 404
    assert (await client.patch("/tracker-accounts/999999/", json={"is_active": True})).status_code == 404
    assert (await client.delete("/tracker-accounts/999999/")).status_code == 404
    response = await client.get("/tracker-accounts/abc/")
    assert response.status_code == 400
    assert response.json()["field"] == "id"


async def test_by_telegram_id_routes(client: Client) -> None:
    created = await create(client, "/tracker-accounts/", account_body())
    tg = created["telegram_id"]
    patched = await client.patch(f"/tracker-accounts/by-telegram-id/{tg}/", json={"is_auth": True})
    assert patched.status_code == 200
    assert patched.json()["is_auth"] is True
    assert (await client.patch("/tracker-accounts/by-telegram-id/1/", json={})).status_code == 404
    assert (await client.patch("/tracker-accounts/by-telegram-id/x/", json={})).status_code == 400
    assert (await client.delete(f"/tracker-accounts/by-telegram-id/{tg}")).status_code == 204
    assert (await client.delete(f"/tracker-accounts/by-telegram-id/{tg}")).status_code == 404


async def test_list_filters(client: Client) -> None:
    active = await create(client, "/tracker-accounts/", account_body(is_active=True, is_auth=True))
    idle = await create(client, "/tracker-accounts/", account_body())
    listed = (await client.get("/tracker-accounts/")).json()
    assert [row["id"] for row in listed] == sorted([active["id"], idle["id"]])
    for query, expected in [
        ("is_active=true", [active["id"]]),
        ("is_active=False", [idle["id"]]),
        ("is_auth=1", [active["id"]]),
        (f"telegram_id={idle['telegram_id']}", [idle["id"]]),
        (f"id={active['id']}", [active["id"]]),
        ("telegram_id=1", []),
        ("unknown_param=1", [active["id"], idle["id"]]),
    ]:
        response = await client.get(f"/tracker-accounts/?{query}")
        assert [row["id"] for row in response.json()] == expected, query
    for bad in ("is_active=maybe", "telegram_id=abc", "id=1.5"):
        response = await client.get(f"/tracker-accounts/?{bad}")
        assert response.status_code == 400, bad
        assert response.json()["field"] == bad.split("=")[0]


async def test_health_is_shown_read_only(client: Client) -> None:
    account = await tracker(client)
    assert account["health"]["state"] == "stopped"
    response = await client.patch(f"/tracker-accounts/{account['id']}/", json={"health": {"state": "ok"}})
    assert response.status_code == 200
    assert response.json()["health"]["state"] == "stopped"
