"""``seeonline worker TRACKER_ID``: run one tracker's worker in the foreground (for debugging one account)."""

from __future__ import annotations

import sys

import click

from seeonline.logging import configure_logging


@click.command()
@click.argument("tracker_account_id", type=int)
def worker(tracker_account_id: int) -> None:
    """Run the worker of one tracker account until Ctrl-C/SIGTERM (normally the supervisor does this)."""
    from seeonline.cli.common import settings_or_exit  # noqa: PLC0415
    from seeonline_supervisor.worker.main import run_worker  # noqa: PLC0415 - Telethon only when used

    settings = settings_or_exit()
    configure_logging(settings.log_level, json=settings.log_json)
    sys.exit(run_worker(tracker_account_id, settings))
