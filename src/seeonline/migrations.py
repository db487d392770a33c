"""Apply and check the Alembic migrations in ``db/``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from seeonline.settings import PROJECT_ROOT, to_sqlalchemy_url

MIGRATIONS_DIR = PROJECT_ROOT / "db"


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at ``db/`` and the given database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", to_sqlalchemy_url(database_url).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def _in_thread(func: object, *args: object) -> None:
    # env.py calls asyncio.run(); keep it off any loop already running in this thread.
    def run() -> None:
        func(*args)  # type: ignore[operator]

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        run()
        return
    import threading  # noqa: PLC0415

    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=guarded)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    _in_thread(command.upgrade, alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    """Revert migrations down to ``revision``."""
    _in_thread(command.downgrade, alembic_config(database_url), revision)


def check(database_url: str) -> None:
    """Raise if the models and the migrated schema differ."""
    _in_thread(command.check, alembic_config(database_url))


def revision(database_url: str, message: str) -> None:
    """Autogenerate a new revision file from the difference between models and database."""
    _in_thread(command.revision, alembic_config(database_url), message, True)


__all__ = ["MIGRATIONS_DIR", "Path", "check", "downgrade", "revision", "upgrade"]
