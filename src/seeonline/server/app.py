"""Assemble the Litestar application: routes, auth, errors, OpenAPI, and the pool's lifetime."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from litestar import Litestar, Response, Router, get
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin

from seeonline.api.auth import require_api_key
from seeonline.api.body_guard import check_body
from seeonline.api.disconnect import cancel_on_disconnect
from seeonline.api.errors import (
    ApiError,
    api_error_handler,
    http_exception_handler,
    invalid,
    unexpected_error_handler,
)
from seeonline.api.handler_types import AnyRequest, Pool
from seeonline.api.path_guard import refuse_encoded_slashes
from seeonline.api.throttle import FailureThrottle
from seeonline.bot_users.controllers import TelegramUserController, TrackedUserController
from seeonline.database.maintenance import drop_expired_status_partitions, ensure_status_partitions
from seeonline.database.pool import StreamSource, create_pool
from seeonline.events.controllers import EventController
from seeonline.events.hub import EventHub
from seeonline.history.controllers import HistoryController
from seeonline.logging import get_logger
from seeonline.logins.controllers import TrackerLoginController
from seeonline.server.dependencies import Services, dependencies
from seeonline.server.metrics import MetricsCache, metrics
from seeonline.server.request_metrics import REQUEST_METRICS
from seeonline.settings import Settings, SettingsError
from seeonline.statuses.controllers import OnlineStatusController
from seeonline.trackers.controllers import TrackerAccountController, TrackerSettingController
from seeonline.webhooks.controllers import WebhookController

log = get_logger(__name__)

MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")


@get("/health", exclude_from_auth=True, tags=["operations"])
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@get("/ready", tags=["operations"])
async def ready(pool: Pool) -> Response[dict[str, str]]:
    """Readiness: the database answers."""
    try:
        await pool.fetchval("SELECT 1")
    except (OSError, asyncpg.PostgresError, AttributeError):
        return Response({"status": "unavailable", "detail": "database unreachable"}, status_code=503)
    return Response({"status": "ok"})


def validation_error_handler(request: AnyRequest, exc: ValidationException) -> Response[Any]:
    """Litestar's body validation errors in the contract's shape: a 400 naming the field."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    first = extra[0] if extra and isinstance(extra[0], dict) else {}
    message = str(first.get("message") or exc.detail)
    missing = MISSING_FIELD.search(message)
    field = missing.group(1) if missing else first.get("key")
    if field == "data":  # the body as a whole: absent, or of the wrong JSON type
        cause = MISSING_FIELD.search(str(exc.__cause__))
        if cause and cause.group(1) == "data":
            return api_error_handler(request, ApiError(400, "A JSON body is required", code="parse_error"))
        field = None
    if field:
        return api_error_handler(request, invalid(str(field), message))
    return api_error_handler(request, ApiError(400, message, code="invalid"))


def create_app(settings: Settings) -> Litestar:
    """The SeeOnline API for ``settings`` (database, API keys, secret key)."""
    if settings.database_url is None:
        msg = "DATABASE_URL: not set"
        raise SettingsError(msg)
    if not settings.api_keys:
        msg = "SEEONLINE_API_KEYS: set at least one API key (comma-separated)"
        raise SettingsError(msg)
    if settings.secret_key is None:
        msg = "SEEONLINE_SECRET_KEY: not set (it encrypts tracker credentials)"
        raise SettingsError(msg)
    secret_key = settings.secret_key

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = await create_pool(
            settings.asyncpg_dsn, size=settings.db_pool_size, statement_timeout=settings.statement_timeout
        )
        async with pool.acquire() as connection:
            await ensure_status_partitions(connection)
            if settings.status_retention_months:
                await drop_expired_status_partitions(connection, settings.status_retention_months)
        streams = StreamSource(
            settings.asyncpg_dsn, limit=settings.stream_limit, statement_timeout=settings.statement_timeout
        )
        events = EventHub(settings.asyncpg_dsn, pool, ping_interval=settings.events_ping_interval)
        await events.start()
        app.state.services = Services.build(
            pool, streams, secret_key, event_hub=events, allow_private_webhooks=settings.webhook_allow_private
        )
        try:
            yield
        finally:
            await events.stop()
            await pool.close()

    resources = Router(
        path="/",
        guards=[require_api_key],
        before_request=check_body,
        route_handlers=[
            TrackerAccountController,
            TrackerSettingController,
            TelegramUserController,
            TrackedUserController,
            HistoryController,
            OnlineStatusController,
            TrackerLoginController,
            EventController,
            WebhookController,
        ],
    )
    app = Litestar(
        route_handlers=[health, ready, metrics, resources],
        dependencies=dependencies(),
        middleware=[REQUEST_METRICS.middleware, refuse_encoded_slashes, cancel_on_disconnect],
        lifespan=[lifespan],
        exception_handlers={
            ApiError: api_error_handler,
            ValidationException: validation_error_handler,
            HTTPException: http_exception_handler,
            Exception: unexpected_error_handler,
        },
        openapi_config=OpenAPIConfig(
            title="SeeOnline",
            version="0.1.0",
            description="Telegram online-status tracking. Resource routes need an X-API-Key header.",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin(), ScalarRenderPlugin(path="/scalar")],
        ),
        debug=False,
        logging_config=None,  # seeonline.logging configures every process the same way
    )
    app.state.api_keys = tuple(key.encode() for key in settings.api_keys)
    app.state.auth_throttle = FailureThrottle()
    app.state.metrics_key = settings.metrics_key.encode() if settings.metrics_key else None
    app.state.metrics_cache = MetricsCache(settings.metrics_cache_seconds)
    return app
