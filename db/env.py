"""Alembic environment: runs migrations over asyncpg against ``DATABASE_URL``.

Around the revisions, in the same transaction, it handles the SQL routines (``db/sql/``, see
``seeonline.database.routines``): they are dropped before any revision runs (a revision may change
what they depend on) and reinstalled once the database is at head. ``seeonline.database.migrations`` says
which applies through the config attribute ``routines`` (a ``routines.Step``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from alembic.script import ScriptDirectory
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config

from seeonline.database import routines
from seeonline.models import Base

config = context.config
target_metadata = Base.metadata


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Ignore tables the models do not declare, such as the monthly status partitions."""
    if type_ == "table":
        return name in target_metadata.tables
    return True


def _at_head() -> bool:
    heads = set(ScriptDirectory.from_config(config).get_heads())
    return set(context.get_context().get_current_heads()) == heads


def do_run_migrations(connection: Connection) -> None:
    """Run the migrations and the routines step inside one transaction."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=include_name,
        compare_type=True,
        compare_server_default=True,
    )
    step = routines.Step(config.attributes.get("routines", routines.Step.INSTALL))
    with context.begin_transaction():
        if step is routines.Step.DROP or (step is routines.Step.INSTALL and not _at_head()):
            routines.drop(connection)
        context.run_migrations()
        if step is routines.Step.INSTALL:
            routines.ensure_installed(connection)
        elif step is routines.Step.VERIFY:
            routines.verify(connection)


async def run_async_migrations() -> None:
    """Connect and run the migrations."""
    engine = async_engine_from_config(
        config.get_section(config.config_ini_section) or {}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_async_migrations())
