"""Names shared by the API, the supervisor, the workers and the SQL the migrations install."""

# LISTEN/NOTIFY channels; payloads carry ids only, listeners re-read the tables.
CHANNEL_TRACKERS = "seeonline_trackers"  # a tracker's row, setting or health changed (payload: tracker id)
CHANNEL_TARGETS = "seeonline_targets"  # a tracker's target set changed (payload: tracker id)
CHANNEL_STATUSES = "seeonline_statuses"  # status rows were inserted (payload: highest new id)
CHANNEL_PRIVACY = "seeonline_privacy"  # a tracker's privacy check was requested (payload: tracker id)
CHANNEL_EVENTS = "seeonline_events"  # events were appended to the event log (payload: empty)
CHANNEL_WEBHOOKS = "seeonline_webhooks"  # a webhook was created, changed or deleted (payload: webhook id)

# Advisory locks. The single-key and the two-key forms never collide in Postgres.
REBALANCE_LOCK = 0x5EE0_0001  # serializes drains and pick-ups of waiting targets
PARTITION_LOCK = 0x5EE0_0002  # serializes the creation of status partitions
TRACKER_LOCK_SPACE = 0x5EE0  # (space, tracker id): held by the one worker that runs a tracker
# Held from an event-writing transaction's commit-time trigger to its commit: event ids follow commit order.
EVENT_LOG_LOCK = 0x5EE0_0003
WEBHOOK_LOCK_SPACE = 0x5EE1  # (space, webhook id): held by the one deliverer that sends a webhook
HISTORY_LOCK_SPACE = 0x5EE2  # (space, tracked user id): held while a tracked user's days are stored

SQL_PLACEHOLDERS = {
    "@CHANNEL_TRACKERS@": CHANNEL_TRACKERS,
    "@CHANNEL_TARGETS@": CHANNEL_TARGETS,
    "@CHANNEL_STATUSES@": CHANNEL_STATUSES,
    "@CHANNEL_PRIVACY@": CHANNEL_PRIVACY,
    "@CHANNEL_EVENTS@": CHANNEL_EVENTS,
    "@CHANNEL_WEBHOOKS@": CHANNEL_WEBHOOKS,
    "@EVENT_LOG_LOCK@": str(EVENT_LOG_LOCK),
    "@REBALANCE_LOCK@": str(REBALANCE_LOCK),
    "@PARTITION_LOCK@": str(PARTITION_LOCK),
}
