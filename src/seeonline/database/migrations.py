"""Apply and check the Alembic migrations in ``db/``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from alembic import command
from alembic.config import Config

from seeonline.database.routines import Step
from seeonline.paths import MIGRATIONS_DIR
from seeonline.settings import to_sqlalchemy_url


def alembic_config(database_url: str, routines: Step) -> Config:
    """An Alembic config pointing at ``db/`` and the given database; ``routines`` is for ``db/env.py``."""
    config = Config()
    config.attributes["routines"] = routines
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", to_sqlalchemy_url(database_url).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def _off_the_event_loop(func: Callable[..., object], *args: object) -> None:
    """Run an Alembic command; in a thread of its own when this thread already runs an event loop.

    ``db/env.py`` calls ``asyncio.run()``, which refuses to start inside a running loop (async tests).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        func(*args)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(func, *args).result()


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``; at head, the SQL routines are (re)installed as needed.

    The routines in ``db/sql/`` belong to the head revision: below it they are dropped, and the
    release that matches that revision installs its own with its ``db upgrade``.
    """
    routines = Step.INSTALL if revision == "head" else Step.DROP
    _off_the_event_loop(command.upgrade, alembic_config(database_url, routines), revision)


def downgrade(database_url: str, revision: str) -> None:
    """Revert migrations down to ``revision``, dropping the SQL routines first."""
    _off_the_event_loop(command.downgrade, alembic_config(database_url, Step.DROP), revision)


def check(database_url: str) -> None:
    """Raise if the database is not at head, its tables differ from the models, or its routines from db/sql/."""
    _off_the_event_loop(command.check, alembic_config(database_url, Step.VERIFY))
