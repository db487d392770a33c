"""Settings parsed once from the environment into a frozen msgspec Struct."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

from seeonline.lease import Lease
from seeonline.paths import DEFAULT_DATA_DIR


class SettingsError(Exception):
    """A setting from the environment is missing or malformed; the message names the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the API, the supervisor and the workers read from the environment.

    Every variable may instead be given as a file: ``NAME_FILE=/run/secrets/x`` reads NAME from it.
    """

    database_url: str | None = None
    api_keys: tuple[str, ...] = ()
    secret_key: str | None = None
    data_dir: Path = DEFAULT_DATA_DIR
    db_pool_size: int = 10
    log_level: str = "info"
    log_json: bool | None = None
    reconcile_interval: float = 30.0
    status_retention_months: int = 0  # 0 keeps the status log forever
    lease: Lease = Lease()  # SEEONLINE_LEASE_GRACE sets its grace; see seeonline.lease
    # Targets waiting to be resolved by a tracker whose enrolment is paused longer than this move elsewhere.
    move_unresolved_after: float = 600.0
    # The HTTP server's limits (see seeonline.server.http_protocol and README "Running behind a reverse proxy").
    header_timeout: float = 10.0  # seconds from connecting (or the previous answer) to the end of the headers
    body_timeout: float = 30.0  # seconds from the end of the headers to the end of the body
    keep_alive_timeout: int = 5  # seconds an idle keep-alive connection stays open
    max_connections: int = 1000  # beyond it new requests are answered 503
    max_headers: int = 100
    max_header_bytes: int = 16 * 1024  # request line and headers together
    statement_timeout: float = 15.0  # seconds a request's SQL statement may run (0: no limit)
    stream_limit: int = 8  # unpaginated streams at once, each on a connection of its own
    metrics_key: str | None = None  # when set, /metrics wants it as a bearer token or X-API-Key
    metrics_cache_seconds: float = 15.0
    # Live events and webhooks (seeonline.events, seeonline.webhooks, supervisor.webhooks).
    events_ping_interval: float = 15.0  # seconds between keep-alive comments on an idle event stream
    event_retention_hours: float = 48.0  # longer than a webhook's 24 h of retries
    webhook_allow_private: bool = False  # allow webhook URLs on loopback and private networks (tests, LANs)
    webhook_retry_scale: float = 1.0  # multiplies the retry backoff (tests shrink it)
    supervisor_metrics_port: int | None = None  # the supervisor serves Prometheus metrics there when set
    supervisor_metrics_bind: str = "127.0.0.1"  # 0.0.0.0 in containers, where Prometheus scrapes over the network

    @property
    def asyncpg_dsn(self) -> str:
        """The database URL in the form asyncpg accepts (no SQLAlchemy driver suffix)."""
        if self.database_url is None:
            msg = "DATABASE_URL is not set"
            raise SettingsError(msg)
        return to_asyncpg_dsn(self.database_url)

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with SQLAlchemy's asyncpg driver name."""
        return to_sqlalchemy_url(self.asyncpg_dsn)


ENV_NAMES: dict[str, str] = {
    "database_url": "DATABASE_URL",
    "api_keys": "SEEONLINE_API_KEYS",
    "secret_key": "SEEONLINE_SECRET_KEY",
    "data_dir": "SEEONLINE_DATA_DIR",
    "db_pool_size": "SEEONLINE_DB_POOL_SIZE",
    "log_level": "SEEONLINE_LOG_LEVEL",
    "log_json": "SEEONLINE_LOG_JSON",
    "reconcile_interval": "SEEONLINE_RECONCILE_INTERVAL",
    "status_retention_months": "SEEONLINE_STATUS_RETENTION_MONTHS",
    "lease": "SEEONLINE_LEASE_GRACE",
    "move_unresolved_after": "SEEONLINE_MOVE_UNRESOLVED_AFTER",
    "header_timeout": "SEEONLINE_HEADER_TIMEOUT",
    "body_timeout": "SEEONLINE_BODY_TIMEOUT",
    "keep_alive_timeout": "SEEONLINE_KEEP_ALIVE_TIMEOUT",
    "max_connections": "SEEONLINE_MAX_CONNECTIONS",
    "max_headers": "SEEONLINE_MAX_HEADERS",
    "max_header_bytes": "SEEONLINE_MAX_HEADER_BYTES",
    "statement_timeout": "SEEONLINE_STATEMENT_TIMEOUT",
    "stream_limit": "SEEONLINE_STREAM_LIMIT",
    "metrics_key": "SEEONLINE_METRICS_KEY",
    "metrics_cache_seconds": "SEEONLINE_METRICS_CACHE_SECONDS",
    "events_ping_interval": "SEEONLINE_EVENTS_PING_INTERVAL",
    "event_retention_hours": "SEEONLINE_EVENT_RETENTION_HOURS",
    "webhook_allow_private": "SEEONLINE_WEBHOOK_ALLOW_PRIVATE",
    "webhook_retry_scale": "SEEONLINE_WEBHOOK_RETRY_SCALE",
    "supervisor_metrics_port": "SEEONLINE_SUPERVISOR_METRICS_PORT",
    "supervisor_metrics_bind": "SEEONLINE_SUPERVISOR_METRICS_BIND",
}

# Shorter API keys could be guessed; the dev key `seeonline run` generates has 32 characters.
MIN_API_KEY_LENGTH = 24

LOG_LEVELS = ("debug", "info", "warning", "error")


def to_asyncpg_dsn(url: str) -> str:
    """Strip a SQLAlchemy driver suffix (``postgresql+asyncpg://``) so asyncpg accepts the URL."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    return f"{scheme.split('+', 1)[0]}://{rest}"


def to_sqlalchemy_url(url: str) -> str:
    """Give a plain Postgres URL SQLAlchemy's asyncpg driver name."""
    _, sep, rest = url.partition("://")
    return f"postgresql+asyncpg://{rest}" if sep else url


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings, raising ``SettingsError`` that names the first bad variable."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    for field, name in ENV_NAMES.items():
        value = _value_or_file(env, name)
        if value is None or value.strip() == "":
            continue
        value = value.strip()
        if field == "api_keys":
            keys = tuple(key.strip() for key in value.split(",") if key.strip())
            if any(len(key) < MIN_API_KEY_LENGTH for key in keys):
                msg = f"{name}: every API key must be at least {MIN_API_KEY_LENGTH} characters long"
                raise SettingsError(msg)
            raw[field] = keys
        elif field == "data_dir":
            raw[field] = Path(value).expanduser().resolve()  # msgspec does not build Paths from text
        elif field == "lease":
            raw[field] = {"grace": value}
        else:
            raw[field] = value
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_name_variable(str(exc))) from exc
    _validate(settings)
    return settings


def _value_or_file(env: Mapping[str, str], name: str) -> str | None:
    """``name``'s value, or the contents of the file ``name_FILE`` names (container secrets)."""
    path = env.get(f"{name}_FILE", "").strip()
    if not path:
        return env.get(name)
    if env.get(name, "").strip():
        msg = f"{name}: set either {name} or {name}_FILE, not both"
        raise SettingsError(msg)
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        msg = f"{name}_FILE: cannot read {path} ({exc.strerror})"
        raise SettingsError(msg) from None


def _name_variable(message: str) -> str:
    """Replace msgspec's ``$.field`` path with the environment variable's name."""
    for field, name in ENV_NAMES.items():
        if f"$.{field}" in message:
            return f"{name}: {message.split(' - at ', maxsplit=1)[0]}"
    return message


def _validate(settings: Settings) -> None:
    if settings.database_url is not None and not settings.database_url.startswith(("postgres://", "postgresql")):
        msg = "DATABASE_URL: must be a postgresql:// URL"
        raise SettingsError(msg)
    if settings.db_pool_size < 1:
        msg = "SEEONLINE_DB_POOL_SIZE: must be at least 1"
        raise SettingsError(msg)
    if settings.log_level.lower() not in LOG_LEVELS:
        msg = f"SEEONLINE_LOG_LEVEL: must be one of {', '.join(LOG_LEVELS)}"
        raise SettingsError(msg)
    if settings.status_retention_months < 0:
        msg = "SEEONLINE_STATUS_RETENTION_MONTHS: must be 0 (keep forever) or a number of months"
        raise SettingsError(msg)
    if settings.lease.grace < 0:
        msg = "SEEONLINE_LEASE_GRACE: must be 0 or more seconds"
        raise SettingsError(msg)
    if settings.move_unresolved_after < 0:
        msg = "SEEONLINE_MOVE_UNRESOLVED_AFTER: must be 0 or more seconds"
        raise SettingsError(msg)
    for field in ("events_ping_interval", "event_retention_hours", "webhook_retry_scale"):
        if getattr(settings, field) <= 0:
            msg = f"{ENV_NAMES[field]}: must be positive"
            raise SettingsError(msg)
    if settings.supervisor_metrics_port is not None and not 0 < settings.supervisor_metrics_port < 65536:
        msg = "SEEONLINE_SUPERVISOR_METRICS_PORT: must be a TCP port (1-65535)"
        raise SettingsError(msg)
    if settings.reconcile_interval <= 0:
        msg = "SEEONLINE_RECONCILE_INTERVAL: must be positive"
        raise SettingsError(msg)
    for field in ("header_timeout", "body_timeout", "keep_alive_timeout"):
        if getattr(settings, field) <= 0:
            msg = f"{ENV_NAMES[field]}: must be a positive number of seconds"
            raise SettingsError(msg)
    for field in ("max_connections", "max_headers", "max_header_bytes", "stream_limit"):
        if getattr(settings, field) < 1:
            msg = f"{ENV_NAMES[field]}: must be at least 1"
            raise SettingsError(msg)
    for field in ("statement_timeout", "metrics_cache_seconds"):
        if getattr(settings, field) < 0:
            msg = f"{ENV_NAMES[field]}: must be 0 or more seconds"
            raise SettingsError(msg)
    if settings.metrics_key is not None and len(settings.metrics_key) < MIN_API_KEY_LENGTH:
        msg = f"SEEONLINE_METRICS_KEY: must be at least {MIN_API_KEY_LENGTH} characters long"
        raise SettingsError(msg)
    if settings.secret_key is not None:
        from seeonline.secrets import SecretKeyError, validate_secret_key  # noqa: PLC0415 - avoids a cycle at import

        try:
            validate_secret_key(settings.secret_key)  # the message names the variable, never the key
        except SecretKeyError as exc:
            raise SettingsError(str(exc)) from None
