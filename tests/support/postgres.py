"""The Postgres server tests create their databases on, and fresh migrated databases."""

from __future__ import annotations

import secrets

import asyncpg
import pytest

from seeonline.local.embedded_postgres import EmbeddedPostgres


class PostgresServer:
    """A server tests may create databases on: an external one, or an embedded throwaway cluster."""

    def __init__(self, admin_url: str, embedded: EmbeddedPostgres | None) -> None:
        self.admin_url = admin_url
        self.embedded = embedded

    def url(self, database: str) -> str:
        """The URL of ``database`` on this server."""
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{database}"

    def require_embedded(self) -> EmbeddedPostgres:
        """The embedded server, for tests that stop or restart Postgres; skips under TEST_DATABASE_URL."""
        if self.embedded is None:
            pytest.skip("needs the embedded Postgres (TEST_DATABASE_URL is set)")
        return self.embedded

    async def execute(self, sql: str) -> None:
        """Run one administrative statement (CREATE/DROP DATABASE)."""
        connection = await asyncpg.connect(self.admin_url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()


async def new_database(server: PostgresServer, template: str) -> str:
    """A fresh migrated database's name."""
    name = f"seeonline_test_{secrets.token_hex(6)}"
    await server.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name
