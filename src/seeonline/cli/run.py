"""``seeonline run`` and ``seeonline demo``: the whole service on one machine.

An embedded Postgres when no DATABASE_URL is set, the demo sandbox when there is nothing to track, the
supervisor as a child process, and the API in this one.
"""

from __future__ import annotations

import click
import msgspec

from seeonline.cli.common import require_database, settings_or_exit
from seeonline.cli.db import upgrade_or_exit
from seeonline.cli.serve import serve_api
from seeonline.processes import stop_child


@click.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--no-supervisor", is_flag=True, help="Serve the API only.")
@click.option(
    "--demo/--no-demo",
    default=None,
    help="Run against the Telegram sandbox. Default: on when no DATABASE_URL is set and no tracker is registered.",
)
def run(host: str, port: int, no_supervisor: bool, demo: bool | None) -> None:
    """Run the API and the supervisor; without DATABASE_URL, on an embedded Postgres."""
    run_service(host=host, port=port, supervisor=not no_supervisor, demo=demo)


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def demo(host: str, port: int) -> None:
    """Run everything against the Telegram sandbox with simulated people (fresh demo database)."""
    run_service(host=host, port=port, supervisor=True, demo=True)


def run_service(*, host: str, port: int, supervisor: bool, demo: bool | None) -> None:
    """Start the database if needed, optionally the demo sandbox, the supervisor, then serve the API."""
    from seeonline.local.embedded_postgres import EmbeddedPostgresError  # noqa: PLC0415 - keeps start-up light
    from seeonline.local.stack import (  # noqa: PLC0415
        has_tracker_accounts,
        load_or_create_credentials,
        start_embedded_database,
        start_supervisor_process,
        with_database,
    )

    settings = settings_or_exit()
    server = None
    if settings.database_url is None:
        try:
            server, url = start_embedded_database(settings.data_dir)
        except EmbeddedPostgresError as exc:
            raise click.ClickException(f"embedded Postgres: {exc}") from exc
        credentials = load_or_create_credentials(settings.data_dir)
        settings = msgspec.structs.replace(
            settings,
            database_url=url,
            api_keys=settings.api_keys or (credentials.api_key,),
            secret_key=settings.secret_key or credentials.secret_key,
        )
        click.echo(f"Embedded Postgres: {url} (data in {settings.data_dir / 'postgres'})", err=True)
        if credentials.api_key in settings.api_keys:
            click.echo(f"Development API key (X-API-Key): {credentials.api_key}", err=True)
    else:
        upgrade_or_exit(settings.database_url)
    url = require_database(settings)
    if demo is None:
        demo = server is not None and not has_tracker_accounts(url)
    sandbox = None
    if demo:
        from seeonline.local.demo import DEMO_DATABASE, prepare_demo  # noqa: PLC0415 - imports Telethon

        if settings.secret_key is None:
            msg = "SEEONLINE_SECRET_KEY: not set (the demo stores sandbox sessions encrypted)"
            raise click.ClickException(msg)
        demo_url = with_database(url, DEMO_DATABASE)
        click.echo(
            "No Telegram trackers configured: running the demo against the Telegram sandbox "
            f"(simulated people; database {DEMO_DATABASE}, recreated on every demo start).",
            err=True,
        )
        sandbox = prepare_demo(
            with_database(url, "postgres"), demo_url, settings.secret_key, trackers=3, people=12, rate=0.5
        )
        settings = msgspec.structs.replace(settings, database_url=demo_url)
        click.echo(f"Sandbox control API: {sandbox.manifest['control_url']} (POST /people/<username>/status)", err=True)
    child = start_supervisor_process(settings) if supervisor else None
    try:
        serve_api(settings, host, port)
    finally:
        if child is not None:
            stop_child(child, grace=30)
        if sandbox is not None:
            sandbox.stop()
        if server is not None:
            server.stop()
