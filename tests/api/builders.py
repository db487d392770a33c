"""Small builders that create contract resources through the HTTP API."""

from __future__ import annotations

import itertools
from typing import Any

from litestar.testing import AsyncTestClient

from tests.support.sessions import session_string

Client = AsyncTestClient[Any]
_sequence = itertools.count(1)


def unique() -> int:
    """A number no other builder call in this process returned."""
    return next(_sequence)


async def create(client: Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST and insist on 201."""
    response = await client.post(path, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def tracker(client: Client, *, max_users: int = 10, active: bool = True, session: bool = True) -> dict[str, Any]:
    """A tracker account with a setting; usable unless told otherwise. Returns the account plus ``setting``."""
    n = unique()
    account = await create(
        client,
        "/tracker-accounts/",
        {
            "telegram_id": 10_000 + n,
            "api_id": 20_000 + n,
            "api_hash": f"hash-{n:08d}",
            "is_active": active,
            "is_auth": True,
        },
    )
    setting = await create(
        client,
        "/tracker-settings/",
        {
            "tracker_account_id": account["id"],
            "phone_number": f"+1555{n:07d}",
            "session_string": session_string() if session else None,
            "max_users": max_users,
        },
    )
    account["setting"] = setting
    return account


async def person(client: Client, *, max_users: int = 5, role: str = "user") -> dict[str, Any]:
    """A telegram user."""
    return await create(
        client, "/telegram-users/", {"telegram_id": 50_000 + unique(), "max_users": max_users, "role": role}
    )


async def follow(client: Client, owner: dict[str, Any], username: str, **extra: Any) -> dict[str, Any]:
    """A tracked user of ``owner``."""
    return await create(client, "/tracked-users/", {"telegram_user_id": owner["id"], "username": username, **extra})


def username() -> str:
    """A fresh valid Telegram username."""
    return f"target_{unique():05d}"


async def load_of(client: Client, tracker_account: dict[str, Any]) -> int:
    """The tracker's ``current_users`` as the API reports it."""
    response = await client.get(f"/tracker-settings/{tracker_account['setting']['id']}/")
    load: int = response.json()["current_users"]
    return load


async def put_in_flood_wait(db: Any, tracker_id: int, lasting: str) -> None:
    """Report a flood wait for a tracker as its worker does: health and rebalance in one transaction."""
    async with db.transaction():
        await db.execute("SELECT so_begin_rebalance()")
        await db.execute(
            "INSERT INTO tracker_health (tracker_account_id, state, state_until)"
            " VALUES ($1, 'flood_wait', now() + $2::text::interval)",
            tracker_id,
            lasting,
        )
        await db.execute("SELECT so_rebalance_tracker($1)", tracker_id)
