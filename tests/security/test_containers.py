"""A real deployment's database roles (deploy/postgres/roles.sql) and secrets read from files (``*_FILE``).

The application role reads and writes rows and runs the routines, including housekeeping's partition
work, but cannot create, alter or drop anything; the migration role owns the schema.
"""

from __future__ import annotations

import datetime
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from seeonline.database import migrations
from seeonline.database.maintenance import drop_expired_status_partitions, ensure_status_partitions
from seeonline.settings import SettingsError, load_settings
from tests.support.http import same_loop_client
from tests.support.keys import API_KEY, SECRET_KEY
from tests.support.postgres import PostgresServer

ROLES_SQL = Path(__file__).resolve().parents[2] / "deploy" / "postgres" / "roles.sql"


def render(sql: str, variables: dict[str, str]) -> str:
    """What psql makes of ``:"name"`` (an identifier) and ``:'name'`` (a literal)."""
    sql = re.sub(r':"(\w+)"', lambda m: '"' + variables[m[1]].replace('"', '""') + '"', sql)
    return re.sub(r":'(\w+)'", lambda m: "'" + variables[m[1]].replace("'", "''") + "'", sql)


def as_role(url: str, role: str, password: str, database: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    return urlunsplit(parts._replace(netloc=f"{role}:{password}@{host}:{parts.port}", path=f"/{database}"))


@dataclass
class Deployment:
    migrate_url: str
    app_url: str


@pytest.fixture
async def deployment(postgres_server: PostgresServer) -> AsyncIterator[Deployment]:
    tag = secrets.token_hex(4)
    variables = {
        "database": f"seeonline_roles_{tag}",
        "migrate_role": f"so_migrate_{tag}",
        "migrate_password": secrets.token_hex(12),
        "app_role": f"so_app_{tag}",
        "app_password": secrets.token_hex(12),
    }
    server_part, database_part = render(ROLES_SQL.read_text(), variables).split("\\connect", 1)
    database_part = database_part.split("\n", 1)[1]
    await postgres_server.execute(f'CREATE DATABASE "{variables["database"]}"')
    admin = await asyncpg.connect(postgres_server.admin_url)
    try:
        await admin.execute(server_part)
        inside = await asyncpg.connect(postgres_server.url(variables["database"]))
        try:
            await inside.execute(database_part)
        finally:
            await inside.close()
        yield Deployment(
            as_role(
                postgres_server.admin_url,
                variables["migrate_role"],
                variables["migrate_password"],
                variables["database"],
            ),
            as_role(postgres_server.admin_url, variables["app_role"], variables["app_password"], variables["database"]),
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{variables["database"]}" WITH (FORCE)')
        await admin.execute(f'DROP ROLE IF EXISTS "{variables["app_role"]}"')
        await admin.execute(f'DROP ROLE IF EXISTS "{variables["migrate_role"]}"')
        await admin.close()


async def test_the_app_role_works_rows_but_cannot_change_the_schema(deployment: Deployment) -> None:
    migrations.upgrade(deployment.migrate_url)
    migrations.check(deployment.migrate_url)
    settings = load_settings(
        {"DATABASE_URL": deployment.app_url, "SEEONLINE_API_KEYS": API_KEY, "SEEONLINE_SECRET_KEY": SECRET_KEY}
    )
    async with same_loop_client(settings) as http:
        created = await http.post("/tracker-accounts/", json={"telegram_id": 1, "api_id": 2, "api_hash": "a-hash-0001"})
        assert created.status_code == 201, created.text
        person = await http.post("/telegram-users/", json={"telegram_id": 3, "max_users": 2})
        assert person.status_code == 201, person.text
    app: asyncpg.Connection[Any] = await asyncpg.connect(deployment.app_url)
    try:
        # Housekeeping's partition work runs as the schema's owner (SECURITY DEFINER routines).
        assert await ensure_status_partitions(app, months_ahead=14) > 0
        far = datetime.date.today() + datetime.timedelta(days=3 * 366)
        assert await drop_expired_status_partitions(app, retention_months=1, today=far)
        for statement in (
            "CREATE TABLE intruder (x int)",
            "DROP TABLE tracker_accounts",
            "ALTER TABLE tracker_accounts ADD COLUMN x int",
            "TRUNCATE tracker_accounts",
            "CREATE FUNCTION so_evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "COPY tracker_accounts TO PROGRAM 'id'",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.execute(statement)
    finally:
        await app.close()


def test_secrets_can_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text(SECRET_KEY + "\n")
    (tmp_path / "api_keys").write_text(f"{API_KEY}\n")
    settings = load_settings(
        {
            "SEEONLINE_SECRET_KEY_FILE": str(tmp_path / "secret_key"),
            "SEEONLINE_API_KEYS_FILE": str(tmp_path / "api_keys"),
        }
    )
    assert (settings.secret_key, settings.api_keys) == (SECRET_KEY, (API_KEY,))
    with pytest.raises(SettingsError, match="SEEONLINE_SECRET_KEY_FILE: cannot read"):
        load_settings({"SEEONLINE_SECRET_KEY_FILE": str(tmp_path / "missing")})
    with pytest.raises(SettingsError, match="either SEEONLINE_SECRET_KEY or SEEONLINE_SECRET_KEY_FILE"):
        load_settings({"SEEONLINE_SECRET_KEY": SECRET_KEY, "SEEONLINE_SECRET_KEY_FILE": str(tmp_path / "secret_key")})
    (tmp_path / "weak").write_text("short")
    with pytest.raises(SettingsError, match="SEEONLINE_SECRET_KEY") as caught:
        load_settings({"SEEONLINE_SECRET_KEY_FILE": str(tmp_path / "weak")})
    assert "short" not in str(caught.value)
