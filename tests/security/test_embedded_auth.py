"""The embedded Postgres of ``seeonline run`` lets in only who holds its password (scram-sha-256).

Tests run as root here: the server runs as its dedicated account, and "another local user" is ``nobody``,
driven through ``runuser``. Skipped, saying why, where that cannot be arranged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest

from seeonline.local.embedded_postgres import EmbeddedPostgres, server_url
from seeonline.local.postgres_install import DEDICATED_USER

OTHER_USER = "nobody"

# Run as the other user: every way in it might try, each reported as "ok" or the error it met.
INTRUDER = r"""
import asyncio, json, sys
import asyncpg

port, password_file, socket_dir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
found = {}
try:
    open(password_file).read()
    found["read_password_file"] = "ok"
except OSError as exc:
    found["read_password_file"] = type(exc).__name__

async def attempt(name, **kwargs):
    try:
        connection = await asyncpg.connect(user="postgres", database="postgres", timeout=10, **kwargs)
        await connection.fetchval("SELECT 1")
        await connection.close()
        found[name] = "ok"
    except Exception as exc:
        found[name] = type(exc).__name__

asyncio.run(attempt("tcp", host="127.0.0.1", port=port))
asyncio.run(attempt("tcp_guessed_password", host="127.0.0.1", port=port, password="postgres"))
asyncio.run(attempt("socket", host=socket_dir, port=port))
print(json.dumps(found))
"""


def _other_user_can_run_python() -> str | None:
    if os.geteuid() != 0:
        return "needs root to act as another OS user"
    if shutil.which("runuser") is None:
        return "runuser is not installed"
    try:
        pwd.getpwnam(OTHER_USER)
    except KeyError:
        return f"no {OTHER_USER!r} account"
    probe = subprocess.run(
        ["runuser", "-u", OTHER_USER, "--", sys.executable, "-c", "import asyncpg"],
        cwd="/",
        capture_output=True,
        check=False,
    )
    return None if probe.returncode == 0 else f"{OTHER_USER} cannot run this Python: {probe.stderr[-200:]!r}"


@pytest.fixture
def cluster_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="seeonline-auth-"))
    path.chmod(0o755)  # traversable by the server's account, like seeonline run's data dir
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _connects(url: str) -> bool:
    async def attempt() -> bool:
        try:
            connection = await asyncpg.connect(url, timeout=10)
        except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError):
            return False
        await connection.close()
        return True

    return asyncio.run(attempt())


def test_another_local_user_cannot_connect(cluster_dir: Path) -> None:
    reason = _other_user_can_run_python()
    if reason is not None:
        pytest.skip(reason)
    password_file = cluster_dir / "postgres-password"
    with EmbeddedPostgres(
        cluster_dir / "data", durable=False, password_file=password_file, dedicated_account=True
    ) as server:
        assert oct(password_file.stat().st_mode & 0o777) == "0o600"
        assert _connects(server.url())
        assert not _connects(server_url(server.port))  # no password: refused, even for root on this host
        # The server runs as its own account, not the shared nobody.
        assert server.pid is not None
        assert psutil.Process(server.pid).username() == DEDICATED_USER != OTHER_USER
        assert server.socket_dir is not None
        result = subprocess.run(
            [
                *("runuser", "-u", OTHER_USER, "--", sys.executable, "-c", INTRUDER),
                *(str(server.port), str(password_file), str(server.socket_dir)),
            ],
            cwd="/",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout)
        assert found["read_password_file"] == "PermissionError"
        assert found["tcp"] != "ok" and found["tcp_guessed_password"] != "ok" and found["socket"] != "ok", found


def test_a_cluster_made_with_trust_needs_the_password_from_its_next_start(
    cluster_dir: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    with EmbeddedPostgres(cluster_dir / "data", durable=False) as trusting:
        port = trusting.port
        assert _connects(server_url(port))
    password_file = cluster_dir / "postgres-password"
    with EmbeddedPostgres(cluster_dir / "data", durable=False, port=port, password_file=password_file) as server:
        assert not _connects(server_url(port))
        assert _connects(server.url())
        assert "trust" not in "".join(
            line for line in (server.data_dir / "pg_hba.conf").read_text().splitlines() if not line.startswith("#")
        )
        password = password_file.read_text().strip()
    # Secrets never logged: the generated password appears in no log line nor in the server's log.
    captured = capsys.readouterr()
    logs = caplog.text + captured.out + captured.err
    assert "postgres_password_auth_enabled" in logs
    assert password not in logs and password not in server.log_path.read_text()
