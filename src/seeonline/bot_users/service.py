"""Writes to bot users and tracked users; the slot engine's SQL keeps every counter exact."""

from __future__ import annotations

from typing import Any

import asyncpg

from seeonline import usernames
from seeonline.api.bodies import provided
from seeonline.api.errors import ApiError, not_found
from seeonline.api.params import to_utc
from seeonline.bot_users.schemas import (
    NOTIFY_FIELDS,
    TelegramUserCreate,
    TelegramUserUpdate,
    TrackedUserCreate,
    TrackedUserUpdate,
    check_timezone,
    clean_username,
)
from seeonline.database.pool import Connection, in_transaction, with_retry
from seeonline.database.set_clause import set_clause


class BotUserService:
    """TelegramUser and TrackedUser writes."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create_telegram_user(self, data: TelegramUserCreate) -> int:
        """Insert a bot user; returns its id."""
        check_timezone(data.timezone)
        sql = (
            "INSERT INTO telegram_users (telegram_id, role, max_users, timezone, theme)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING id"
        )
        args = (data.telegram_id, data.role, data.max_users, data.timezone, data.theme)
        created: int = await with_retry(self.pool, lambda c: c.fetchval(sql, *args))
        return created

    async def telegram_user_id_by_telegram_id(self, telegram_id: int) -> int:
        """The id of the bot user with this Telegram id, or a 404."""
        found: int | None = await self.pool.fetchval(
            "SELECT id FROM telegram_users WHERE telegram_id = $1", telegram_id
        )
        if found is None:
            raise not_found("TelegramUser")
        return found

    async def update_telegram_users(self, condition: str, key: object, data: TelegramUserUpdate) -> list[int]:
        """Apply a PATCH to the users matching ``condition`` (``id = $1`` or ``role = $1``); their ids."""
        values = provided(data)
        if "timezone" in values:
            check_timezone(values["timezone"])
        args: list[Any] = [key]
        assignments = set_clause(values, args) or "id = id"
        sql = f"UPDATE telegram_users SET {assignments} WHERE {condition} RETURNING id"
        rows = await with_retry(self.pool, lambda c: c.fetch(sql, *args))
        if not rows:
            raise not_found("TelegramUser")
        return sorted(row[0] for row in rows)

    async def delete_telegram_users(self, condition: str, key: object) -> int:
        """Delete the users matching ``condition`` with all their tracked users; how many went."""
        bot_users = f"ARRAY(SELECT id FROM telegram_users WHERE {condition})"
        sql = f"SELECT d.deleted, d.waiting FROM so_delete_telegram_users({bot_users}) d"
        result = await with_retry(self.pool, lambda c: c.fetchrow(sql, key))
        if result is None or not result["deleted"]:
            raise not_found("TelegramUser")
        deleted: int = result["deleted"]
        await self._pick_up_if(result["waiting"])
        return deleted

    async def subscribe(self, data: TrackedUserCreate) -> int:
        """Create a tracked user: quota, ban, target and slot checked in one transaction."""
        normalized, display = clean_username(data.username)
        sql = "SELECT so_subscribe($1, $2, $3, $4, $5)"
        args = (data.telegram_user_id, normalized, display, data.tracker_account_id, data.visible_online)
        # Only what differs from the column defaults costs an UPDATE.
        preferences = {name: value for name in NOTIFY_FIELDS if (value := getattr(data, name)) not in (None, "online")}

        async def create(connection: Connection) -> int:
            created: int = await connection.fetchval(sql, *args)
            await _store_preferences(connection, created, preferences)
            return created

        return await in_transaction(self.pool, create)

    async def update_subscription(self, tracked_user_id: int, data: TrackedUserUpdate) -> None:
        """Change a tracked user's bot user, username, tracker or visibility."""
        values = provided(data)
        normalized = display = None
        if "username" in values:
            normalized, display = clean_username(values["username"])
        sql = "SELECT so_update_subscription($1, $2, $3, $4, $5, $6)"
        args = (
            tracked_user_id,
            values.get("telegram_user_id"),
            normalized,
            display,
            values.get("tracker_account_id"),
            values.get("visible_online"),
        )
        preferences = {name: values[name] for name in NOTIFY_FIELDS if name in values}

        async def update(connection: Connection) -> bool | None:
            waiting: bool | None = await connection.fetchval(sql, *args)
            await _store_preferences(connection, tracked_user_id, preferences)
            return waiting

        await self._pick_up_if(await in_transaction(self.pool, update))

    async def unsubscribe(self, tracked_user_id: int) -> None:
        """Delete a tracked user, freeing the slot when it was the target's last tracked user."""
        sql = "SELECT deleted, waiting FROM so_unsubscribe(ARRAY[$1::bigint])"
        result = await with_retry(self.pool, lambda c: c.fetchrow(sql, tracked_user_id))
        if result is None or not result["deleted"]:
            raise not_found("TrackedUser")
        await self._pick_up_if(result["waiting"])

    async def tracked_user_by_username(self, username: str, bot_user_telegram_id: int | None) -> int:
        """The one tracked user with this username (optionally of one bot user); 404 or 409 otherwise."""
        normalized = usernames.normalize(username)
        rows = await self.pool.fetch(
            "SELECT r.id FROM tracked_users r JOIN targets t ON t.id = r.target_id WHERE t.username = $1"
            " AND ($2::bigint IS NULL OR r.telegram_user_id IN (SELECT id FROM telegram_users WHERE telegram_id = $2))"
            " LIMIT 2",
            normalized,
            bot_user_telegram_id,
        )
        if not rows:
            raise not_found("TrackedUser")
        if len(rows) > 1:
            raise ApiError(
                409,
                f"several bot users track {username!r}; narrow it with ?telegram_user__telegram_id=",
                code="ambiguous_username",
                field="username",
            )
        found: int = rows[0][0]
        return found

    async def _pick_up_if(self, waiting: bool | None) -> None:
        # Freed capacity is handed to waiting targets in a transaction of its own (see db/sql/03_slots.sql).
        if waiting:
            await with_retry(self.pool, lambda c: c.execute("SELECT so_pickup_waiting()"))


async def _store_preferences(connection: Connection, tracked_user_id: int, preferences: dict[str, Any]) -> None:
    """Set a tracked user's notify preferences (``mute_until`` as UTC; a blank display name clears it)."""
    if "mute_until" in preferences and preferences["mute_until"] is not None:
        preferences["mute_until"] = to_utc("mute_until", preferences["mute_until"])
    if "display_name" in preferences and preferences["display_name"] is not None:
        preferences["display_name"] = preferences["display_name"].strip() or None
    if preferences:
        args: list[Any] = [tracked_user_id]
        await connection.execute(f"UPDATE tracked_users SET {set_clause(preferences, args)} WHERE id = $1", *args)
