"""The zero-configuration stack behind ``seeonline run``: an embedded Postgres plus generated keys."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from seeonline.database import migrations
from seeonline.local.embedded_postgres import EmbeddedPostgres, running_server_port, server_url
from seeonline.local.postgres_auth import load_or_create_password
from seeonline.logging import get_logger
from seeonline.parent_death import PARENT_PID_ENV
from seeonline.secrets import generate_secret_key
from seeonline.settings import Settings

log = get_logger(__name__)

DATABASE_NAME = "seeonline"
CREDENTIALS_FILE = "credentials.json"
# The embedded server's superuser password, beside the credentials (0600: only this account reads it).
POSTGRES_PASSWORD_FILE = "postgres-password"  # noqa: S105 - a file name


@dataclass(frozen=True)
class LocalCredentials:
    """A development API key and secret key, generated once and kept beside the data."""

    api_key: str
    secret_key: str


def load_or_create_credentials(data_dir: Path) -> LocalCredentials:
    """Read ``credentials.json`` from ``data_dir``, creating it (mode 0600) on first use."""
    path = data_dir / CREDENTIALS_FILE
    if path.exists():
        raw = json.loads(path.read_text())
        return LocalCredentials(api_key=raw["api_key"], secret_key=raw["secret_key"])
    data_dir.mkdir(parents=True, exist_ok=True)
    credentials = LocalCredentials(api_key=secrets.token_urlsafe(24), secret_key=generate_secret_key())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"api_key": credentials.api_key, "secret_key": credentials.secret_key}, handle)
    return credentials


def start_embedded_database(data_dir: Path) -> tuple[EmbeddedPostgres, str]:
    """Start (initialising on first use) the embedded server and migrate its database.

    Call from the main thread: the server stops when the thread that started it exits.
    """
    if not data_dir.exists():
        data_dir.mkdir(parents=True)
        data_dir.chmod(0o755)  # ours: the server runs as an unprivileged user when we are root
    server = EmbeddedPostgres(
        data_dir / "postgres", durable=True, password_file=data_dir / POSTGRES_PASSWORD_FILE, dedicated_account=True
    )
    server.start()
    url = server.create_database(DATABASE_NAME)
    migrations.upgrade(url)
    log.info("embedded_postgres_ready", data_dir=str(data_dir / "postgres"), port=server.port)
    return server, url


@contextlib.contextmanager
def local_database(data_dir: Path) -> Iterator[str]:
    """The URL of ``seeonline run``'s own database: on its running server, or on one started for the block.

    Call from the main thread (see ``start_embedded_database``).
    """
    port = running_server_port(data_dir / "postgres")
    if port is not None:
        yield server_url(port, DATABASE_NAME, load_or_create_password(data_dir / POSTGRES_PASSWORD_FILE))
        return
    server, url = start_embedded_database(data_dir)
    try:
        yield url
    finally:
        server.stop()


def has_tracker_accounts(url: str) -> bool:
    """Whether any tracker account is registered (decides whether ``seeonline run`` starts the demo)."""

    async def count() -> int:
        connection = await asyncpg.connect(url, timeout=10)
        try:
            found: int = await connection.fetchval("SELECT count(*) FROM tracker_accounts")
            return found
        finally:
            await connection.close()

    return asyncio.run(count()) > 0


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
