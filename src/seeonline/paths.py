"""Where SeeOnline finds its migrations and keeps its data, from a checkout or from an installed wheel.

From a checkout (an editable install, ``python3 tasks.py``) the migrations are ``db/`` at the top of
the repository and the data directory is ``var/`` beside it. A wheel carries ``db/`` as the package
data ``seeonline/_db`` (see pyproject.toml) and has no repository to write into, so its data
directory is the user's data directory (``$XDG_DATA_HOME/seeonline``, ``~/.local/share/seeonline``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[2]


def _is_checkout(root: Path) -> bool:
    return (root / "pyproject.toml").is_file() and (root / "db" / "env.py").is_file()


def user_data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The per-user data directory the platform expects SeeOnline's files in."""
    if os.name == "nt":
        base = environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    else:
        base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "seeonline"


FROM_CHECKOUT = _is_checkout(_CHECKOUT)
# Alembic reads a directory: an installed wheel is unpacked on disk, so the package data is one.
MIGRATIONS_DIR = _CHECKOUT / "db" if FROM_CHECKOUT else Path(str(resources.files("seeonline") / "_db"))
SQL_DIR = MIGRATIONS_DIR / "sql"
DEFAULT_DATA_DIR = _CHECKOUT / "var" if FROM_CHECKOUT else user_data_dir()
