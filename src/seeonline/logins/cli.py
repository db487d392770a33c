"""``seeonline tracker login`` and ``seeonline tracker list``: onboarding from a terminal.

The login runs the same ``LoginService`` as ``/tracker-logins/``. Secrets are never command-line
arguments (``/proc/<pid>/cmdline`` is world-readable): the api_hash comes from
``SEEONLINE_TRACKER_API_HASH`` or a hidden prompt; the code and the 2FA password are prompted without echo.
Without ``DATABASE_URL`` it uses the embedded database of ``seeonline run`` (running or not).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import asyncpg
import click
import msgspec
from click.core import ParameterSource

from seeonline.api.errors import ApiError, from_validation_error
from seeonline.choices import LoginState
from seeonline.database.pool import create_pool
from seeonline.health import HealthState
from seeonline.logins.schemas import TrackerLoginCreate
from seeonline.logins.service import LoginService
from seeonline.settings import Settings

API_HASH_ENV = "SEEONLINE_TRACKER_API_HASH"
CODE_ATTEMPTS = 5
PASSWORD_ATTEMPTS = 3
RESEND_WORDS = frozenset({"r", "resend"})

TRACKERS = f"""
SELECT a.id, a.telegram_id, s.phone_number, coalesce(h.state, '{HealthState.STOPPED}') AS health, h.last_error,
       s.current_users, s.max_users, a.is_active, a.is_auth
FROM tracker_accounts a
LEFT JOIN tracker_settings s ON s.tracker_account_id = a.id
LEFT JOIN tracker_health h ON h.tracker_account_id = a.id
ORDER BY a.id
"""


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[tuple[str, str]]:
    """(database URL, secret key): DATABASE_URL's, or those of ``seeonline run``'s embedded database."""
    if settings.database_url is not None:
        if settings.secret_key is None:
            raise click.ClickException("SEEONLINE_SECRET_KEY: not set (it encrypts tracker credentials)")
        yield settings.asyncpg_dsn, settings.secret_key
        return
    from seeonline.local.embedded_postgres import EmbeddedPostgresError  # noqa: PLC0415 - only without DATABASE_URL
    from seeonline.local.stack import load_or_create_credentials, local_database  # noqa: PLC0415

    credentials = load_or_create_credentials(settings.data_dir)
    try:
        with local_database(settings.data_dir) as url:
            click.echo(f"Using the embedded database in {settings.data_dir / 'postgres'}", err=True)
            yield url, settings.secret_key or credentials.secret_key
    except EmbeddedPostgresError as exc:
        raise click.ClickException(f"embedded Postgres: {exc}") from exc


def _settings() -> Settings:
    from seeonline.cli.common import settings_or_exit  # noqa: PLC0415

    return settings_or_exit()


@click.group()
def tracker() -> None:
    """Tracker accounts: log one in, list them."""


def _refuse_api_hash_argument(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and ctx.get_parameter_source("api_hash") is ParameterSource.COMMANDLINE:
        msg = (
            "is a credential: on the command line it is visible to every user in /proc/<pid>/cmdline. "
            f"Set {API_HASH_ENV} or leave it out to be prompted."
        )
        raise click.BadParameter(msg)
    return value


@tracker.command("login")
@click.option("--api-id", type=click.IntRange(1, 2**31 - 1), help="The app's api_id (my.telegram.org).")
@click.option(
    "--api-hash",
    envvar=API_HASH_ENV,
    callback=_refuse_api_hash_argument,
    expose_value=True,
    help=f"Only from {API_HASH_ENV}; otherwise prompted without echo (never as an argument).",
)
@click.option("--phone", help="The account's phone number, international format (+…).")
@click.option("--max-users", type=click.IntRange(0, 2**31 - 1), help="How many targets it may watch.")
def login(api_id: int | None, api_hash: str | None, phone: str | None, max_users: int | None) -> None:
    """Log a Telegram account in as a tracker (code and 2FA password are prompted without echo)."""
    settings = _settings()
    raw = {
        "api_id": api_id if api_id is not None else click.prompt("api_id", type=click.IntRange(1, 2**31 - 1)),
        "api_hash": api_hash or click.prompt("api_hash", hide_input=True),
        "phone_number": phone or click.prompt("Phone number (+…)"),
        "max_users": max_users if max_users is not None else click.prompt("Max targets", type=int, default=100),
    }
    try:
        body = msgspec.convert(raw, TrackerLoginCreate)
    except msgspec.ValidationError as exc:
        raise click.ClickException(from_validation_error(exc).detail) from None
    with database(settings) as (url, secret_key):
        asyncio.run(_login(url, secret_key, body))


async def _login(url: str, secret_key: str, body: TrackerLoginCreate) -> None:
    pool = await create_pool(url, size=2)
    try:
        service = LoginService(pool, secret_key)
        login_id = await _step(service.start(body))
        login = await _render(service, login_id)
        click.echo(f"Telegram sent a code ({login['code_type']}, {login['code_length'] or '?'} digits).")
        login = await _code_steps(service, login_id)
        if login["state"] == LoginState.PASSWORD_NEEDED:
            login = await _password_steps(service, login_id, login.get("password_hint"))
        privacy = {True: "last seen shown to everybody", False: "HIDES its last seen (fix it, see README)"}
        click.echo(
            f"Logged in: tracker account {login['tracker_account_id']}; "
            f"{privacy.get(login['privacy_ok'], 'privacy not checked yet')}."
        )
    finally:
        await pool.close()


async def _code_steps(service: LoginService, login_id: int) -> dict[str, Any]:
    for _ in range(CODE_ATTEMPTS):
        code = click.prompt("Login code (separators are fine; 'resend' for a new one)", hide_input=True)
        try:
            if code.strip().lower() in RESEND_WORDS:
                await service.resend(login_id)
                click.echo("Code sent again.")
                continue
            await service.submit_code(login_id, code)
        except ApiError as exc:
            if exc.code not in ("invalid_code", "code_expired"):
                raise click.ClickException(exc.detail) from None
            click.echo(f"{exc.detail}.", err=True)
            continue
        return await _render(service, login_id)
    raise click.ClickException("too many attempts; start again")


async def _password_steps(service: LoginService, login_id: int, hint: str | None) -> dict[str, Any]:
    prompt = "2FA password" + (f" (hint: {hint})" if hint else "")
    for _ in range(PASSWORD_ATTEMPTS):
        password = click.prompt(prompt, hide_input=True)
        try:
            await service.submit_password(login_id, password)
        except ApiError as exc:
            if exc.code != "invalid_password":
                raise click.ClickException(exc.detail) from None
            click.echo(f"{exc.detail}.", err=True)
            continue
        return await _render(service, login_id)
    raise click.ClickException("too many wrong passwords; start again")


async def _step(work: Any) -> Any:
    try:
        return await work
    except ApiError as exc:
        raise click.ClickException(exc.detail) from None


async def _render(service: LoginService, login_id: int) -> dict[str, Any]:
    import json  # noqa: PLC0415

    found: dict[str, Any] = json.loads(await service.render(login_id))
    return found


@tracker.command("list")
def list_trackers() -> None:
    """Every tracker account: id, Telegram id, phone, health and slots."""
    with database(_settings()) as (url, _secret_key):
        rows = asyncio.run(_fetch(url))
    click.echo(f"{'id':>5}  {'telegram_id':>12}  {'phone':<16}  {'health':<22}  {'slots':>9}  flags")
    for row in rows:
        slots = "-" if row["max_users"] is None else f"{row['current_users']}/{row['max_users']}"
        flags = ",".join(name for name in ("is_active", "is_auth") if row[name]) or "-"
        click.echo(
            f"{row['id']:>5}  {row['telegram_id']:>12}  {row['phone_number'] or '-':<16}  "
            f"{row['health']:<22}  {slots:>9}  {flags}"
        )
        if row["last_error"]:
            click.echo(f"       last error: {row['last_error']}")


async def _fetch(url: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        return list(await connection.fetch(TRACKERS))
    finally:
        await connection.close()
