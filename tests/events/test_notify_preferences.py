"""TrackedUser notify preferences and the target state it shows (is_online, status_since, visibility)."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.api.builders import Client, follow, person, tracker, username


async def test_defaults_and_derived_state_of_a_new_subscription(client: Client) -> None:
    await tracker(client)
    tracked = await follow(client, await person(client), username())
    assert tracked["notify_mode"] == "online"
    assert tracked["mute_until"] is None
    assert tracked["display_name"] is None
    assert tracked["is_online"] is None  # nothing known yet
    assert tracked["status_since"] is None
    assert tracked["visibility"] == "unknown"


async def test_preferences_on_create_and_patch(client: Client) -> None:
    await tracker(client)
    owner = await person(client)
    tracked = await follow(
        client, owner, username(), notify_mode="both", display_name="Mum", mute_until="2030-01-01 10:00:00"
    )
    assert tracked["notify_mode"] == "both"
    assert tracked["display_name"] == "Mum"
    assert tracked["mute_until"] == "2030-01-01T10:00:00+00:00"
    patched = await client.patch(f"/tracked-users/{tracked['id']}/", json={"notify_mode": "none", "mute_until": None})
    assert patched.status_code == 200
    assert patched.json()["notify_mode"] == "none"
    assert patched.json()["mute_until"] is None
    assert patched.json()["display_name"] == "Mum"  # untouched
    cleared = await client.patch(f"/tracked-users/{tracked['id']}/", json={"display_name": None})
    assert cleared.json()["display_name"] is None


async def test_bad_preferences_are_400s_naming_the_field(client: Client) -> None:
    await tracker(client)
    tracked = await follow(client, await person(client), username())
    cases: list[tuple[str, Any]] = [
        ("notify_mode", "sometimes"),
        ("notify_mode", 3),
        ("display_name", "x" * 65),
        ("mute_until", "tomorrow"),
        ("mute_until", "0001-01-01T00:00:00+05:00"),
    ]
    for field, value in cases:
        response = await client.patch(f"/tracked-users/{tracked['id']}/", json={field: value})
        assert response.status_code == 400, (field, value, response.text)
        assert response.json()["field"] == field


async def test_state_follows_the_target_and_filters(client: Client, db: asyncpg.Connection[Any]) -> None:
    await tracker(client)
    owner = await person(client, max_users=10)
    online = await follow(client, owner, username(), notify_mode="offline")
    hidden = await follow(client, owner, username())
    unknown = await follow(client, owner, username())
    await db.execute(
        "UPDATE targets SET visibility = 'visible', last_is_online = true, last_status_at = '2026-01-01T10:00:00Z'"
        " WHERE id = (SELECT target_id FROM tracked_users WHERE id = $1)",
        online["id"],
    )
    await db.execute(
        "UPDATE targets SET visibility = 'hidden', last_is_online = false WHERE id ="
        " (SELECT target_id FROM tracked_users WHERE id = $1)",
        hidden["id"],
    )
    shown = (await client.get(f"/tracked-users/{online['id']}/")).json()
    assert shown["is_online"] is True
    assert shown["status_since"] == "2026-01-01T10:00:00+00:00"
    assert shown["visibility"] == "visible"
    assert (await client.get(f"/tracked-users/{hidden['id']}/")).json()["is_online"] is None

    def ids(response: Any) -> list[int]:
        assert response.status_code == 200, response.text
        return [row["id"] for row in response.json()]

    assert ids(await client.get("/tracked-users/", params={"is_online": "true"})) == [online["id"]]
    assert ids(await client.get("/tracked-users/", params={"notify_mode": "online"})) == [hidden["id"], unknown["id"]]
    assert ids(await client.get("/tracked-users/", params={"ordering": "-notify_mode"})) == [
        hidden["id"],
        unknown["id"],
        online["id"],
    ]
    bad = await client.get("/tracked-users/", params={"notify_mode": "loud"})
    assert bad.status_code == 400
    assert bad.json()["field"] == "notify_mode"
