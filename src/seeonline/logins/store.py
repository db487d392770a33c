"""The ``tracker_logins`` rows: creating, leasing one for a Telegram step, recording where it stands.

A lease (``busy_until``) lets one step at a time use a login's auth key, across API processes, without
holding a database connection while Telegram answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from seeonline.api.errors import ApiError, not_found
from seeonline.secrets import decrypt, encrypt

# How long a login lives (Telegram's codes expire sooner; the pre-login session must not linger).
LOGIN_LIFETIME_SECONDS = 15 * 60
# Longer than a step can take (seeonline.logins.telegram.STEP_TIMEOUT plus the database work).
LEASE_SECONDS = 90
RESOURCE = "TrackerLogin"

CLAIM = """
UPDATE tracker_logins SET busy_until = now() + make_interval(secs => $2)
WHERE id = $1 AND (busy_until IS NULL OR busy_until < now())
RETURNING id, state, phone_number, api_id, api_hash_encrypted, session_encrypted, phone_code_hash, max_users,
          is_active, expires_at <= now() AS expired
"""

# Expired logins keep no session; rows older than a day go altogether.
SWEEP = """
UPDATE tracker_logins SET session_encrypted = NULL, phone_code_hash = NULL
WHERE expires_at <= now() AND session_encrypted IS NOT NULL;
DELETE FROM tracker_logins WHERE expires_at < now() - interval '1 day';
"""


@dataclass(frozen=True)
class LoginRow:
    """A leased login with its secrets decrypted (in memory only)."""

    id: int
    state: str
    phone_number: str
    api_id: int
    api_hash: str
    session: str | None
    phone_code_hash: str | None
    max_users: int
    is_active: bool | None


class LoginStore:
    """SQL over ``tracker_logins``; secrets are encrypted on the way in and decrypted on the way out."""

    def __init__(self, pool: asyncpg.Pool, secret_key: str) -> None:
        self.pool = pool
        self.secret_key = secret_key

    def seal(self, plaintext: str) -> str:
        """Encrypt a secret for storage."""
        return encrypt(self.secret_key, plaintext)

    async def create(
        self,
        *,
        phone: str,
        api_id: int,
        api_hash: str,
        session: str,
        code_hash: str,
        code_type: str,
        code_length: int | None,
        max_users: int,
        is_active: bool | None,
    ) -> int:
        """Store a login whose code was just sent; returns its id."""
        await self.pool.execute(SWEEP)
        login_id: int = await self.pool.fetchval(
            """INSERT INTO tracker_logins (phone_number, api_id, api_hash_encrypted, session_encrypted,
                   phone_code_hash, code_type, code_length, max_users, is_active, state, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'code_sent', now() + make_interval(secs => $10))
               RETURNING id""",
            phone,
            api_id,
            self.seal(api_hash),
            self.seal(session),
            code_hash,
            code_type,
            code_length,
            max_users,
            is_active,
            LOGIN_LIFETIME_SECONDS,
        )
        return login_id

    async def claim(self, login_id: int, *states: str) -> LoginRow:
        """Lease the login for one step; 404, 409 ``login_busy``, ``code_expired`` or ``wrong_state``."""
        record = await self.pool.fetchrow(CLAIM, login_id, LEASE_SECONDS)
        if record is None:
            if await self.pool.fetchval("SELECT 1 FROM tracker_logins WHERE id = $1", login_id):
                raise ApiError(409, "another step of this login is running; retry shortly", code="login_busy")
            raise not_found(RESOURCE)
        try:
            return self._checked(record, states)
        except ApiError as exc:
            if exc.code == "code_expired":  # an expired login's pre-login session is of no further use
                await self.release(login_id, session_encrypted=None, phone_code_hash=None)
            else:
                await self.release(login_id)
            raise

    def _checked(self, record: Any, states: tuple[str, ...]) -> LoginRow:
        if record["state"] == "done":
            raise ApiError(409, "this login is done; start a new one to log in again", code="wrong_state")
        if record["expired"] or record["session_encrypted"] is None:
            raise ApiError(409, "this login expired (15 minutes); start a new one", code="code_expired")
        if record["state"] not in states:
            wanted = " or ".join(states)
            raise ApiError(409, f"this login is in state {record['state']}, not {wanted}", code="wrong_state")
        return LoginRow(
            id=record["id"],
            state=record["state"],
            phone_number=record["phone_number"],
            api_id=record["api_id"],
            api_hash=decrypt(self.secret_key, record["api_hash_encrypted"]),
            session=decrypt(self.secret_key, record["session_encrypted"]),
            phone_code_hash=record["phone_code_hash"],
            max_users=record["max_users"],
            is_active=record["is_active"],
        )

    async def release(self, login_id: int, **changes: Any) -> None:
        """End the lease, applying ``changes`` (column = value; column names are the service's own)."""
        args: list[Any] = [login_id]
        assignments = ["busy_until = NULL", "updated_at = now()"]
        for column, value in changes.items():
            args.append(value)
            assignments.append(f"{column} = ${len(args)}")
        await self.pool.execute(f"UPDATE tracker_logins SET {', '.join(assignments)} WHERE id = $1", *args)

    async def delete(self, login_id: int) -> None:
        """Forget a login (and its pre-login session); 404 when there is none."""
        status: str = await self.pool.execute("DELETE FROM tracker_logins WHERE id = $1", login_id)
        if status.endswith(" 0"):
            raise not_found(RESOURCE)
