#!/usr/bin/env python3
"""Set-up and entry points that need nothing but Python >= 3.11 and pip.

    python3 tasks.py run    # create .venv if needed, install, start the service (API + supervisor)
    python3 tasks.py test   # create .venv if needed, install with test extras, run the whole test suite

Extra arguments are passed on (``python3 tasks.py test -k slots``, ``python3 tasks.py run --port 9000``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".seeonline-install"


def ensure_environment(extras: str) -> None:
    """Create the virtualenv and (re)install the project when pyproject.toml changed."""
    if sys.version_info < (3, 11):
        sys.exit(f"SeeOnline needs Python >= 3.11, this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print(f"creating virtualenv in {VENV}", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    installed = STAMP.read_text().split(":") if STAMP.exists() else []
    # An install with the test extras also serves `run`.
    if installed and installed[0] == digest and installed[1:] in (["test"], [extras]):
        return
    print("installing SeeOnline and its dependencies (first run only)", file=sys.stderr)
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    target = f".[{extras}]" if extras else "."
    subprocess.run([*pip, "install", "-e", target], check=True, cwd=ROOT)
    STAMP.write_text(f"{digest}:{extras}")


def main() -> None:
    """Dispatch ``run`` or ``test``."""
    if len(sys.argv) < 2 or sys.argv[1] not in {"run", "test"}:
        sys.exit(__doc__)
    command, extra = sys.argv[1], sys.argv[2:]
    if command == "run":
        ensure_environment("")
        os.execv(str(BIN / "seeonline"), [str(BIN / "seeonline"), "run", *extra])
    ensure_environment("test")
    os.chdir(ROOT)
    # One test process per core (pytest-xdist); each gets its own Postgres. `-n 0` runs serially.
    parallel = [] if any(arg == "-n" or arg.startswith(("-n", "--numprocesses")) for arg in extra) else ["-n", "auto"]
    os.execv(str(BIN / "python"), [str(BIN / "python"), "-m", "pytest", *parallel, *extra])


if __name__ == "__main__":
    main()
