"""How online statuses are read: SQL, JSON shape, filters, orderings."""

from __future__ import annotations

from seeonline.api.listing import Filter, Resource
from seeonline.api.params import parse_bool, parse_datetime, parse_int
from seeonline.bot_users.schemas import USERNAME
from seeonline.usernames import sql_normalized

STATUS_JSON = """json_build_object(
    'id', r.id, 'tracked_user_id', r.tracked_user_id, 'is_online', r.is_online, 'created_at', r.created_at)"""

ONLINE_STATUSES = Resource(
    name="OnlineStatus",
    source="online_statuses r",
    json=STATUS_JSON,
    filters={
        "id": Filter(parse_int, "r.id = {}"),
        "tracked_user": Filter(parse_int, "r.tracked_user_id = {}"),
        "tracked_user_id": Filter(parse_int, "r.tracked_user_id = {}"),
        "username": Filter(
            USERNAME,
            "r.tracked_user_id IN (SELECT tu.id FROM tracked_users tu JOIN targets t ON t.id = tu.target_id"
            f" WHERE t.username = {sql_normalized('{}')})",
        ),
        "is_online": Filter(parse_bool, "r.is_online = {}"),
        "created_at_after": Filter(parse_datetime, "r.created_at >= {}"),
        "created_at_before": Filter(parse_datetime, "r.created_at <= {}"),
    },
    orderings={name: f"r.{name}" for name in ("id", "tracked_user_id", "is_online", "created_at")},
)
