"""Writes to tracker accounts and settings, with the slot rebalancing they trigger."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from seeonline.api.bodies import provided
from seeonline.api.errors import ApiError, not_found
from seeonline.database.pool import Connection, in_transaction
from seeonline.database.row_ids import next_id
from seeonline.database.set_clause import set_clause
from seeonline.logging import get_logger
from seeonline.secrets import keyring, tracker_session
from seeonline.trackers.credentials import api_hash_columns
from seeonline.trackers.schemas import (
    TrackerAccountCreate,
    TrackerAccountUpdate,
    TrackerSettingCreate,
    TrackerSettingUpdate,
)
from seeonline.trackers.sessions import require_session_string

log = get_logger(__name__)

# Columns whose change can make a tracker usable or unusable, or change its capacity.
ACCOUNT_SLOT_FIELDS = frozenset({"is_active", "is_auth"})
SETTING_SLOT_COLUMNS = frozenset({"session_encrypted", "max_users"})


@dataclass(frozen=True)
class TrackerTable:
    """A table whose rows decide a tracker's usability: where its tracker id lives, its API name."""

    name: str
    tracker_column: str
    resource: str


UPDATABLE = {
    "accounts": TrackerTable("tracker_accounts", "id", "TrackerAccount"),
    "settings": TrackerTable("tracker_settings", "tracker_account_id", "TrackerSetting"),
}


class TrackerService:
    """Tracker account and setting writes; every capacity change rebalances in the same transaction."""

    def __init__(self, pool: asyncpg.Pool, secret_key: str) -> None:
        self.pool = pool
        self.keyring = keyring(secret_key)

    async def create_account(self, data: TrackerAccountCreate) -> int:
        """Insert a tracker account; returns its id."""

        async def work(connection: Connection) -> int:
            account_id = await next_id(connection, "tracker_accounts")  # the ciphertext names its row
            columns = {
                "id": account_id,
                "telegram_id": data.telegram_id,
                "api_id": data.api_id,
                **await api_hash_columns(connection, self.keyring, account_id, data.api_hash),
                "is_active": data.is_active,
                "is_auth": data.is_auth,
            }
            placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
            await connection.execute(
                f"INSERT INTO tracker_accounts ({', '.join(columns)}) VALUES ({placeholders})", *columns.values()
            )
            return account_id

        account_id = await in_transaction(self.pool, work)
        log.info("tracker_account_created", tracker_account_id=account_id, telegram_id=data.telegram_id)
        return account_id

    async def account_id_by_telegram_id(self, telegram_id: int) -> int:
        """The id of the account with this Telegram id, or a 404."""
        found: int | None = await self.pool.fetchval(
            "SELECT id FROM tracker_accounts WHERE telegram_id = $1", telegram_id
        )
        if found is None:
            raise not_found("TrackerAccount")
        return found

    async def update_account(self, account_id: int, data: TrackerAccountUpdate) -> None:
        """Apply a PATCH; activation changes move targets within the same transaction."""
        values = provided(data)
        api_hash = values.pop("api_hash", None)
        rebalance = bool(ACCOUNT_SLOT_FIELDS & values.keys())

        async def credentials(connection: Connection) -> dict[str, Any]:
            return {} if api_hash is None else await api_hash_columns(connection, self.keyring, account_id, api_hash)

        await self._update(UPDATABLE["accounts"], account_id, values, rebalance=rebalance, computed=credentials)
        # Field names only: values may be credentials.
        log.info("tracker_account_updated", tracker_account_id=account_id, fields=sorted(provided(data)))

    async def delete_account(self, account_id: int, *, force: bool) -> None:
        """Delete an account after handing its targets on (refused without room unless ``force``)."""
        await self._delete(UPDATABLE["accounts"], account_id, force=force)
        log.info("tracker_account_deleted", tracker_account_id=account_id, force=force)

    async def create_setting(self, data: TrackerSettingCreate) -> int:
        """Insert a setting; its capacity picks up waiting targets at once."""
        where = tracker_session(data.tracker_account_id)
        if data.session_string is not None:
            require_session_string(data.session_string)
        session = None if data.session_string is None else self.keyring.encrypt(data.session_string, where)

        async def work(connection: Connection) -> int:
            setting_id: int = await connection.fetchval(
                "INSERT INTO tracker_settings (tracker_account_id, phone_number, session_encrypted, max_users)"
                " VALUES ($1, $2, $3, $4) RETURNING id",
                data.tracker_account_id,
                data.phone_number,
                session,
                data.max_users,
            )
            await connection.execute("SELECT so_pickup_waiting()")
            return setting_id

        setting_id = await in_transaction(self.pool, work)
        log.info("tracker_setting_created", tracker_setting_id=setting_id, tracker_account_id=data.tracker_account_id)
        return setting_id

    async def setting_id_by(self, column: str, value: object) -> int:
        """The id of the setting matching ``column = value`` (a fixed column name), or a 404."""
        sql = {
            "phone_number": "SELECT id FROM tracker_settings WHERE phone_number = $1",
            "tracker_telegram_id": "SELECT s.id FROM tracker_settings s JOIN tracker_accounts a"
            " ON a.id = s.tracker_account_id WHERE a.telegram_id = $1",
        }[column]
        found: int | None = await self.pool.fetchval(sql, value)
        if found is None:
            raise not_found("TrackerSetting")
        return found

    async def update_setting(self, setting_id: int, data: TrackerSettingUpdate) -> None:
        """Apply a PATCH; capacity or session changes rebalance in the same transaction."""
        values = provided(data)
        current = await self.pool.fetchval("SELECT tracker_account_id FROM tracker_settings WHERE id = $1", setting_id)
        if current is None:
            raise not_found(UPDATABLE["settings"].resource)
        if "tracker_account_id" in values:
            if current != values["tracker_account_id"]:
                raise ApiError(
                    400,
                    "tracker_account_id: a setting cannot move to another tracker account; "
                    "delete it and create a new one",
                    code="invalid",
                    field="tracker_account_id",
                )
            values.pop("tracker_account_id")
        if "session_string" in values:
            session = values.pop("session_string")
            if session is not None:
                require_session_string(session)
            where = tracker_session(current)  # a setting never moves to another account (refused above)
            values["session_encrypted"] = None if session is None else self.keyring.encrypt(session, where)
        rebalance = bool(SETTING_SLOT_COLUMNS & values.keys())
        await self._update(UPDATABLE["settings"], setting_id, values, rebalance=rebalance)
        log.info("tracker_setting_updated", tracker_setting_id=setting_id, fields=sorted(provided(data)))

    async def delete_setting(self, setting_id: int, *, force: bool) -> None:
        """Delete a setting: its tracker loses its capacity, so its targets move first."""
        await self._delete(UPDATABLE["settings"], setting_id, force=force)
        log.info("tracker_setting_deleted", tracker_setting_id=setting_id, force=force)

    async def _update(
        self,
        table: TrackerTable,
        row_id: int,
        values: dict[str, Any],
        *,
        rebalance: bool,
        computed: Callable[[Connection], Awaitable[dict[str, Any]]] | None = None,
    ) -> None:
        """UPDATE one row (plus the ``computed`` columns); rebalance in the same transaction when it matters."""

        async def work(connection: Connection) -> None:
            if rebalance:
                # The rebalance lock comes before any row lock (see db/sql/03_slots.sql).
                await connection.execute("SELECT so_begin_rebalance()")
            extra = {} if computed is None else await computed(connection)
            args: list[Any] = [row_id]
            assignments = set_clause({**values, **extra}, args) or "id = id"
            tracker_id = await connection.fetchval(
                f"UPDATE {table.name} SET {assignments} WHERE id = $1 RETURNING {table.tracker_column}", *args
            )
            if tracker_id is None:
                raise not_found(table.resource)
            if rebalance:
                await connection.execute("SELECT so_rebalance_tracker($1)", tracker_id)

        await in_transaction(self.pool, work)

    async def _delete(self, table: TrackerTable, row_id: int, *, force: bool) -> None:
        """DELETE one row after its tracker's targets moved to others."""

        async def work(connection: Connection) -> None:
            tracker_id = await connection.fetchval(
                f"SELECT {table.tracker_column} FROM {table.name} WHERE id = $1", row_id
            )
            if tracker_id is None:
                raise not_found(table.resource)
            await connection.execute("SELECT so_drain_tracker($1, true, $2)", tracker_id, force)
            await connection.execute(f"DELETE FROM {table.name} WHERE id = $1", row_id)

        await in_transaction(self.pool, work)
