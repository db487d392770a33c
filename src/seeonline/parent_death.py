"""Processes that die with their parent: ``PR_SET_PDEATHSIG``, armed without a race.

The kernel sends the signal when the parent *thread* exits. A parent that died before the signal was
armed leaves the child re-parented, so the child compares its parent with the pid it expects (never
with 1: in a container, or under a subreaper, an orphan's new parent is some other process).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

PARENT_PID_ENV = "SEEONLINE_PARENT_PID"  # set by a parent for a child started with --exit-with-parent
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


def arm(sig: int) -> Callable[[int], bool]:
    """Looked up before a fork (the child should do little between fork and exec): ``check(parent)``.

    ``check(expected_parent)`` arms ``sig`` for the calling process and says whether its parent is still
    ``expected_parent``; when False the caller should exit at once.
    """
    prctl = _prctl()

    def check(expected_parent: int) -> bool:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        return os.getppid() == expected_parent

    return check


def die_with_parent(sig: int, expected_parent: int | None) -> bool:
    """Arm ``sig`` for this process; False when the parent already died (it is not ``expected_parent``)."""
    return arm(sig)(os.getppid() if expected_parent is None else expected_parent)


def expected_parent_from_env() -> int | None:
    """The parent pid a parent announced in ``SEEONLINE_PARENT_PID``, if it did."""
    value = os.environ.get(PARENT_PID_ENV, "")
    return int(value) if value.isdigit() else None
