"""``seeonline tracker login|list`` as real processes against the sandbox (unmodified Telethon) and real Postgres."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg
import pytest

from seeonline.local.stack import start_embedded_database
from seeonline.sandbox import Account, SandboxServer
from seeonline.secrets import decrypt, tracker_session
from tests.support.keys import SECRET_KEY
from tests.test_cli import clean_env, data_dir

__all__ = ["data_dir"]  # the fixture

Connection: TypeAlias = "asyncpg.Connection[Any]"
SEEONLINE = [sys.executable, "-m", "seeonline"]


class Finished:
    """A finished CLI process: exit code, output, and what /proc/<pid>/cmdline showed while it ran."""

    def __init__(self, code: int, out: str, err: str, cmdline: str) -> None:
        self.code, self.out, self.err, self.cmdline = code, out, err, cmdline


async def run_cli(args: list[str], env: dict[str, str], typed: str = "") -> Finished:
    """Run ``seeonline ARGS`` without a controlling terminal (prompts read stdin), on the test's loop."""
    process = await asyncio.create_subprocess_exec(
        *SEEONLINE,
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # no /dev/tty: getpass falls back to stdin
    )
    cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    out, err = await asyncio.wait_for(process.communicate(typed.encode()), 120)
    assert process.returncode is not None
    return Finished(process.returncode, out.decode(), err.decode(), cmdline)


@pytest.fixture
def cli_env(database_url: str, login_env: dict[str, str]) -> dict[str, str]:
    return clean_env(DATABASE_URL=database_url, SEEONLINE_SECRET_KEY=SECRET_KEY, SEEONLINE_LOG_JSON="1", **login_env)


def login_args(account: Account, max_users: int = 5) -> list[str]:
    return [
        "tracker",
        "login",
        "--api-id",
        str(account.api_id),
        "--phone",
        f"+{account.phone}",
        "--max-users",
        str(max_users),
    ]


async def test_cli_login_with_wrong_code_then_2fa_wrong_then_right_password(
    sandbox: SandboxServer, cli_env: dict[str, str], db: Connection
) -> None:
    account = sandbox.world.add_account(password="SECRET-cli-password", password_hint="the usual")
    typed = "\n".join([account.api_hash, "99999", "resend", "1 2 3-4 5", "SECRET-wrong", "SECRET-cli-password"]) + "\n"
    done = await run_cli(login_args(account), cli_env, typed)
    assert done.code == 0, done.err
    assert "Logged in: tracker account 1" in done.out
    assert "hint: the usual" in done.err  # hidden prompts are written to stderr
    assert "the login code is wrong" in done.err and "the 2FA password is wrong" in done.err
    assert len(sandbox.calls_to("auth.resendCode")) == 1
    row = await db.fetchrow(
        "SELECT a.telegram_id, a.is_auth, s.max_users, s.session_encrypted IS NOT NULL AS has_session"
        " FROM tracker_accounts a JOIN tracker_settings s ON s.tracker_account_id = a.id"
    )
    assert row is not None and tuple(row) == (account.id, True, 5, True)
    # No secret in the arguments, the output or the logs.
    for text in (done.cmdline, done.out, done.err):
        assert "SECRET-" not in text and account.api_hash not in text and "12345" not in text
    listed = await run_cli(["tracker", "list"], cli_env)
    assert listed.code == 0, listed.err
    assert str(account.id) in listed.out and f"+{account.phone}" in listed.out and "0/5" in listed.out


async def test_plain_cli_login_creates_the_tracker_and_shows_no_session(
    sandbox: SandboxServer, cli_env: dict[str, str], db: Connection
) -> None:
    account = sandbox.world.add_account(login_code="24680")
    env = {**cli_env, "SEEONLINE_TRACKER_API_HASH": account.api_hash}
    done = await run_cli(login_args(account, max_users=4), env, "2-4-6-8-0\n")
    assert done.code == 0, done.err
    assert "Logged in: tracker account 1; last seen shown to everybody." in done.out
    assert "2FA" not in done.err  # no password prompt without 2FA
    row = await db.fetchrow(
        "SELECT a.telegram_id, a.is_auth, a.is_active, s.max_users, s.session_encrypted, a.id"
        " FROM tracker_accounts a JOIN tracker_settings s ON s.tracker_account_id = a.id"
    )
    assert row is not None and tuple(row)[:4] == (account.id, True, True, 4)
    # The session (the pre-login session's auth key, now logged in) appears in no argument, output or log.
    session = decrypt(SECRET_KEY, row["session_encrypted"], tracker_session(row["id"]))
    for text in (done.cmdline, done.out, done.err):
        assert session not in text and session[:40] not in text
        assert account.api_hash not in text and "24680" not in text
    assert await db.fetchval("SELECT session_encrypted FROM tracker_logins") is None


async def test_cli_login_reports_a_flood_wait_and_an_expired_login(
    sandbox: SandboxServer, cli_env: dict[str, str]
) -> None:
    account = sandbox.world.add_account()
    sandbox.inject_fault("auth.sendCode", "FLOOD_WAIT_600", count=1)
    flooded = await run_cli(login_args(account), cli_env, account.api_hash + "\n")
    assert flooded.code == 1
    assert "wait 600 s" in flooded.err
    sandbox.logins.code_ttl = 0.0  # every code has expired by the time it is typed
    expired = await run_cli(
        login_args(account), {**cli_env, "SEEONLINE_TRACKER_API_HASH": account.api_hash}, "12345\n" * 5
    )
    assert expired.code == 1
    assert "expired" in expired.err and "too many attempts" in expired.err


async def test_api_hash_is_refused_as_a_command_line_argument(cli_env: dict[str, str]) -> None:
    refused = await run_cli(["tracker", "login", "--api-hash", "SECRET-on-the-command-line"], cli_env)
    assert refused.code == 2
    assert "/proc/<pid>/cmdline" in refused.err


async def test_tracker_list_uses_the_embedded_database_of_seeonline_run(data_dir: Path) -> None:
    env = clean_env(SEEONLINE_DATA_DIR=str(data_dir))
    # Not running: the command starts the server for itself (and stops it).
    alone = await run_cli(["tracker", "list"], env)
    assert alone.code == 0, alone.err
    assert "Using the embedded database" in alone.err and "telegram_id" in alone.out
    # Running (as under `seeonline run`): the command uses that server rather than starting a second one.
    server, url = start_embedded_database(data_dir)  # on this (main) thread: the server dies with its thread
    try:
        connection = await asyncpg.connect(url)
        await connection.execute(
            "INSERT INTO tracker_accounts (telegram_id, api_id, api_hash_encrypted, api_hash_lookup, api_hash_masked)"
            " VALUES (4242, 1, 'x', 'x', 'x')"
        )
        await connection.close()
        shared = await run_cli(["tracker", "list"], env)
        assert shared.code == 0, shared.err
        assert "4242" in shared.out
    finally:
        server.stop()
    assert (data_dir / "credentials.json").stat().st_mode & 0o077 == 0
