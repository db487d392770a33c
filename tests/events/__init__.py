"""Live events: the event log, SSE streams, webhooks and notify preferences."""
