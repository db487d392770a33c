"""Tracker onboarding: logging a Telegram user account in by phone code (API and CLI share it)."""
