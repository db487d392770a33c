"""The JSON manifest describing a running sandbox: where it listens, its trackers and its people."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from seeonline.sandbox.server import SandboxServer
from seeonline.sandbox.world import Account, SandboxUser


def person_entry(server: SandboxServer, user: SandboxUser) -> dict[str, Any]:
    """One person as the manifest and the control API describe them."""
    now = time.time()
    return {
        "username": user.username,
        "telegram_id": user.id,
        "privacy": str(user.privacy),
        "phone": user.phone,
        "online": user.is_online(now),
        "online_until": user.online_until if user.is_online(now) else None,
        "last_seen": user.last_seen(now),
    }


def tracker_entry(server: SandboxServer, account: Account) -> dict[str, Any]:
    """One tracker account, with a ready session string for this sandbox."""
    return {
        "telegram_id": account.id,
        "phone": account.phone,
        "username": account.user.username,
        "api_id": account.api_id,
        "api_hash": account.api_hash,
        "session_string": server.session_string_for(account),
        "login_code": account.login_code,
        "password": account.password,
        "password_hint": account.password_hint,
        "privacy": str(account.user.privacy),
        "banned": account.banned,
        "premium": account.user.premium,
    }


# The control API can add accounts, read every session string and inject faults: it listens on loopback only,
# whatever address the MTProto side listens on.
CONTROL_HOST = "127.0.0.1"


def build_manifest(server: SandboxServer, control_port: int | None = None) -> dict[str, Any]:
    """Everything a client script needs to use the sandbox, as one JSON-ready dict."""
    host = server.public_host
    return {
        "dc": {"id": 2, "host": host, "port": server.port},
        "control": None if control_port is None else {"host": CONTROL_HOST, "port": control_port},
        "control_url": None if control_port is None else f"http://{CONTROL_HOST}:{control_port}",
        "rsa_public_key": server.rsa_public_key_pem(),
        "trackers": [tracker_entry(server, a) for a in server.world.accounts.values()],
        "people": [person_entry(server, u) for u in server.world.people()],
    }


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write atomically (readers poll for the file), readable only by its owner: it holds session strings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(manifest, handle, indent=2)
    tmp.replace(path)
