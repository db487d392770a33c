"""Whether a worker may start, and the Telethon client it starts with (its own credentials, never dialled
when the session names an address that is not Telegram's)."""

from __future__ import annotations

from telethon import TelegramClient

from seeonline.health import HealthState
from seeonline.telegram.client import UntrustedSessionError, build_client
from seeonline_supervisor.credentials import WorkerCredentials, open_credentials
from seeonline_supervisor.exit_codes import EXIT_CRASHED, EXIT_RETIRED
from seeonline_supervisor.worker.control import TrackerRow

# A dead session: nothing to run until an operator gives the tracker a new one.
DEAD_SESSION_STATES = frozenset({HealthState.AUTH_LOST, HealthState.BANNED})


class CannotStartError(Exception):
    """The worker exits with ``code`` before connecting; ``event`` and ``fields`` say why in its log."""

    def __init__(self, code: int, event: str, **fields: object) -> None:
        super().__init__(event)
        self.code, self.event, self.fields = code, event, fields
        self.level = "error" if code == EXIT_CRASHED else "warning"


def start_client(
    tracker_id: int, row: TrackerRow | None, credentials: WorkerCredentials | None, secret_key: str | None
) -> TelegramClient:
    """The tracker's client, from the credentials the supervisor handed over (or decrypted here, by hand)."""
    if row is None or not (row.is_active and row.is_auth and row.session_encrypted):
        raise CannotStartError(EXIT_RETIRED, "worker_tracker_not_runnable", exists=row is not None)
    if row.health in DEAD_SESSION_STATES:
        raise CannotStartError(EXIT_RETIRED, "worker_tracker_not_runnable", health=row.health)
    if credentials is None and secret_key is not None:
        opened = open_credentials(secret_key, tracker_id, row.api_id, row.api_hash_encrypted, row.session_encrypted)
        credentials = opened.credentials
    if credentials is None:
        raise CannotStartError(EXIT_CRASHED, "worker_cannot_decrypt_credentials")
    try:
        return build_client(
            credentials.session,
            credentials.api_id,
            credentials.api_hash,
            connection_retries=3,
            retry_delay=0.5,
            request_retries=2,
            catch_up=False,
        )
    except UntrustedSessionError as exc:  # a crafted session string: never dial it
        raise CannotStartError(EXIT_CRASHED, "worker_session_address_refused", reason=str(exc)) from None
