"""What a finished login writes: the tracker account and its setting, in one transaction.

Runs only after the login client has disconnected, so the supervisor (woken by the NOTIFY these
writes fire) never starts a worker while the login's own connection of the session is still open.
"""

from __future__ import annotations

import asyncpg

from seeonline.api.errors import from_database_error, not_found
from seeonline.choices import LoginState
from seeonline.database.pool import Connection, in_transaction
from seeonline.database.row_ids import next_id
from seeonline.health import HealthState
from seeonline.logins.store import LoginRow
from seeonline.secrets import keyring, tracker_session
from seeonline.trackers.credentials import api_hash_columns

ASCII_DIGITS = frozenset("0123456789")

# A re-login clears the states that a new session cures; flood waits and privacy stay the worker's to judge.
CURED_BY_LOGIN = ("auth_lost", "banned", "fatal")

UPSERT_SETTING = """
INSERT INTO tracker_settings (tracker_account_id, phone_number, session_encrypted, max_users)
VALUES ($1, $2, $3, $4)
ON CONFLICT (tracker_account_id) DO UPDATE SET
    phone_number = EXCLUDED.phone_number, session_encrypted = EXCLUDED.session_encrypted,
    max_users = EXCLUDED.max_users
"""

RECORD_PRIVACY = """
INSERT INTO tracker_privacy_checks (tracker_account_id, checked_at, privacy_ok, detail) VALUES ($1, now(), $2, $3)
ON CONFLICT (tracker_account_id) DO UPDATE SET
    checked_at = EXCLUDED.checked_at, privacy_ok = EXCLUDED.privacy_ok, detail = EXCLUDED.detail, fixed = false
"""

# Not usable until its worker sees the setting fixed (the worker re-checks at start).
MARK_PRIVACY_MISCONFIGURED = """
INSERT INTO tracker_health (tracker_account_id, state, last_error) VALUES ($1, 'privacy_misconfigured', $2)
ON CONFLICT (tracker_account_id) DO UPDATE SET state = EXCLUDED.state, state_until = NULL,
    last_error = EXCLUDED.last_error
"""


def digits(phone: str) -> str:
    """The ASCII digits of a phone number (how Telegram compares them)."""
    return "".join(ch for ch in phone if ch in ASCII_DIGITS)


async def save_tracker(pool: asyncpg.Pool, secret_key: str, login: LoginRow) -> int:
    """Create the tracker (or give the existing one with this Telegram id its new session); returns its id.

    ``login`` is signed in (its session authorized, its ``telegram_id`` known). Whether this is a re-login is
    decided by the Telegram id alone; an api_id, api_hash or phone that another tracker holds is a 409
    ``unique`` naming the field (the login stays signed_in, so the call can be repeated once that is fixed).
    """
    assert login.telegram_id is not None and login.session is not None
    plain_session = login.session
    keys = keyring(secret_key)

    async def work(connection: Connection) -> int:
        # Deleted meanwhile (DELETE /tracker-logins/{id} mid-flow): the operator gave up on this login.
        if not await connection.fetchval("SELECT true FROM tracker_logins WHERE id = $1 FOR UPDATE", login.id):
            raise not_found("TrackerLogin")
        # The rebalance lock comes before any slot-engine row lock (see db/sql/03_slots.sql).
        await connection.execute("SELECT so_begin_rebalance()")
        existing: int | None = await connection.fetchval(
            "SELECT id FROM tracker_accounts WHERE telegram_id = $1 FOR UPDATE", login.telegram_id
        )
        # The ciphertexts name their row, so the id comes first.
        tracker_id = existing if existing is not None else await next_id(connection, "tracker_accounts")
        credentials = await api_hash_columns(connection, keys, tracker_id, login.api_hash)
        if existing is not None:
            await connection.execute(
                """UPDATE tracker_accounts SET api_id = $2, api_hash_encrypted = $3, api_hash_lookup = $4,
                       api_hash_masked = $5, is_auth = true, is_active = coalesce($6, is_active)
                   WHERE id = $1""",
                tracker_id,
                login.api_id,
                *credentials.values(),
                login.is_active,
            )
        else:
            await connection.execute(
                """INSERT INTO tracker_accounts (id, telegram_id, api_id, api_hash_encrypted, api_hash_lookup,
                       api_hash_masked, is_active, is_auth) VALUES ($7, $1, $2, $3, $4, $5, $6, true)""",
                login.telegram_id,
                login.api_id,
                *credentials.values(),
                True if login.is_active is None else login.is_active,
                tracker_id,
            )
        session = keys.encrypt(plain_session, tracker_session(tracker_id))
        if existing is not None:
            await connection.execute(
                f"UPDATE tracker_health SET state = '{HealthState.STOPPED}', state_until = NULL, last_error = NULL"
                " WHERE tracker_account_id = $1 AND state = ANY($2::text[])",
                tracker_id,
                list(CURED_BY_LOGIN),
            )
        await connection.execute(UPSERT_SETTING, tracker_id, login.phone_number, session, login.max_users)
        if login.privacy_ok is not None:
            await connection.execute(RECORD_PRIVACY, tracker_id, login.privacy_ok, login.privacy_detail)
            if not login.privacy_ok:
                await connection.execute(MARK_PRIVACY_MISCONFIGURED, tracker_id, login.privacy_detail)
        await connection.execute("SELECT so_rebalance_tracker($1)", tracker_id)
        await connection.execute(
            """UPDATE tracker_logins SET state = $3, tracker_account_id = $2, session_encrypted = NULL,
                   phone_code_hash = NULL, password_hint = NULL, busy_until = NULL, updated_at = now()
               WHERE id = $1""",
            login.id,
            tracker_id,
            LoginState.DONE,
        )
        assert tracker_id is not None
        return tracker_id

    try:
        return await in_transaction(pool, work)
    except asyncpg.PostgresError as exc:
        mapped = from_database_error(exc)
        if mapped is None:
            raise
        raise mapped from None
