"""HTTP routes for /webhooks."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from seeonline.api.handler_types import AnyRequest, PathId, Pool, Streams
from seeonline.api.listing import fetch_one, json_response, list_response, path_id
from seeonline.api.openapi import DOES_NOT_EXIST, list_operation, returns
from seeonline.webhooks.resources import WEBHOOKS
from seeonline.webhooks.schemas import WebhookCreate, WebhookOut, WebhookUpdate
from seeonline.webhooks.service import WebhookService, with_secret

Webhooks = NamedDependency[WebhookService]
REFUSED = {
    400: f"{DOES_NOT_EXIST} (`telegram_user_id`); `url_refused`: the host does not resolve, or only to"
    " loopback or private addresses (unless SEEONLINE_WEBHOOK_ALLOW_PRIVATE)"
}


class WebhookController(Controller):
    """CRUD for webhooks; the signing secret is in the creation answer only."""

    path = "/webhooks"
    tags = ["webhooks"]

    @get("/", operation_class=list_operation(WEBHOOKS), responses=returns(WebhookOut, many=True))
    async def list_webhooks(self, request: AnyRequest, pool: Pool, streams: Streams) -> Response[Any]:
        """List webhooks."""
        return await list_response(pool, streams, WEBHOOKS, request)

    @post("/", responses=returns(WebhookOut, status=201, refusals=REFUSED))
    async def create_webhook(self, pool: Pool, webhooks: Webhooks, data: JSONBody[WebhookCreate]) -> Response[bytes]:
        """Create a webhook; the answer carries its signing secret, shown this once."""
        webhook_id, secret = await webhooks.create(data)
        return json_response(with_secret(await fetch_one(pool, WEBHOOKS, webhook_id), secret), 201)

    @get("/{webhook_id:str}", responses=returns(WebhookOut))
    async def get_webhook(self, pool: Pool, webhook_id: PathId) -> Response[bytes]:
        """One webhook."""
        return json_response(await fetch_one(pool, WEBHOOKS, path_id(webhook_id)))

    @patch("/{webhook_id:str}", responses=returns(WebhookOut, refusals=REFUSED))
    async def update_webhook(
        self, pool: Pool, webhooks: Webhooks, webhook_id: PathId, data: JSONBody[WebhookUpdate]
    ) -> Response[bytes]:
        """Update a webhook (``state: active`` re-enables it)."""
        await webhooks.update(path_id(webhook_id), data)
        return json_response(await fetch_one(pool, WEBHOOKS, path_id(webhook_id)))

    @delete("/{webhook_id:str}", responses=returns(None))
    async def delete_webhook(self, webhooks: Webhooks, webhook_id: PathId) -> None:
        """Delete a webhook."""
        await webhooks.delete(path_id(webhook_id))
