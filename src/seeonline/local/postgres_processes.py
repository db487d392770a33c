"""Finding and spawning Postgres server processes: free ports, the child's environment, who owns a data dir."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

from seeonline import parent_death
from seeonline.local.postgres_install import EmbeddedPostgresError, RunAs
from seeonline.logging import get_logger

log = get_logger("seeonline.local.embedded_postgres")

HOST = "127.0.0.1"
LOG_TAIL_LINES = 25
# SIGINT is Postgres' "fast" shutdown: it disconnects clients, checkpoints and exits cleanly within a bounded
# time. SIGTERM ("smart") would wait forever for clients in other processes; SIGQUIT ("immediate") skips the
# checkpoint and forces crash recovery on the next start.
PARENT_DEATH_SIGNAL = signal.SIGINT


def find_free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (never 5432, which a system server may own)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if port != 5432:
            return port


def child_env(install: Path) -> dict[str, str]:
    """The environment for initdb and postgres: ours without libpq/PG settings, plain C messages."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LC_")) and k != "LANG"}
    env["LC_ALL"] = "C"
    env["PATH"] = f"{install / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    icu = install / "share" / "icu"
    if icu.is_dir():
        env["ICU_DATA"] = str(icu)
    return env


def _make_preexec(parent_pid: int) -> Any:
    """A preexec_fn that ties the child's life to the spawning thread (runs after subprocess drops to ``user``)."""
    if not sys.platform.startswith("linux"):
        return None
    check = parent_death.arm(PARENT_DEATH_SIGNAL)

    def preexec() -> None:
        # Setting the uid clears the death signal, so this must run after the switch, as preexec_fn does.
        if not check(parent_pid):  # the parent died before the signal was armed
            os._exit(1)

    return preexec


def spawn_kwargs(who: RunAs | None) -> dict[str, Any]:
    """Popen arguments that drop to ``who`` (with only its own groups) and arm the parent-death signal."""
    kwargs: dict[str, Any] = {"preexec_fn": _make_preexec(os.getpid()), "cwd": "/", "stdin": subprocess.DEVNULL}
    if who is not None:
        kwargs |= {"user": who.uid, "group": who.gid, "extra_groups": list(who.groups)}
    return kwargs


def log_tail(path: Path, offset: int = 0, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``path`` written after ``offset``."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(offset, fh.seek(0, os.SEEK_END) - 64 * 1024))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def read_pid_file(data_dir: Path) -> list[str] | None:
    """The lines of ``postmaster.pid``, or None when there is none."""
    try:
        return (data_dir / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None


def server_using(data_dir: Path) -> int | None:
    """The pid of a live Postgres process (postmaster or orphaned backend) working in ``data_dir``, if any."""
    lines = read_pid_file(data_dir)
    if lines is None:
        return None
    real = data_dir.resolve()
    # Every Postgres process works in its data dir, which tells a live owner from an unrelated process (even
    # another cluster's postmaster) that got the recorded pid after a reboot.
    with contextlib.suppress(ValueError, IndexError, psutil.NoSuchProcess, psutil.ZombieProcess):
        named = psutil.Process(int(lines[0]))
        try:
            if named.name() == "postgres" and Path(named.cwd()) == real:
                return int(named.pid)
        except psutil.AccessDenied:
            return int(named.pid)  # cannot tell: better refuse than start a second server on the same files
    # Backends outlive a SIGKILLed postmaster for a moment and still share its memory.
    for proc in psutil.process_iter(["name"]):
        with contextlib.suppress(psutil.Error):
            if proc.info["name"] == "postgres" and Path(proc.cwd()) == real:
                return int(proc.pid)
    return None


def running_server_port(data_dir: Path) -> int | None:
    """The TCP port of a live server (started by another process) working in ``data_dir``, or None."""
    if server_using(Path(data_dir).absolute()) is None:
        return None
    lines = read_pid_file(Path(data_dir).absolute()) or []
    # postmaster.pid: pid, data dir, start time, port, socket dir, listen address, ...
    with contextlib.suppress(ValueError, IndexError):
        return int(lines[3])
    return None


def stop_server(proc: subprocess.Popen[bytes], timeout: float, data_dir: Path) -> None:
    """Fast shutdown, escalating to immediate and then SIGKILL if the server hangs."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            log.warning("postgres_stop_escalating", pid=proc.pid, signal=sig.name, waited=wait)
            continue
        log.info("postgres_stopped", data_dir=str(data_dir), pid=proc.pid, signal=sig.name)
        return
    msg = f"PostgreSQL pid {proc.pid} did not exit even after SIGKILL"
    raise EmbeddedPostgresError(msg)
