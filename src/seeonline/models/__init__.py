"""The database schema as SQLAlchemy models: the source Alembic compares migrations with."""

from seeonline.models.base import Base
from seeonline.models.bot_users import TelegramUser, TrackedUser
from seeonline.models.events import Event, Webhook
from seeonline.models.history import HistoryDay, HistoryDirty, TargetVisibilityChange, TargetWatch, TrackerUptime
from seeonline.models.logins import TrackerLogin
from seeonline.models.statuses import OnlineStatus
from seeonline.models.targets import Target, TrackerPeer
from seeonline.models.trackers import TrackerAccount, TrackerHealth, TrackerPrivacyCheck, TrackerSetting

__all__ = [
    "Base",
    "Event",
    "HistoryDay",
    "HistoryDirty",
    "OnlineStatus",
    "Target",
    "TargetVisibilityChange",
    "TargetWatch",
    "TelegramUser",
    "TrackedUser",
    "TrackerAccount",
    "TrackerHealth",
    "TrackerLogin",
    "TrackerPeer",
    "TrackerPrivacyCheck",
    "TrackerSetting",
    "TrackerUptime",
    "Webhook",
]
