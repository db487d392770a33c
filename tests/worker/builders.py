"""Rows the worker tests need, written with plain SQL (trackers with encrypted secrets, people, subscriptions)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import asyncpg

from seeonline.secrets import encrypt, lookup_hash, mask, tracker_api_hash, tracker_session

Connection: TypeAlias = "asyncpg.Connection[Any]"
_sequence = itertools.count(1)
EPOCH = datetime(2030, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """A fixed point in time, ``seconds`` after an arbitrary epoch."""
    return EPOCH + timedelta(seconds=seconds)


async def person(db: Connection, max_users: int = 1000) -> int:
    """A TelegramUser's id."""
    n = next(_sequence)
    value: int = await db.fetchval(
        "INSERT INTO telegram_users (telegram_id, max_users) VALUES ($1, $2) RETURNING id", 500_000 + n, max_users
    )
    return value


async def bare_target(db: Connection, username: str, subscribers: int = 1) -> tuple[int, list[int]]:
    """A target with no tracker and ``subscribers`` TrackedUsers; returns (target id, tracked user ids)."""
    target_id: int = await db.fetchval("INSERT INTO targets (username) VALUES ($1) RETURNING id", username)
    tracked = []
    for _ in range(subscribers):
        owner = await person(db)
        tracked.append(
            await db.fetchval(
                "INSERT INTO tracked_users (telegram_user_id, target_id, username) VALUES ($1, $2, $3) RETURNING id",
                owner,
                target_id,
                username,
            )
        )
    return target_id, tracked


async def tracker(
    db: Connection,
    secret_key: str,
    *,
    telegram_id: int,
    api_id: int,
    api_hash: str,
    session: str | None,
    max_users: int = 100,
    health: str | None = "ok",
) -> int:
    """A usable tracker account (active, authorized) with its setting and encrypted credentials."""
    n = next(_sequence)
    tracker_id: int = await db.fetchval("SELECT nextval(pg_get_serial_sequence('tracker_accounts', 'id'))")
    await db.execute(
        """INSERT INTO tracker_accounts
               (id, telegram_id, api_id, api_hash_encrypted, api_hash_lookup, api_hash_masked, is_active, is_auth)
           VALUES ($6, $1, $2, $3, $4, $5, true, true)""",
        telegram_id,
        api_id,
        encrypt(secret_key, api_hash, tracker_api_hash(tracker_id)),
        lookup_hash(secret_key, api_hash),
        mask(api_hash),
        tracker_id,
    )
    await db.execute(
        """INSERT INTO tracker_settings (tracker_account_id, phone_number, session_encrypted, max_users)
           VALUES ($1, $2, $3, $4)""",
        tracker_id,
        f"+1999{n:07d}",
        None if session is None else encrypt(secret_key, session, tracker_session(tracker_id)),
        max_users,
    )
    if health is not None:
        await db.execute("INSERT INTO tracker_health (tracker_account_id, state) VALUES ($1, $2)", tracker_id, health)
    return tracker_id


async def subscribe(db: Connection, username: str, tracker_id: int | None = None, owner: int | None = None) -> int:
    """A TrackedUser through the slot engine (the target gets a tracker); returns its id."""
    owner = owner if owner is not None else await person(db)
    value: int = await db.fetchval("SELECT so_subscribe($1, $2, $2, $3, true)", owner, username.lower(), tracker_id)
    return value


async def statuses(db: Connection, tracked_user_id: int) -> list[tuple[bool, datetime]]:
    """A tracked user's status rows, oldest first, as (is_online, created_at)."""
    rows = await db.fetch(
        "SELECT is_online, created_at FROM online_statuses WHERE tracked_user_id = $1 ORDER BY created_at, id",
        tracked_user_id,
    )
    return [(r["is_online"], r["created_at"]) for r in rows]
