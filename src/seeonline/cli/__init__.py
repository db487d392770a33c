"""The ``seeonline`` command line: database, API, supervisor, sandbox and demo.

Each command lives in its own module; the ones that import Telethon load only when they are run.
"""

from __future__ import annotations

import importlib
from typing import ClassVar

import click

from seeonline.cli.db import db
from seeonline.cli.run import demo, run
from seeonline.cli.secrets import secrets
from seeonline.cli.serve import api


class LazyGroup(click.Group):
    """A group whose heavier commands (they import Telethon) load only when they are run."""

    lazy_commands: ClassVar[dict[str, str]] = {
        "sandbox": "seeonline.sandbox.cli:sandbox",
        "supervisor": "seeonline_supervisor.cli:supervisor",
        "tracker": "seeonline.logins.cli:tracker",
        "worker": "seeonline_supervisor.worker.cli:worker",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command, eager and lazy."""
        return sorted([*super().list_commands(ctx), *self.lazy_commands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import a lazy command on first use."""
        if cmd_name in self.lazy_commands:
            module, _, name = self.lazy_commands[cmd_name].partition(":")
            command: click.Command = getattr(importlib.import_module(module), name)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup)
def main() -> None:
    """SeeOnline: track Telegram users' online status and serve it over HTTP."""


for command in (db, api, run, demo, secrets):
    main.add_command(command)
