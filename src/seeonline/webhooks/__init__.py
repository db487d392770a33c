"""Webhooks: endpoints that receive the event log as signed POSTs (delivered by the supervisor)."""
