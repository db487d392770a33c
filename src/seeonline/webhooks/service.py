"""Writes to webhooks: URL checks (the SSRF guard), the secret shown once, re-enabling."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from seeonline import secrets
from seeonline.api.bodies import provided
from seeonline.api.errors import ApiError, invalid, not_found
from seeonline.database.pool import with_retry
from seeonline.database.row_ids import next_id
from seeonline.database.set_clause import set_clause
from seeonline.webhooks.addresses import RefusedUrlError, UnsafeUrlError, resolve_allowed
from seeonline.webhooks.schemas import WebhookCreate, WebhookUpdate
from seeonline.webhooks.signing import new_secret


class WebhookService:
    """Webhook CRUD writes; delivery is the supervisor's (``supervisor.webhooks``)."""

    def __init__(self, pool: asyncpg.Pool, secret_key: str, *, allow_private: bool) -> None:
        self.pool = pool
        self.secret_key = secret_key
        self.allow_private = allow_private

    async def check_url(self, url: str) -> None:
        """A 400 on ``url`` unless it is an http(s) URL on an allowed address."""
        try:
            await resolve_allowed(url, allow_private=self.allow_private)
        except RefusedUrlError as exc:  # well-formed, but its host is not one webhooks may reach
            raise ApiError(400, f"url: {exc}", code="url_refused", field="url") from None
        except UnsafeUrlError as exc:
            raise invalid("url", str(exc)) from None

    async def create(self, data: WebhookCreate) -> tuple[int, str]:
        """Save a webhook that starts after the newest event; ``(id, its signing secret)``."""
        await self.check_url(data.url)
        secret = new_secret()
        sql = (
            "INSERT INTO webhooks (id, url, events, telegram_user_id, notify_only, secret_encrypted, cursor)"
            " VALUES ($1, $2, $3, $4, $5, $6, (SELECT coalesce(max(id), 0) FROM events)) RETURNING id"
        )
        webhook_id = await next_id(self.pool, "webhooks")  # the ciphertext names its row
        args = (
            webhook_id,
            data.url,
            sorted(set(data.events)),
            data.telegram_user_id,
            data.notify_only,
            secrets.encrypt(self.secret_key, secret, secrets.webhook_secret(webhook_id)),
        )
        created: int = await with_retry(self.pool, lambda c: c.fetchval(sql, *args))
        return created, secret

    async def update(self, webhook_id: int, data: WebhookUpdate) -> None:
        """Apply a PATCH; re-enabling (``state: active``) clears the failure record and retries at once."""
        values = provided(data)
        if "url" in values:
            await self.check_url(values["url"])
        if "events" in values:
            values["events"] = sorted(set(values["events"]))
        if values.get("state") == "active":
            values.update(attempts=0, failing_since=None, next_attempt_at=None, last_error=None)
        args: list[Any] = [webhook_id]
        sql = f"UPDATE webhooks SET {set_clause(values, args) or 'id = id'} WHERE id = $1 RETURNING id"
        if await with_retry(self.pool, lambda c: c.fetchval(sql, *args)) is None:
            raise not_found("Webhook")

    async def delete(self, webhook_id: int) -> None:
        """Delete a webhook (its deliverer stops)."""
        sql = "DELETE FROM webhooks WHERE id = $1 RETURNING id"
        if await with_retry(self.pool, lambda c: c.fetchval(sql, webhook_id)) is None:
            raise not_found("Webhook")


def with_secret(body: str, secret: str) -> str:
    """The creation answer: the webhook's JSON plus its secret, this once."""
    shown = json.loads(body)
    shown["secret"] = secret
    return json.dumps(shown)
