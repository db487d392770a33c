"""/tracker-settings: CRUD, write-only sessions, lookups by phone and by tracker."""

from __future__ import annotations

import base64
import struct
from typing import Any

import asyncpg
import pytest

from tests.api.builders import Client, create, tracker, unique
from tests.support.sessions import session_string


async def new_account(client: Client) -> dict[str, Any]:
    n = unique()
    return await create(
        client, "/tracker-accounts/", {"telegram_id": 900_000 + n, "api_id": 910_000 + n, "api_hash": f"h{n:010d}"}
    )


async def test_session_is_write_only_and_encrypted(client: Client, db: asyncpg.Connection[Any]) -> None:
    account = await new_account(client)
    session = session_string()
    created = await create(
        client,
        "/tracker-settings/",
        {
            "tracker_account_id": account["id"],
            "phone_number": "+15550001",
            "session_string": session,
            "max_users": 3,
        },
    )
    assert created["session_string"] is None
    assert created["has_session"] is True
    assert created["current_users"] == 0
    stored = await db.fetchval("SELECT session_encrypted FROM tracker_settings WHERE id = $1", created["id"])
    assert stored and session not in stored
    cleared = await client.patch(f"/tracker-settings/{created['id']}/", json={"session_string": None})
    assert cleared.json()["has_session"] is False


async def test_defaults_and_read_only_counter(client: Client) -> None:
    account = await new_account(client)
    created = await create(
        client,
        "/tracker-settings/",
        {"tracker_account_id": account["id"], "phone_number": "+15550002", "current_users": 50},
    )
    assert created["max_users"] == 0
    assert created["current_users"] == 0
    assert created["has_session"] is False


async def test_reference_and_uniqueness_errors(client: Client) -> None:
    account = await new_account(client)
    missing = await client.post("/tracker-settings/", json={"tracker_account_id": 999_999, "phone_number": "+1"})
    assert missing.status_code == 400
    assert missing.json()["field"] == "tracker_account_id"
    await create(client, "/tracker-settings/", {"tracker_account_id": account["id"], "phone_number": "+15550003"})
    again = await client.post(
        "/tracker-settings/", json={"tracker_account_id": account["id"], "phone_number": "+15550004"}
    )
    assert again.status_code == 409
    assert again.json()["field"] == "tracker_account_id"
    other = await new_account(client)
    phone = await client.post(
        "/tracker-settings/", json={"tracker_account_id": other["id"], "phone_number": "+15550003"}
    )
    assert phone.status_code == 409
    assert phone.json()["field"] == "phone_number"
    negative = await client.post(
        "/tracker-settings/", json={"tracker_account_id": other["id"], "phone_number": "+1", "max_users": -1}
    )
    assert negative.status_code == 400
    assert negative.json()["field"] == "max_users"


async def test_lookup_routes_and_filters(client: Client) -> None:
    account = await tracker(client, max_users=4)
    setting = account["setting"]
    phone = setting["phone_number"]
    by_phone = await client.patch(f"/tracker-settings/by-phone-number/{phone}/", json={"max_users": 7})
    assert by_phone.status_code == 200
    assert by_phone.json()["max_users"] == 7
    by_tracker = await client.patch(
        f"/tracker-settings/by-tracker-telegram-id/{account['telegram_id']}", json={"max_users": 8}
    )
    assert by_tracker.json()["max_users"] == 8
    listed = await client.get(f"/tracker-settings/?tracker_account__telegram_id={account['telegram_id']}")
    assert [row["id"] for row in listed.json()] == [setting["id"]]
    listed = await client.get(f"/tracker-settings/?phone_number={phone.replace('+', '%2B')}")
    assert [row["id"] for row in listed.json()] == [setting["id"]]
    assert (await client.patch("/tracker-settings/by-phone-number/+0000/", json={})).status_code == 404
    assert (
        await client.delete(f"/tracker-settings/by-tracker-telegram-id/{account['telegram_id']}/")
    ).status_code == 204
    assert (await client.get(f"/tracker-settings/{setting['id']}/")).status_code == 404
    assert (await client.get("/tracker-settings/?tracker_account__telegram_id=x")).status_code == 400


async def test_setting_cannot_move_to_another_account(client: Client) -> None:
    account = await tracker(client)
    other = await new_account(client)
    response = await client.patch(
        f"/tracker-settings/{account['setting']['id']}/", json={"tracker_account_id": other["id"]}
    )
    assert response.status_code == 400
    assert response.json()["field"] == "tracker_account_id"


async def test_delete_by_phone(client: Client) -> None:
    account = await tracker(client)
    phone = account["setting"]["phone_number"]
    assert (await client.delete(f"/tracker-settings/by-phone-number/{phone}")).status_code == 204
    assert (await client.delete(f"/tracker-settings/by-phone-number/{phone}")).status_code == 404


def _no_key_session() -> str:
    """A well-formed StringSession whose authorization key is all zeros: Telethon loads it as logged out."""
    return "1" + base64.urlsafe_b64encode(struct.pack(">B4sH256s", 2, bytes(4), 443, bytes(256))).decode()


@pytest.mark.parametrize(
    "bad",
    ["s", "1BVts...", "<session string from StringSession.save()>", "1" + "A" * 352, "2" + session_string()[1:], "1ü"],
)
async def test_a_session_string_telethon_cannot_load_is_a_400_naming_the_field(
    client: Client, db: asyncpg.Connection[Any], bad: str
) -> None:
    account = await new_account(client)
    body = {"tracker_account_id": account["id"], "phone_number": f"+1555{unique():07d}", "session_string": bad}
    created = await client.post("/tracker-settings/", json=body)
    assert created.status_code == 400, created.text
    assert created.json()["field"] == "session_string"
    assert len(bad) < 8 or bad not in created.text  # a credential is never echoed
    assert await db.fetchval("SELECT count(*) FROM tracker_settings WHERE tracker_account_id = $1", account["id"]) == 0

    good = await create(client, "/tracker-settings/", {**body, "session_string": session_string()})
    stored = await db.fetchval("SELECT session_encrypted FROM tracker_settings WHERE id = $1", good["id"])
    patched = await client.patch(f"/tracker-settings/{good['id']}/", json={"session_string": bad})
    assert patched.status_code == 400, patched.text
    assert patched.json()["field"] == "session_string"
    assert await db.fetchval("SELECT session_encrypted FROM tracker_settings WHERE id = $1", good["id"]) == stored


async def test_a_session_without_an_authorization_key_is_a_400(client: Client) -> None:
    account = await new_account(client)
    body = {"tracker_account_id": account["id"], "phone_number": "+15550099", "session_string": _no_key_session()}
    created = await client.post("/tracker-settings/", json=body)
    assert created.status_code == 400, created.text
    assert created.json()["field"] == "session_string"
    assert "authorization key" in created.json()["detail"]
