"""/telegram-users: CRUD, validation, filters and bulk operations by role."""

from __future__ import annotations

from tests.api.builders import Client, create, follow, person, tracker, unique, username


async def test_create_with_defaults(client: Client) -> None:
    created = await create(client, "/telegram-users/", {"telegram_id": 123_456_789_012})
    assert created["role"] == "user"
    assert created["max_users"] == 5
    assert created["current_users"] == 0
    assert created["timezone"] == "UTC"
    assert created["theme"] == "light"


async def test_invalid_values_are_400_naming_the_field(client: Client) -> None:
    for body, field in [
        ({"telegram_id": 1, "role": "emperor"}, "role"),
        ({"telegram_id": 1, "theme": "blue"}, "theme"),
        ({"telegram_id": 1, "timezone": "Mars/Olympus"}, "timezone"),
        ({"telegram_id": 1, "timezone": "../../etc/passwd"}, "timezone"),
        ({"telegram_id": 1, "max_users": -5}, "max_users"),
        ({"telegram_id": None}, "telegram_id"),
    ]:
        response = await client.post("/telegram-users/", json=body)
        assert response.status_code == 400, body
        assert response.json()["field"] == field, response.json()


async def test_timezone_accepts_iana_names(client: Client) -> None:
    created = await create(client, "/telegram-users/", {"telegram_id": unique(), "timezone": "Europe/Moscow"})
    assert created["timezone"] == "Europe/Moscow"
    patched = await client.patch(f"/telegram-users/{created['id']}/", json={"timezone": "Nowhere/City"})
    assert patched.status_code == 400


async def test_counter_is_read_only(client: Client) -> None:
    user = await person(client)
    response = await client.patch(f"/telegram-users/{user['id']}/", json={"current_users": 3, "max_users": 9})
    assert response.json()["current_users"] == 0
    assert response.json()["max_users"] == 9


async def test_by_telegram_id(client: Client) -> None:
    user = await person(client)
    response = await client.patch(f"/telegram-users/by-telegram-id/{user['telegram_id']}/", json={"theme": "dark"})
    assert response.json()["theme"] == "dark"
    assert (await client.delete(f"/telegram-users/by-telegram-id/{user['telegram_id']}")).status_code == 204
    assert (await client.get(f"/telegram-users/{user['id']}")).status_code == 404


async def test_filters(client: Client) -> None:
    vip = await create(
        client, "/telegram-users/", {"telegram_id": unique(), "role": "vip", "theme": "dark", "timezone": "Asia/Tokyo"}
    )
    plain = await person(client)
    for query, expected in [
        ("role=vip", [vip["id"]]),
        ("theme=light", [plain["id"]]),
        ("timezone=Asia/Tokyo", [vip["id"]]),
        (f"telegram_id={plain['telegram_id']}", [plain["id"]]),
        ("ordering=-id", [plain["id"], vip["id"]]),
    ]:
        assert [row["id"] for row in (await client.get(f"/telegram-users/?{query}")).json()] == expected, query
    assert (await client.get("/telegram-users/?role=emperor")).status_code == 400
    assert (await client.get("/telegram-users/?ordering=password")).status_code == 400


async def test_bulk_update_and_delete_by_role(client: Client) -> None:
    first = await create(client, "/telegram-users/", {"telegram_id": unique(), "role": "vip"})
    second = await create(client, "/telegram-users/", {"telegram_id": unique(), "role": "vip"})
    bystander = await person(client)
    updated = await client.patch("/telegram-users/by-role/vip/", json={"max_users": 50})
    assert updated.status_code == 200
    assert [(row["id"], row["max_users"]) for row in updated.json()] == [(first["id"], 50), (second["id"], 50)]
    assert (await client.patch("/telegram-users/by-role/admin", json={"max_users": 1})).status_code == 404
    assert (await client.patch("/telegram-users/by-role/emperor", json={})).status_code == 400
    deleted = await client.delete("/telegram-users/by-role/vip")
    assert deleted.status_code == 200
    assert deleted.json() == {"deleted_count": 2}
    assert (await client.delete("/telegram-users/by-role/vip")).status_code == 404
    assert (await client.get(f"/telegram-users/{bystander['id']}")).status_code == 200


async def test_deleting_a_person_frees_their_slots(client: Client) -> None:
    account = await tracker(client, max_users=3)
    user = await person(client)
    for _ in range(2):
        await follow(client, user, username())
    assert (await client.get(f"/tracker-settings/{account['setting']['id']}")).json()["current_users"] == 2
    assert (await client.delete(f"/telegram-users/{user['id']}/")).status_code == 204
    assert (await client.get(f"/tracker-settings/{account['setting']['id']}")).json()["current_users"] == 0
    assert (await client.get("/tracked-users/")).json() == []
