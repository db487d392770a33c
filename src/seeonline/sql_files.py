"""Load the SQL files under ``db/sql`` with the shared names filled in."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from seeonline.channels import SQL_PLACEHOLDERS
from seeonline.settings import PROJECT_ROOT

SQL_DIR = PROJECT_ROOT / "db" / "sql"


def load_sql(name: str) -> str:
    """The text of ``db/sql/<name>`` with channel names and lock keys substituted."""
    text = (SQL_DIR / name).read_text()
    for placeholder, value in SQL_PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    return text


def execute_sql_script(connection: Connection, name: str) -> None:
    """Run a multi-statement SQL file inside a migration (asyncpg's simple query protocol)."""
    script = load_sql(name)
    driver_connection: Any = connection.connection.dbapi_connection
    driver_connection.run_async(lambda raw: raw.execute(script))
