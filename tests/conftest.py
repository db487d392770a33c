"""Shared fixtures: a real Postgres (TEST_DATABASE_URL or an embedded one), migrated databases, the app.

Every test that needs a database gets a fresh one cloned from a migrated template, so tests that
commit from many connections or processes stay isolated from each other.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from seeonline.database import migrations
from seeonline.local.embedded_postgres import EmbeddedPostgres
from seeonline.sandbox import SandboxServer, World
from seeonline.server.app import create_app
from seeonline.settings import Settings, load_settings, to_asyncpg_dsn
from seeonline.telegram.client import DC_ENV, RSA_KEY_ENV
from tests.support.http import same_loop_client
from tests.support.keys import API_KEY, SECRET_KEY
from tests.support.postgres import PostgresServer, new_database


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` (real outages of minutes) first, so xdist runs them alongside the rest."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def _worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """TEST_DATABASE_URL's server when set; otherwise an embedded cluster for this test worker."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield PostgresServer(to_asyncpg_dsn(external), None)
        return
    data_dir = Path(tempfile.mkdtemp(prefix=f"seeonline-test-pg-{_worker_id()}-"))
    data_dir.chmod(0o755)  # the server runs as an unprivileged user when tests run as root
    server = EmbeddedPostgres(data_dir / "data", durable=False)
    server.start()
    try:
        yield PostgresServer(server.url("postgres"), server)
    finally:
        server.stop()
        import shutil  # noqa: PLC0415

        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
async def template_database(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A database migrated to head once per test worker; tests clone it."""
    name = f"seeonline_template_{_worker_id()}_{secrets.token_hex(3)}"
    await postgres_server.execute(f'CREATE DATABASE "{name}"')
    migrations.upgrade(postgres_server.url(name))
    yield name
    await postgres_server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def database_url(postgres_server: PostgresServer, template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    name = await new_database(postgres_server, template_database)
    yield postgres_server.url(name)
    await postgres_server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings for the app under test."""
    return load_settings(
        {
            "DATABASE_URL": database_url,
            "SEEONLINE_API_KEYS": f"{API_KEY},second-key-abcdefghijklmnop",
            "SEEONLINE_SECRET_KEY": SECRET_KEY,
            "SEEONLINE_DB_POOL_SIZE": "20",
        }
    )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A direct connection to the test database, for checking what the API stored."""
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    """A running Telegram sandbox with an empty world (in-process; forked workers reach it over TCP)."""
    async with SandboxServer(World()) as server:
        yield server


@pytest.fixture
def login_env(sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The test-only settings that point a fresh login at the sandbox and trust its RSA key (set and returned)."""
    key = tmp_path / "sandbox.pem"
    key.write_text(sandbox.rsa_public_key_pem())
    env = {DC_ENV: f"127.0.0.1:{sandbox.port}", RSA_KEY_ENV: str(key)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    """An authenticated HTTP client for the app."""
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        test_client.headers["X-API-Key"] = API_KEY
        yield test_client


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An authenticated HTTP client for the app, on the test's own event loop (see ``same_loop_client``)."""
    async with same_loop_client(settings) as http:
        yield http
