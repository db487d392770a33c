"""The ``seeonline`` command line: database, API, supervisor, sandbox and demo."""

from __future__ import annotations

import click

from seeonline.settings import Settings, SettingsError, load_settings


def settings_or_exit() -> Settings:
    """Load the settings, or stop with a message that names the bad variable."""
    try:
        return load_settings()
    except (SettingsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def main() -> None:
    """SeeOnline: track Telegram users' online status and serve it over HTTP."""


def _register_optional_commands() -> None:
    """Attach commands owned by other packages, imported lazily so start-up stays light."""
    from seeonline.sandbox.cli import sandbox  # noqa: PLC0415

    main.add_command(sandbox)


_register_optional_commands()
