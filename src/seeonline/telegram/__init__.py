"""Telethon integration shared by the API's login flow and the tracker workers."""

from seeonline.telegram.client import build_client

__all__ = ["build_client"]
