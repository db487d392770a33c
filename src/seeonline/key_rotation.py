"""``seeonline secrets rotate``: re-encrypt every stored secret under the first key and redo the lookup hashes.

Run it after putting a new key in front of ``SEEONLINE_SECRET_KEY`` (``new,old``) on every process; once it
reports nothing left under an older key, the old key can be dropped. Rows are rewritten in small
transactions (each row locked while rewritten), so the API and workers keep running meanwhile; a row
already in the current format under the first key is left alone, so a rotation can be repeated or resumed.
Format 1 ciphertexts (written before key ids and row binding) are rewritten too: afterwards every secret
is bound to its row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from seeonline.secrets import Keyring, SecretKeyError, Where

BATCH = 200


@dataclass(frozen=True)
class StoredSecret:
    """A column holding ciphertexts: its table, the column that keys its rows, and its lookup-hash column."""

    table: str
    column: str
    row_key: str = "id"
    lookup_column: str | None = None


# Every encrypted column (one definition: the ``Where`` helpers in seeonline.secrets name the same places).
STORED_SECRETS = (
    StoredSecret("tracker_accounts", "api_hash_encrypted", lookup_column="api_hash_lookup"),
    StoredSecret("tracker_settings", "session_encrypted", row_key="tracker_account_id"),
    StoredSecret("tracker_logins", "api_hash_encrypted"),
    StoredSecret("tracker_logins", "session_encrypted"),
    StoredSecret("webhooks", "secret_encrypted"),
)


class RotationError(Exception):
    """A stored secret could not be decrypted with any listed key; nothing of that row was changed."""


@dataclass
class RotationReport:
    """How many ciphertexts each column had rewritten and already current."""

    rewritten: dict[str, int] = field(default_factory=dict)
    current: dict[str, int] = field(default_factory=dict)


async def rotate(connection: asyncpg.Connection, keys: Keyring) -> RotationReport:
    """Re-encrypt every stored secret under ``keys``' first key; returns what was done."""
    report = RotationReport()
    for stored in STORED_SECRETS:
        name = f"{stored.table}.{stored.column}"
        report.rewritten[name], report.current[name] = await _rotate_column(connection, keys, stored)
    return report


async def _rotate_column(connection: asyncpg.Connection, keys: Keyring, stored: StoredSecret) -> tuple[int, int]:
    rewritten = current = 0
    after = 0
    lookup = f", {stored.lookup_column} = $3" if stored.lookup_column else ""
    # Fixed names from STORED_SECRETS only.
    select = (
        f"SELECT id, {stored.row_key} AS row_key, {stored.column} AS token FROM {stored.table}"
        f" WHERE id > $1 AND {stored.column} IS NOT NULL ORDER BY id LIMIT {BATCH} FOR UPDATE"
    )
    update = f"UPDATE {stored.table} SET {stored.column} = $2{lookup} WHERE id = $1"
    while True:
        async with connection.transaction():
            await connection.execute("SET LOCAL seeonline.key_rotation = 'on'")  # not a change of the row
            rows = await connection.fetch(select, after)
            for row in rows:
                if keys.is_current(row["token"]):
                    current += 1
                    continue
                where = Where(stored.table, stored.column, row["row_key"])
                try:
                    plaintext = keys.decrypt(row["token"], where)
                except SecretKeyError as exc:
                    msg = f"{stored.table} row {row['id']}, {stored.column}: {exc}"
                    raise RotationError(msg) from None
                args: list[object] = [row["id"], keys.encrypt(plaintext, where)]
                if stored.lookup_column:
                    args.append(keys.lookup_hash(plaintext))
                await connection.execute(update, *args)
                rewritten += 1
        if len(rows) < BATCH:
            return rewritten, current
        after = rows[-1]["id"]
