"""A worker process's states change only along the allowed transitions, in one place."""

from __future__ import annotations

import multiprocessing

import pytest

from seeonline.settings import Settings
from seeonline_supervisor.process import TRANSITIONS, ProcessOptions, State, TrackerProcess


def _process(changes: list[State]) -> TrackerProcess:
    return TrackerProcess(
        7,
        context=multiprocessing.get_context("forkserver"),
        target=lambda _tracker, _settings, _credentials: 0,
        settings=Settings(),
        options=ProcessOptions(),
        on_change=lambda process: changes.append(process.state),
    )


def test_every_state_has_its_transitions() -> None:
    assert set(TRANSITIONS) == set(State)


def test_waiting_for_a_lock_is_reported_once_and_a_stop_ends_it() -> None:
    changes: list[State] = []
    process = _process(changes)
    process.wait_for_lock()
    process.wait_for_lock()
    process.stop()
    assert changes == [State.LOCKED, State.STOPPED]


def test_a_transition_outside_the_table_is_refused() -> None:
    process = _process([])
    with pytest.raises(AssertionError, match="stopped -> running"):
        process._set(State.RUNNING)
