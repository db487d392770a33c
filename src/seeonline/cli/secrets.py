"""``seeonline secrets rotate``: re-encrypt the stored credentials under the first key of SEEONLINE_SECRET_KEY."""

from __future__ import annotations

import asyncio

import asyncpg
import click

from seeonline.cli.common import require_database, settings_or_exit
from seeonline.key_rotation import RotationError, RotationReport, rotate
from seeonline.secrets import keyring
from seeonline.settings import to_asyncpg_dsn


@click.group()
def secrets() -> None:
    """Commands for the encrypted credentials."""


@secrets.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every stored secret under the first key of SEEONLINE_SECRET_KEY, and redo the lookup hashes.

    Put the new key first (SEEONLINE_SECRET_KEY=new,old) on every process, run this, then drop the old key.
    """
    settings = settings_or_exit()
    url = require_database(settings)
    if settings.secret_key is None:
        raise click.ClickException("SEEONLINE_SECRET_KEY: not set (list the new key first, then the old ones)")
    try:
        report = asyncio.run(_rotate(to_asyncpg_dsn(url), settings.secret_key))
    except RotationError as exc:
        msg = f"rotation stopped: {exc} (is the key that made it listed in SEEONLINE_SECRET_KEY?)"
        raise click.ClickException(msg) from exc
    except (OSError, asyncpg.PostgresError) as exc:
        raise click.ClickException(f"DATABASE_URL: {exc}") from exc
    for column, count in report.rewritten.items():
        click.echo(f"{column}: {count} re-encrypted, {report.current[column]} already under the first key")
    click.echo("every stored secret is under the first key; the others can be removed from SEEONLINE_SECRET_KEY")


async def _rotate(dsn: str, secret_key: str) -> RotationReport:
    connection = await asyncpg.connect(dsn)
    try:
        return await rotate(connection, keyring(secret_key))
    finally:
        await connection.close()
