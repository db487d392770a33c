"""Names shared by the API, the supervisor, the workers and the SQL the migrations install."""

# LISTEN/NOTIFY channels; payloads carry ids only, listeners re-read the tables.
CHANNEL_TRACKERS = "seeonline_trackers"  # a tracker's row, setting or health changed (payload: tracker id)
CHANNEL_TARGETS = "seeonline_targets"  # a tracker's target set changed (payload: tracker id)
CHANNEL_STATUSES = "seeonline_statuses"  # status rows were inserted (payload: highest new id)
CHANNEL_PRIVACY = "seeonline_privacy"  # a tracker's privacy check was requested (payload: tracker id)

# Advisory locks. The single-key and the two-key forms never collide in Postgres.
REBALANCE_LOCK = 0x5EE0_0001  # serializes drains and pick-ups of waiting targets
PARTITION_LOCK = 0x5EE0_0002  # serializes the creation of status partitions
TRACKER_LOCK_SPACE = 0x5EE0  # (space, tracker id): held by the one worker that runs a tracker

SQL_PLACEHOLDERS = {
    "@CHANNEL_TRACKERS@": CHANNEL_TRACKERS,
    "@CHANNEL_TARGETS@": CHANNEL_TARGETS,
    "@CHANNEL_STATUSES@": CHANNEL_STATUSES,
    "@CHANNEL_PRIVACY@": CHANNEL_PRIVACY,
    "@REBALANCE_LOCK@": str(REBALANCE_LOCK),
    "@PARTITION_LOCK@": str(PARTITION_LOCK),
}
