"""Tests for the Telegram sandbox."""
