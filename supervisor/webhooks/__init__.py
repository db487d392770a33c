"""Webhook delivery: the supervisor side that POSTs the event log to each webhook, in order."""
