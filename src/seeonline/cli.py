"""The ``seeonline`` command line: database, API, supervisor, sandbox and demo."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

import click
import msgspec
from alembic.util import CommandError

from seeonline import migrations
from seeonline.database.routines import RoutinesDriftError
from seeonline.logging import configure_logging, get_logger
from seeonline.parent_death import PARENT_PID_ENV
from seeonline.processes import stop_child
from seeonline.settings import Settings, SettingsError, load_settings

log = get_logger("seeonline.cli")


def settings_or_exit() -> Settings:
    """Load the settings, or stop with a message that names the bad variable."""
    try:
        settings = load_settings()
    except (SettingsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(settings.log_level, json=settings.log_json)
    return settings


def require_database(settings: Settings) -> str:
    """The database URL, or stop naming DATABASE_URL."""
    if settings.database_url is None:
        msg = "DATABASE_URL: not set (or use `seeonline run`, which starts an embedded Postgres)"
        raise click.ClickException(msg)
    return settings.database_url


class LazyGroup(click.Group):
    """A group whose heavier commands (they import Telethon) load only when they are run."""

    lazy_commands: ClassVar[dict[str, str]] = {
        "sandbox": "seeonline.sandbox.cli:sandbox",
        "supervisor": "supervisor.cli:supervisor",
        "tracker": "seeonline.logins.cli:tracker",
        "worker": "supervisor.worker.cli:worker",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command, eager and lazy."""
        return sorted([*super().list_commands(ctx), *self.lazy_commands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import a lazy command on first use."""
        if cmd_name in self.lazy_commands:
            module, _, name = self.lazy_commands[cmd_name].partition(":")
            command: click.Command = getattr(importlib.import_module(module), name)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup)
def main() -> None:
    """SeeOnline: track Telegram users' online status and serve it over HTTP."""


@main.group()
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


def serve_api(settings: Settings, host: str, port: int) -> None:
    """Serve the API with uvicorn (uvloop + httptools) until interrupted."""
    import uvicorn  # noqa: PLC0415 - only the API needs it

    from seeonline.api.app import create_app  # noqa: PLC0415

    try:
        app = create_app(settings)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    config = uvicorn.Config(
        app, host=host, port=port, loop="uvloop", http="httptools", log_config=None, access_log=False, lifespan="on"
    )
    log.info("api_listening", url=f"http://{host}:{port}", docs=f"http://{host}:{port}/schema/swagger")
    uvicorn.Server(config).run()


@main.command("api")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def api(host: str, port: int) -> None:
    """Serve the HTTP API."""
    settings = settings_or_exit()
    require_database(settings)
    serve_api(settings, host, port)


@main.command("run")
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


@main.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def demo(host: str, port: int) -> None:
    """Run everything against the Telegram sandbox with simulated people (fresh demo database)."""
    run_service(host=host, port=port, supervisor=True, demo=True)


def run_service(*, host: str, port: int, supervisor: bool, demo: bool | None) -> None:
    """Start the database if needed, optionally the demo sandbox, the supervisor, then serve the API."""
    from seeonline.embedded_postgres import EmbeddedPostgresError  # noqa: PLC0415
    from seeonline.local_stack import (  # noqa: PLC0415
        has_tracker_accounts,
        load_or_create_credentials,
        start_embedded_database,
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
        from seeonline.demo import DEMO_DATABASE, prepare_demo  # noqa: PLC0415 - imports Telethon

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


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server (query parameters kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def start_supervisor_process(settings: Settings) -> subprocess.Popen[bytes]:
    """Start ``seeonline supervisor`` beside the API, sharing the database and secret key."""
    env = dict(os.environ)
    env["DATABASE_URL"] = settings.database_url or ""
    # The child's environment is readable only by this user (/proc/<pid>/environ is 0400).
    env["SEEONLINE_SECRET_KEY"] = settings.secret_key or ""
    # --exit-with-parent: a supervisor must not outlive `seeonline run`, even after a kill -9.
    env[PARENT_PID_ENV] = str(os.getpid())
    return subprocess.Popen([sys.executable, "-m", "seeonline", "supervisor", "--exit-with-parent"], env=env)
