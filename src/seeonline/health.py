"""A tracker's health states: what its worker last reported (``tracker_health.state``)."""

from __future__ import annotations

import enum


class HealthState(enum.StrEnum):
    """Every state ``tracker_health.state`` may hold."""

    STOPPED = "stopped"  # no worker runs it (yet, or it stopped cleanly)
    OK = "ok"
    CONNECTING = "connecting"  # its worker runs but is not connected to Telegram (yet, or again)
    TELEGRAM_UNREACHABLE = "telegram_unreachable"  # ... and has not been for a while
    WRITER_FAILING = "writer_failing"  # observed changes are buffered but cannot be written
    RESYNC_STUCK = "resync_stuck"  # contacts.getStatuses asked for and not answered for a while
    PRIVACY_MISCONFIGURED = "privacy_misconfigured"  # hides its own last seen: its worker runs, it gets no targets
    FLOOD_WAIT = "flood_wait"  # until state_until: what tracking needs is flood-limited
    AUTH_LOST = "auth_lost"
    BANNED = "banned"
    FATAL = "fatal"  # its worker kept dying right after start


# What a running worker reports (its heartbeats go on).
RUNNING_STATES = frozenset(
    {
        HealthState.OK,
        HealthState.CONNECTING,
        HealthState.TELEGRAM_UNREACHABLE,
        HealthState.WRITER_FAILING,
        HealthState.RESYNC_STUCK,
        HealthState.PRIVACY_MISCONFIGURED,
    }
)
# A worker that finds its tracker in one of these retires: the slot engine moves its targets away.
RETIRED_STATES = frozenset({HealthState.FLOOD_WAIT, HealthState.AUTH_LOST, HealthState.BANNED})
# The slot engine gives these trackers no targets: entering one drains the tracker, leaving one refills it.
UNUSABLE_STATES = RETIRED_STATES | {HealthState.PRIVACY_MISCONFIGURED}
# The supervisor runs no worker for these until an operator acts (a new session, or re-activation).
NEVER_RUN_STATES = frozenset({HealthState.AUTH_LOST, HealthState.BANNED, HealthState.FATAL})
