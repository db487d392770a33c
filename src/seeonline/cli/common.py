"""What every command shares: loading the settings and naming the variable that is missing or wrong."""

from __future__ import annotations

import click

from seeonline.logging import configure_logging
from seeonline.settings import Settings, SettingsError, load_settings


def settings_or_exit() -> Settings:
    """Load the settings, or stop with a message that names the bad variable."""
    try:
        settings = load_settings()
    except (SettingsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(settings.log_level, json=settings.log_json)
    return settings


def require_database(settings: Settings) -> str:
    """The database URL, or stop naming DATABASE_URL."""
    if settings.database_url is None:
        msg = "DATABASE_URL: not set (or use `seeonline run`, which starts an embedded Postgres)"
        raise click.ClickException(msg)
    return settings.database_url
