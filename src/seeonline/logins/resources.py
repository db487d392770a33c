"""How a tracker login is read: one SQL statement rendering its JSON (secrets never selected)."""

from __future__ import annotations

from seeonline.api.listing import Resource
from seeonline.choices import LoginState

TRACKER_LOGINS = Resource(
    name="TrackerLogin",
    source="tracker_logins r",
    json=f"""json_build_object(
        'id', r.id,
        'state', CASE WHEN r.state <> '{LoginState.DONE}' AND r.expires_at <= now() THEN '{LoginState.EXPIRED}'
                 ELSE r.state END,
        'phone_number', r.phone_number, 'api_id', r.api_id, 'max_users', r.max_users,
        'code_type', r.code_type, 'code_length', r.code_length, 'password_hint', r.password_hint,
        'tracker_account_id', r.tracker_account_id, 'privacy_ok', r.privacy_ok,
        'expires_at', r.expires_at, 'created_at', r.created_at, 'updated_at', r.updated_at)""",
    filters={},
    orderings={"id": "r.id"},
)
