"""How tracker accounts and settings are read: SQL, JSON shape, filters, orderings."""

from __future__ import annotations

from seeonline.api.listing import Filter, Resource
from seeonline.api.params import parse_bool, parse_int
from seeonline.health import HealthState
from seeonline.trackers.schemas import PHONE

TRACKER_ACCOUNTS = Resource(
    name="TrackerAccount",
    source="tracker_accounts r LEFT JOIN tracker_health h ON h.tracker_account_id = r.id",
    json=f"""json_build_object(
        'id', r.id, 'telegram_id', r.telegram_id, 'api_id', r.api_id, 'api_hash', r.api_hash_masked,
        'is_active', r.is_active, 'is_auth', r.is_auth,
        'health', json_build_object(
            'state', coalesce(h.state, '{HealthState.STOPPED}'), 'state_until', h.state_until,
            'last_heartbeat_at', h.last_heartbeat_at, 'last_error', h.last_error,
            'enrolment_paused_until', CASE WHEN h.enrolment_paused_until > now() THEN h.enrolment_paused_until END),
        'created_at', r.created_at, 'updated_at', r.updated_at)""",
    filters={
        "id": Filter(parse_int, "r.id = {}"),
        "telegram_id": Filter(parse_int, "r.telegram_id = {}"),
        "is_active": Filter(parse_bool, "r.is_active = {}"),
        "is_auth": Filter(parse_bool, "r.is_auth = {}"),
    },
    orderings={
        name: f"r.{name}"
        for name in ("id", "telegram_id", "api_id", "is_active", "is_auth", "created_at", "updated_at")
    },
)

TRACKER_SETTINGS = Resource(
    name="TrackerSetting",
    source="tracker_settings r",
    json="""json_build_object(
        'id', r.id, 'tracker_account_id', r.tracker_account_id, 'phone_number', r.phone_number,
        'session_string', NULL, 'has_session', r.session_encrypted IS NOT NULL,
        'max_users', r.max_users, 'current_users', r.current_users,
        'created_at', r.created_at, 'updated_at', r.updated_at)""",
    filters={
        "id": Filter(parse_int, "r.id = {}"),
        "phone_number": Filter(PHONE, "r.phone_number = {}"),
        "tracker_account__telegram_id": Filter(
            parse_int, "r.tracker_account_id IN (SELECT id FROM tracker_accounts WHERE telegram_id = {})"
        ),
    },
    orderings={
        name: f"r.{name}"
        for name in (
            "id",
            "tracker_account_id",
            "phone_number",
            "max_users",
            "current_users",
            "created_at",
            "updated_at",
        )
    },
)
