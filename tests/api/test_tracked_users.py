"""/tracked-users: creation rules (username, quota, ban, slots), lookups and filters."""

from __future__ import annotations

from tests.api.builders import Client, create, follow, load_of, person, tracker, username


async def test_create_assigns_a_tracker_and_counts(client: Client) -> None:
    account = await tracker(client)
    owner = await person(client)
    tracked = await follow(client, owner, "@Pavel_Durov")
    assert tracked["username"] == "Pavel_Durov"
    assert tracked["tracker_account_id"] == account["id"]
    assert tracked["visible_online"] is True
    assert (await client.get(f"/telegram-users/{owner['id']}")).json()["current_users"] == 1
    assert await load_of(client, account) == 1


async def test_username_rules(client: Client) -> None:
    await tracker(client)
    owner = await person(client, max_users=50)
    for bad in ("abc", "1starts_with_digit", "has space", "x" * 33, "@", "bad-dash", "кириллица"):
        response = await client.post("/tracked-users/", json={"telegram_user_id": owner["id"], "username": bad})
        assert response.status_code == 400, bad
        assert response.json()["field"] == "username"


async def test_same_target_shares_one_slot(client: Client) -> None:
    account = await tracker(client)
    first, second = await person(client), await person(client)
    a = await follow(client, first, "Shared_Target")
    b = await follow(client, second, "shared_target")
    assert a["tracker_account_id"] == b["tracker_account_id"] == account["id"]
    assert await load_of(client, account) == 1
    await client.delete(f"/tracked-users/{a['id']}/")
    assert await load_of(client, account) == 1
    await client.delete(f"/tracked-users/{b['id']}/")
    assert await load_of(client, account) == 0


async def test_one_person_cannot_follow_a_target_twice(client: Client) -> None:
    await tracker(client)
    owner = await person(client)
    await follow(client, owner, "twice_target")
    response = await client.post("/tracked-users/", json={"telegram_user_id": owner["id"], "username": "@TWICE_target"})
    assert response.status_code == 409
    assert response.json()["field"] == "username"
    assert (await client.get(f"/telegram-users/{owner['id']}")).json()["current_users"] == 1


async def test_quota_ban_and_missing_owner(client: Client) -> None:
    await tracker(client)
    owner = await person(client, max_users=1)
    await follow(client, owner, username())
    full = await client.post("/tracked-users/", json={"telegram_user_id": owner["id"], "username": username()})
    assert full.status_code == 409
    assert full.json()["code"] == "quota_exceeded"
    banned = await person(client, role="banned")
    refused = await client.post("/tracked-users/", json={"telegram_user_id": banned["id"], "username": username()})
    assert refused.status_code == 403
    assert refused.json()["code"] == "banned"
    missing = await client.post("/tracked-users/", json={"telegram_user_id": 999_999, "username": username()})
    assert missing.status_code == 400
    assert missing.json()["field"] == "telegram_user_id"


async def test_no_free_slot(client: Client) -> None:
    await tracker(client, max_users=1)
    owner = await person(client)
    await follow(client, owner, username())
    response = await client.post("/tracked-users/", json={"telegram_user_id": owner["id"], "username": username()})
    assert response.status_code == 409
    assert response.json()["code"] == "no_free_slot"
    assert (await client.get(f"/telegram-users/{owner['id']}")).json()["current_users"] == 1


async def test_explicit_tracker(client: Client) -> None:
    big = await tracker(client, max_users=10)
    small = await tracker(client, max_users=1)
    owner = await person(client)
    tracked = await follow(client, owner, username(), tracker_account_id=small["id"])
    assert tracked["tracker_account_id"] == small["id"]
    refused = await client.post(
        "/tracked-users/",
        json={"telegram_user_id": owner["id"], "username": username(), "tracker_account_id": small["id"]},
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "no_free_slot"
    unknown = await client.post(
        "/tracked-users/", json={"telegram_user_id": owner["id"], "username": username(), "tracker_account_id": 999_999}
    )
    assert unknown.status_code == 400
    assert unknown.json()["field"] == "tracker_account_id"
    moved = await client.patch(f"/tracked-users/{tracked['id']}/", json={"tracker_account_id": big["id"]})
    assert moved.json()["tracker_account_id"] == big["id"]
    assert (await load_of(client, big), await load_of(client, small)) == (1, 0)


async def test_patch_username_moves_the_subscription(client: Client) -> None:
    account = await tracker(client)
    first, second = await person(client), await person(client)
    shared = await follow(client, first, "old_target")
    await follow(client, second, "old_target")
    renamed = await client.patch(f"/tracked-users/{shared['id']}/", json={"username": "new_target"})
    assert renamed.status_code == 200
    assert renamed.json()["username"] == "new_target"
    assert await load_of(client, account) == 2
    invalid = await client.patch(f"/tracked-users/{shared['id']}/", json={"username": "no"})
    assert invalid.status_code == 400


async def test_patch_owner_respects_quota(client: Client) -> None:
    await tracker(client)
    giver, full_taker, taker = await person(client), await person(client, max_users=0), await person(client)
    tracked = await follow(client, giver, username())
    refused = await client.patch(f"/tracked-users/{tracked['id']}/", json={"telegram_user_id": full_taker["id"]})
    assert refused.status_code == 409
    moved = await client.patch(f"/tracked-users/{tracked['id']}/", json={"telegram_user_id": taker["id"]})
    assert moved.json()["telegram_user_id"] == taker["id"]
    counts = [(await client.get(f"/telegram-users/{p['id']}")).json()["current_users"] for p in (giver, taker)]
    assert counts == [0, 1]


async def test_by_username_routes(client: Client) -> None:
    await tracker(client)
    first, second = await person(client), await person(client)
    one = await follow(client, first, "popular_one")
    await follow(client, second, "popular_one")
    ambiguous = await client.patch("/tracked-users/by-username/popular_one/", json={"visible_online": False})
    assert ambiguous.status_code == 409
    assert ambiguous.json()["code"] == "ambiguous_username"
    narrowed = await client.patch(
        f"/tracked-users/by-username/Popular_One/?telegram_user__telegram_id={first['telegram_id']}",
        json={"visible_online": False},
    )
    assert narrowed.status_code == 200
    assert narrowed.json()["id"] == one["id"]
    assert narrowed.json()["visible_online"] is False
    deleted = await client.delete(
        f"/tracked-users/by-username/popular_one?telegram_user__telegram_id={first['telegram_id']}"
    )
    assert deleted.status_code == 204
    assert (await client.delete("/tracked-users/by-username/popular_one")).status_code == 204
    assert (await client.delete("/tracked-users/by-username/popular_one")).status_code == 404


async def test_filters(client: Client) -> None:
    first_tracker = await tracker(client, max_users=1)
    second_tracker = await tracker(client, max_users=1)
    owner = await person(client)
    a = await follow(client, owner, "filter_alpha")
    b = await follow(client, owner, "filter_bravo", visible_online=False)
    assert {a["tracker_account_id"], b["tracker_account_id"]} == {first_tracker["id"], second_tracker["id"]}
    for query, expected in [
        ("username=FILTER_alpha", [a["id"]]),
        ("visible_online=false", [b["id"]]),
        (
            f"tracker_account__telegram_id={first_tracker['telegram_id']}",
            [x["id"] for x in (a, b) if x["tracker_account_id"] == first_tracker["id"]],
        ),
        (f"telegram_user__telegram_id={owner['telegram_id']}", [a["id"], b["id"]]),
        ("telegram_user__telegram_id=1", []),
        ("ordering=-username", [b["id"], a["id"]]),
    ]:
        assert [row["id"] for row in (await client.get(f"/tracked-users/?{query}")).json()] == expected, query


async def test_pagination_with_link_header(client: Client) -> None:
    await tracker(client, max_users=20)
    owner = await person(client, max_users=20)
    ids = [(await follow(client, owner, username()))["id"] for _ in range(5)]
    page = await client.get("/tracked-users/?limit=2&offset=1")
    assert [row["id"] for row in page.json()] == ids[1:3]
    link = page.headers["link"]
    assert 'rel="next"' in link
    assert "offset=3" in link
    last = await client.get("/tracked-users/?limit=2&offset=4")
    assert [row["id"] for row in last.json()] == ids[4:]
    assert "link" not in last.headers
    assert (await client.get("/tracked-users/?limit=-1")).status_code == 400
    assert (await client.get("/tracked-users/?limit=abc")).status_code == 400


async def test_create_body_from_the_old_bot(client: Client) -> None:
    account = await tracker(client)
    owner = await person(client)
    created = await create(
        client,
        "/tracked-users/",
        {
            "telegram_user_id": owner["id"],
            "username": "bot_style_user",
            "tracker_account_id": None,
            "visible_online": True,
        },
    )
    assert created["tracker_account_id"] == account["id"]
