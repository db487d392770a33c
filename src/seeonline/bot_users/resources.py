"""How bot users and tracked users are read: SQL, JSON shape, filters, orderings."""

from __future__ import annotations

from seeonline.api.listing import Filter, Resource
from seeonline.api.params import choice_parser, parse_bool, parse_int, parse_text
from seeonline.bot_users.schemas import NOTIFY_MODES, ROLES, THEMES, USERNAME
from seeonline.usernames import sql_normalized

TELEGRAM_USERS = Resource(
    name="TelegramUser",
    source="telegram_users r",
    json="""json_build_object(
        'id', r.id, 'telegram_id', r.telegram_id, 'role', r.role, 'current_users', r.current_users,
        'max_users', r.max_users, 'timezone', r.timezone, 'theme', r.theme,
        'created_at', r.created_at, 'updated_at', r.updated_at)""",
    filters={
        "id": Filter(parse_int, "r.id = {}"),
        "telegram_id": Filter(parse_int, "r.telegram_id = {}"),
        "role": Filter(choice_parser(*ROLES), "r.role = {}"),
        "timezone": Filter(parse_text, "r.timezone = {}"),
        "theme": Filter(choice_parser(*THEMES), "r.theme = {}"),
    },
    orderings={
        name: f"r.{name}"
        for name in (
            "id",
            "telegram_id",
            "role",
            "current_users",
            "max_users",
            "timezone",
            "theme",
            "created_at",
            "updated_at",
        )
    },
)

# A target's state is known only while its tracker sees it.
IS_ONLINE = "CASE WHEN t.visibility = 'visible' THEN t.last_is_online END"

TRACKED_USERS = Resource(
    name="TrackedUser",
    source="tracked_users r JOIN targets t ON t.id = r.target_id",
    json=f"""json_build_object(
        'id', r.id, 'tracker_account_id', t.tracker_account_id, 'telegram_user_id', r.telegram_user_id,
        'username', r.username, 'visible_online', r.visible_online,
        'created_at', r.created_at, 'updated_at', r.updated_at,
        'notify_mode', r.notify_mode, 'mute_until', r.mute_until, 'display_name', r.display_name,
        'is_online', {IS_ONLINE}, 'status_since', t.last_status_at, 'visibility', t.visibility)""",
    filters={
        "id": Filter(parse_int, "r.id = {}"),
        "username": Filter(USERNAME, f"t.username = {sql_normalized('{}')}"),
        "visible_online": Filter(parse_bool, "r.visible_online = {}"),
        "notify_mode": Filter(choice_parser(*NOTIFY_MODES), "r.notify_mode = {}"),
        "is_online": Filter(parse_bool, f"{IS_ONLINE} = {{}}"),
        "tracker_account__telegram_id": Filter(
            parse_int, "t.tracker_account_id IN (SELECT id FROM tracker_accounts WHERE telegram_id = {})"
        ),
        "telegram_user__telegram_id": Filter(
            parse_int, "r.telegram_user_id IN (SELECT id FROM telegram_users WHERE telegram_id = {})"
        ),
    },
    orderings={
        "id": "r.id",
        "tracker_account_id": "t.tracker_account_id",
        "telegram_user_id": "r.telegram_user_id",
        "username": "r.username",
        "visible_online": "r.visible_online",
        "notify_mode": "r.notify_mode",
        "created_at": "r.created_at",
        "updated_at": "r.updated_at",
    },
)
