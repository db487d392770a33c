"""A worker's own credentials, decrypted by the supervisor: the only secrets a worker process receives.

Workers never see ``SEEONLINE_SECRET_KEY``: the supervisor decrypts each tracker's api_hash and session
and hands them to that tracker's worker over the forkserver's pipe (pickled with the process arguments,
never argv or environment), and starts the forkserver with the key variables removed from its environment.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from seeonline.secrets import SecretKeyError, keyring, tracker_api_hash, tracker_session

# Variables a worker must not inherit (the key itself, or where to read it).
SECRET_VARIABLES = ("SEEONLINE_SECRET_KEY", "SEEONLINE_SECRET_KEY_FILE")


@dataclass(frozen=True)
class WorkerCredentials:
    """What one worker needs to sign in to Telegram (kept out of reprs, so out of logs)."""

    api_id: int
    api_hash: str = field(repr=False)
    session: str = field(repr=False)


@dataclass(frozen=True)
class Opened:
    """The outcome of decrypting one tracker's row: credentials (None when undecryptable) and a fingerprint."""

    credentials: WorkerCredentials | None
    fingerprint: str  # changes with the decrypted credentials (a key rotation alone does not restart workers)


def open_credentials(
    secret_key: str | None, tracker_id: int, api_id: int, api_hash_encrypted: str, session_encrypted: str
) -> Opened:
    """Decrypt one tracker's credentials with the keyring; undecryptable ones give None (the worker says so)."""
    try:
        if secret_key is None:
            raise SecretKeyError("SEEONLINE_SECRET_KEY is not set")
        ring = keyring(secret_key)
        credentials = WorkerCredentials(
            api_id,
            ring.decrypt(api_hash_encrypted, tracker_api_hash(tracker_id)),
            ring.decrypt(session_encrypted, tracker_session(tracker_id)),
        )
    except SecretKeyError:
        parts = ("undecryptable", str(api_id), api_hash_encrypted, session_encrypted)
        return Opened(None, _digest(parts))
    return Opened(credentials, _digest(("plain", str(api_id), credentials.api_hash, credentials.session)))


def _digest(parts: tuple[str, ...]) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@contextlib.contextmanager
def without_secret_environment() -> Iterator[None]:
    """Remove the key variables from the environment while a process that workers fork from is started."""
    saved = {name: os.environ.pop(name) for name in SECRET_VARIABLES if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)
