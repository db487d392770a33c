"""Tracker accounts and their settings: credentials, capacity and health."""
