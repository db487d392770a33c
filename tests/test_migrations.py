"""Migrations apply to an empty database, match the models, and roll back cleanly."""

from __future__ import annotations

import asyncpg
import pytest

from seeonline import migrations
from tests.conftest import PostgresServer


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
