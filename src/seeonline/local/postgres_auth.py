"""Password authentication for the embedded server: a generated superuser password kept 0600 beside the data.

With ``trust`` any local account could connect as superuser and run commands as the server's user
(``COPY ... TO PROGRAM``); with scram-sha-256 on TCP and on the socket, only who can read the password file
can. A cluster made before this (``trust`` in its ``pg_hba.conf``) gets the password and the new rules on
its next start.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from seeonline.local.postgres_install import RunAs

METHOD = "scram-sha-256"
_TRUST = re.compile(r"^(\s*(?:local|host\S*)\s.*\s)trust(\s*(?:#.*)?)$")


def load_or_create_password(path: Path) -> str:
    """The password in ``path``, generating it (mode 0600, readable by this account only) on first use."""
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(32)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:  # a concurrent first start made it
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as handle:
        handle.write(password + "\n")
    return password


@contextlib.contextmanager
def initdb_password_file(password: str, who: RunAs | None) -> Iterator[Path]:
    """A file initdb (running as ``who``) can read the password from, in a private dir, removed after."""
    folder = Path(tempfile.mkdtemp(prefix="seeonline-initdb-"))
    try:
        path = folder / "pwfile"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(password + "\n")
        if who is not None:
            os.chown(folder, who.uid, who.gid)
            os.chown(path, who.uid, who.gid)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def initdb_arguments(pwfile: Path) -> list[str]:
    """initdb flags: the superuser's password, and password authentication on the socket and on TCP."""
    return [f"--pwfile={pwfile}", f"--auth-local={METHOD}", f"--auth-host={METHOD}"]


def hba_trusts(data_dir: Path) -> bool:
    """Whether the cluster's ``pg_hba.conf`` lets anyone in without a password."""
    return any(_TRUST.match(line) for line in (data_dir / "pg_hba.conf").read_text().splitlines())


def require_passwords(data_dir: Path) -> None:
    """Rewrite every ``trust`` rule of ``pg_hba.conf`` to scram-sha-256 (in place: owner and mode stay)."""
    path = data_dir / "pg_hba.conf"
    lines = [_TRUST.sub(rf"\g<1>{METHOD}\g<2>", line) for line in path.read_text().splitlines()]
    with path.open("r+") as handle:
        handle.write("\n".join(lines) + "\n")
        handle.truncate()
