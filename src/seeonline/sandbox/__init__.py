"""A local Telegram (MTProto) server that unmodified Telethon clients can log in to, for tests and demos."""

from seeonline.sandbox.faults import Call, Fault
from seeonline.sandbox.privacy import Privacy
from seeonline.sandbox.server import SandboxServer
from seeonline.sandbox.world import Account, SandboxUser, World

# The short name other tests may prefer.
Sandbox = SandboxServer

__all__ = ["Account", "Call", "Fault", "Privacy", "Sandbox", "SandboxServer", "SandboxUser", "World"]
