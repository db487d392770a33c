"""The ``tracker_logins`` rows: creating, leasing one for a Telegram step, recording where it stands.

A lease (``busy_until``) lets one step at a time use a login's auth key, across API processes, without
holding a database connection while Telegram answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from seeonline.api.errors import ApiError, not_found
from seeonline.choices import LoginState
from seeonline.database.row_ids import next_id
from seeonline.secrets import keyring, login_secret

# How long a login lives (Telegram's codes expire sooner; the pre-login session must not linger).
LOGIN_LIFETIME_SECONDS = 15 * 60
# Longer than a step can take (seeonline.logins.telegram.STEP_TIMEOUT plus the database work).
LEASE_SECONDS = 90
RESOURCE = "TrackerLogin"

CLAIM = """
UPDATE tracker_logins SET busy_until = now() + make_interval(secs => $2)
WHERE id = $1 AND (busy_until IS NULL OR busy_until < now())
RETURNING id, state, phone_number, api_id, api_hash_encrypted, session_encrypted, phone_code_hash, max_users,
          is_active, telegram_id, privacy_ok, privacy_detail, expires_at <= now() AS expired
"""

# Only when no step holds the lease: a step running meanwhile may be signing in on this very key.
DELETE = """
DELETE FROM tracker_logins WHERE id = $1 AND (busy_until IS NULL OR busy_until < now())
RETURNING id, state, api_id, api_hash_encrypted, session_encrypted
"""

# The columns a step may write (``release`` and ``record`` build their SQL from these names only).
WRITABLE = frozenset(
    {
        "state",
        "session_encrypted",
        "phone_code_hash",
        "code_type",
        "code_length",
        "password_hint",
        "telegram_id",
        "privacy_ok",
        "privacy_detail",
    }
)


def busy() -> ApiError:
    """409 ``login_busy``: another step holds the login's lease."""
    return ApiError(409, "another step of this login is running; retry shortly", code="login_busy")


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
    # Set once signed in (state signed_in): the account, and its privacy check (None: unknown).
    telegram_id: int | None = None
    privacy_ok: bool | None = None
    privacy_detail: str | None = None


@dataclass(frozen=True)
class DeletedLogin:
    """What a deleted login held: a signed-in one's session is an authorized key to log out."""

    state: str
    api_id: int
    api_hash: str
    session: str | None


class LoginStore:
    """SQL over ``tracker_logins``; secrets are encrypted on the way in and decrypted on the way out."""

    def __init__(self, pool: asyncpg.Pool, secret_key: str) -> None:
        self.pool = pool
        self.keyring = keyring(secret_key)

    def seal(self, column: str, login_id: int, plaintext: str) -> str:
        """Encrypt a secret for storage in ``column`` of this login."""
        return self.keyring.encrypt(plaintext, login_secret(column, login_id))

    def seal_session(self, login_id: int, session: str) -> str:
        """Encrypt a login's (pre-login or signed-in) session for storage."""
        return self.seal("session_encrypted", login_id, session)

    def _open(self, column: str, record: Any) -> str:
        return self.keyring.decrypt(record[column], login_secret(column, record["id"]))

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
        await self.pool.execute("SELECT so_sweep_logins()")
        login_id = await next_id(self.pool, "tracker_logins")  # the ciphertexts name their row
        await self.pool.execute(
            """INSERT INTO tracker_logins (id, phone_number, api_id, api_hash_encrypted, session_encrypted,
                   phone_code_hash, code_type, code_length, max_users, is_active, state, expires_at)
               VALUES ($12, $1, $2, $3, $4, $5, $6, $7, $8, $9, $11, now() + make_interval(secs => $10))""",
            phone,
            api_id,
            self.seal("api_hash_encrypted", login_id, api_hash),
            self.seal_session(login_id, session),
            code_hash,
            code_type,
            code_length,
            max_users,
            is_active,
            LOGIN_LIFETIME_SECONDS,
            LoginState.CODE_SENT,
            login_id,
        )
        return login_id

    async def claim(self, login_id: int, *states: str) -> LoginRow:
        """Lease the login for one step; 404, 409 ``login_busy``, ``code_expired`` or ``wrong_state``."""
        record = await self.pool.fetchrow(CLAIM, login_id, LEASE_SECONDS)
        if record is None:
            if await self.pool.fetchval("SELECT 1 FROM tracker_logins WHERE id = $1", login_id):
                raise busy()
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
        if record["state"] == LoginState.DONE:
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
            api_hash=self._open("api_hash_encrypted", record),
            session=self._open("session_encrypted", record),
            phone_code_hash=record["phone_code_hash"],
            max_users=record["max_users"],
            is_active=record["is_active"],
            telegram_id=record["telegram_id"],
            privacy_ok=record["privacy_ok"],
            privacy_detail=record["privacy_detail"],
        )

    async def release(self, login_id: int, **changes: Any) -> None:
        """End the lease, applying ``changes`` (column = value; columns from ``WRITABLE`` only)."""
        await self._write(login_id, changes, release=True)

    async def record(self, login_id: int, **changes: Any) -> None:
        """Apply ``changes`` and keep the lease (the step goes on)."""
        await self._write(login_id, changes, release=False)

    async def _write(self, login_id: int, changes: dict[str, Any], *, release: bool) -> None:
        unknown = set(changes) - WRITABLE
        if unknown:
            raise ValueError(f"not a writable tracker_logins column: {sorted(unknown)}")
        args: list[Any] = [login_id]
        assignments = ["updated_at = now()"] + (["busy_until = NULL"] if release else [])
        for column, value in changes.items():
            args.append(value)
            assignments.append(f"{column} = ${len(args)}")
        await self.pool.execute(f"UPDATE tracker_logins SET {', '.join(assignments)} WHERE id = $1", *args)

    async def delete(self, login_id: int) -> DeletedLogin:
        """Forget a login (and its pre-login session); 404 when there is none, 409 while a step runs."""
        record = await self.pool.fetchrow(DELETE, login_id)
        if record is None:
            if await self.pool.fetchval("SELECT 1 FROM tracker_logins WHERE id = $1", login_id):
                raise busy()
            raise not_found(RESOURCE)
        return DeletedLogin(
            state=record["state"],
            api_id=record["api_id"],
            api_hash=self._open("api_hash_encrypted", record),
            session=None if record["session_encrypted"] is None else self._open("session_encrypted", record),
        )
