"""One username rule, in Python and in SQL: the same answers for the same input."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from seeonline import usernames

CASES = [
    ("durov", "durov"),
    ("@Durov", "durov"),
    ("  @DuRov\t", "durov"),
    ("@@durov", "@durov"),  # one leading @ only: not a username, so it matches nothing
    ("du@rov", "du@rov"),
    ("", ""),
]


@pytest.mark.parametrize(("raw", "key"), CASES)
async def test_python_and_sql_normalize_usernames_alike(raw: str, key: str, db: asyncpg.Connection[Any]) -> None:
    assert usernames.normalize(raw) == key
    assert await db.fetchval(f"SELECT {usernames.sql_normalized('$1')}", raw) == key
