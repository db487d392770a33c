"""``seeonline db``: apply the migrations and check the schema against the code."""

from __future__ import annotations

import click
from alembic.util import CommandError

from seeonline.cli.common import require_database, settings_or_exit
from seeonline.database import migrations
from seeonline.database.routines import RoutinesDriftError


@click.group()
def db() -> None:
    """Database schema commands."""


def upgrade_or_exit(database_url: str, revision: str = "head") -> None:
    """Apply migrations, or stop with a readable reason when the database cannot be reached."""
    try:
        migrations.upgrade(database_url, revision)
    except (OSError, ConnectionError) as exc:
        msg = f"DATABASE_URL: cannot reach the database ({exc})"
        raise click.ClickException(msg) from exc
    except Exception as exc:
        if type(exc).__module__.startswith(("sqlalchemy", "asyncpg")):
            msg = f"DATABASE_URL: migration failed: {exc}"
            raise click.ClickException(msg) from exc
        raise


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(revision: str) -> None:
    """Apply migrations to DATABASE_URL."""
    upgrade_or_exit(require_database(settings_or_exit()), revision)
    click.echo(f"database upgraded to {revision}")


@db.command("check")
def db_check() -> None:
    """Fail when the database is not at head, or its tables or SQL routines differ from the code."""
    try:
        migrations.check(require_database(settings_or_exit()))
    except (CommandError, RoutinesDriftError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("schema matches the models and db/sql/")
