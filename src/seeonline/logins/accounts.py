"""What a finished login writes: the tracker account and its setting, in one transaction.

Runs only after the login client has disconnected, so the supervisor (woken by the NOTIFY these
writes fire) never starts a worker while the login's own connection of the session is still open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg

from seeonline.api.database import Connection, in_transaction
from seeonline.api.errors import ApiError, from_database_error, not_found
from seeonline.logins.store import LoginRow
from seeonline.secrets import encrypt, lookup_hash, mask

if TYPE_CHECKING:
    from seeonline.logins.telegram import SignedIn

# A re-login clears the states that a new session cures; flood waits and privacy stay the worker's to judge.
CURED_BY_LOGIN = ("auth_lost", "banned", "fatal")

# A login for this phone is a re-login of the tracker that has it; the api_id/api_hash must not be another's.
CONFLICTS = """
WITH mine AS (
    SELECT tracker_account_id FROM tracker_settings WHERE regexp_replace(phone_number, '[^0-9]', '', 'g') = $1
)
SELECT CASE WHEN a.api_id = $2 THEN 'api_id' ELSE 'api_hash' END
FROM tracker_accounts a
WHERE (a.api_id = $2 OR a.api_hash_lookup = $3) AND a.id NOT IN (SELECT tracker_account_id FROM mine)
LIMIT 1
"""

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
    """The digits of a phone number (how Telegram and the uniqueness checks compare them)."""
    return "".join(ch for ch in phone if ch.isdigit())


async def check_conflicts(pool: asyncpg.Pool, secret_key: str, phone: str, api_id: int, api_hash: str) -> None:
    """Refuse (409 unique) before sending a code when the api_id or api_hash belongs to another tracker."""
    field: str | None = await pool.fetchval(CONFLICTS, digits(phone), api_id, lookup_hash(secret_key, api_hash))
    if field is not None:
        raise ApiError(409, f"{field}: a tracker account with this {field} already exists", code="unique", field=field)


async def save_tracker(pool: asyncpg.Pool, secret_key: str, login: LoginRow, signed_in: SignedIn) -> int:
    """Create the tracker (or give the existing one with this Telegram id its new session); returns its id."""
    credentials: dict[str, Any] = {
        "api_hash_encrypted": encrypt(secret_key, login.api_hash),
        "api_hash_lookup": lookup_hash(secret_key, login.api_hash),
        "api_hash_masked": mask(login.api_hash),
    }
    session = encrypt(secret_key, signed_in.session)
    privacy = signed_in.privacy

    async def work(connection: Connection) -> int:
        # Deleted meanwhile (DELETE /tracker-logins/{id} mid-flow): the operator gave up on this login.
        if not await connection.fetchval("SELECT true FROM tracker_logins WHERE id = $1 FOR UPDATE", login.id):
            raise not_found("TrackerLogin")
        # The rebalance lock comes before any slot-engine row lock (see db/sql/03_slots.sql).
        await connection.execute("SELECT so_begin_rebalance()")
        tracker_id: int | None = await connection.fetchval(
            """UPDATE tracker_accounts SET api_id = $2, api_hash_encrypted = $3, api_hash_lookup = $4,
                   api_hash_masked = $5, is_auth = true, is_active = coalesce($6, is_active)
               WHERE telegram_id = $1 RETURNING id""",
            signed_in.telegram_id,
            login.api_id,
            *credentials.values(),
            login.is_active,
        )
        if tracker_id is None:
            tracker_id = await connection.fetchval(
                """INSERT INTO tracker_accounts (telegram_id, api_id, api_hash_encrypted, api_hash_lookup,
                       api_hash_masked, is_active, is_auth) VALUES ($1, $2, $3, $4, $5, $6, true) RETURNING id""",
                signed_in.telegram_id,
                login.api_id,
                *credentials.values(),
                True if login.is_active is None else login.is_active,
            )
        else:
            await connection.execute(
                "UPDATE tracker_health SET state = 'stopped', state_until = NULL, last_error = NULL"
                " WHERE tracker_account_id = $1 AND state = ANY($2::text[])",
                tracker_id,
                list(CURED_BY_LOGIN),
            )
        await connection.execute(UPSERT_SETTING, tracker_id, login.phone_number, session, login.max_users)
        if privacy is not None:
            await connection.execute(RECORD_PRIVACY, tracker_id, privacy.ok, privacy.detail)
            if not privacy.ok:
                await connection.execute(MARK_PRIVACY_MISCONFIGURED, tracker_id, privacy.detail)
        await connection.execute("SELECT so_rebalance_tracker($1)", tracker_id)
        await connection.execute(
            """UPDATE tracker_logins SET state = 'done', tracker_account_id = $2, privacy_ok = $3,
                   session_encrypted = NULL, phone_code_hash = NULL, password_hint = NULL, busy_until = NULL,
                   updated_at = now()
               WHERE id = $1""",
            login.id,
            tracker_id,
            None if privacy is None else privacy.ok,
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
