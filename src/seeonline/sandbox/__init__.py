"""A local Telegram (MTProto) server that unmodified Telethon clients can log in to, for tests and demos."""

from seeonline.sandbox.faults import Call, Fault
from seeonline.sandbox.privacy import Privacy
from seeonline.sandbox.server import SandboxServer
from seeonline.sandbox.world import Account, SandboxUser, World

__all__ = ["Account", "Call", "Fault", "Privacy", "SandboxServer", "SandboxUser", "World"]
