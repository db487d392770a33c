"""How webhooks are read: SQL, JSON shape, filters, orderings."""

from __future__ import annotations

from seeonline.api.listing import Filter, Resource
from seeonline.api.params import choice_parser, parse_bool, parse_int
from seeonline.webhooks.schemas import WEBHOOK_STATES

WEBHOOKS = Resource(
    name="Webhook",
    source="webhooks r",
    json="""json_build_object(
        'id', r.id, 'url', r.url, 'events', to_json(r.events), 'telegram_user_id', r.telegram_user_id,
        'notify_only', r.notify_only, 'state', r.state, 'cursor', r.cursor, 'attempts', r.attempts,
        'next_attempt_at', r.next_attempt_at, 'last_error', r.last_error, 'last_delivered_at', r.last_delivered_at,
        'created_at', r.created_at, 'updated_at', r.updated_at)""",
    filters={
        "id": Filter(parse_int, "r.id = {}"),
        "telegram_user_id": Filter(parse_int, "r.telegram_user_id = {}"),
        "state": Filter(choice_parser(*WEBHOOK_STATES), "r.state = {}"),
        "notify_only": Filter(parse_bool, "r.notify_only = {}"),
    },
    orderings={name: f"r.{name}" for name in ("id", "url", "state", "created_at", "updated_at")},
)
