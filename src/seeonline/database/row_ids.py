"""Taking a row's id before inserting it, for values that must name their own row (bound ciphertexts)."""

from __future__ import annotations

from typing import Any

# The tables whose identity sequence a caller may draw from (a fixed set: the name goes into SQL).
TABLES = frozenset({"tracker_accounts", "tracker_logins", "webhooks"})


async def next_id(connection: Any, table: str) -> int:
    """The next value of ``table``'s id sequence; the INSERT then gives that id explicitly."""
    if table not in TABLES:
        raise ValueError(f"no id sequence is drawn from for {table}")
    row_id: int = await connection.fetchval(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id'))")
    return row_id
