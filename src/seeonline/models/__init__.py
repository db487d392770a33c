"""The database schema as SQLAlchemy models: the source Alembic compares migrations with."""

from seeonline.models.base import Base
from seeonline.models.events import Event, Webhook
from seeonline.models.logins import TrackerLogin
from seeonline.models.people import TelegramUser, TrackedUser
from seeonline.models.statuses import OnlineStatus
from seeonline.models.targets import Target, TrackerPeer
from seeonline.models.trackers import TrackerAccount, TrackerHealth, TrackerPrivacyCheck, TrackerSetting

__all__ = [
    "Base",
    "Event",
    "OnlineStatus",
    "Target",
    "TelegramUser",
    "TrackedUser",
    "TrackerAccount",
    "TrackerHealth",
    "TrackerLogin",
    "TrackerPeer",
    "TrackerPrivacyCheck",
    "TrackerSetting",
    "Webhook",
]
