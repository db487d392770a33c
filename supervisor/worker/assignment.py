"""Which targets a worker watches: its tracker's rows, plus those handed over and not yet enrolled elsewhere.

Make before break: a target that left this tracker (a move, a drain, a deactivation) stays watched until
its new tracker has enrolled it (``targets.enrolled_at``) or ``handover_max`` passed, so no flip falls
between the two trackers. Only a contact can be watched; anything else leaves at once.
"""

from __future__ import annotations

import time
from typing import Any

from seeonline_supervisor.worker.book import StatusBook, TargetState
from seeonline_supervisor.worker.control import ControlDb, TargetRow
from seeonline_supervisor.worker.enrolment import Enrolment
from seeonline_supervisor.worker.options import WorkerOptions


class Assignment:
    """The worker's target set, reconciled with the rows Postgres assigns to its tracker."""

    def __init__(self, book: StatusBook, options: WorkerOptions, log: Any) -> None:
        self.book = book
        self.options = options
        self.log = log
        self.handing_over: dict[int, float] = {}  # target id -> monotonic deadline (see handover_max)
        self.enrolment: Enrolment | None = None  # set once connected

    def apply(self, rows: list[TargetRow], *, draining: bool) -> tuple[int, int]:
        """Watch what ``rows`` assign (nothing while draining); returns (added, left) counts."""
        assert self.enrolment is not None
        wanted = {} if draining else {row.target_id: row for row in rows}
        gone = [tid for tid in self.book.targets if tid not in wanted and tid not in self.handing_over]
        deadline = time.monotonic() + self.options.handover_max
        for target_id in gone:
            state = self.book.targets[target_id]
            if state.is_contact and not self.book.closed:
                self.handing_over[target_id] = deadline  # keep watching it until its new tracker has it
                continue
            self.book.remove(target_id)
            self.enrolment.target_left(state)
        for target_id in [tid for tid in self.handing_over if tid in wanted]:
            del self.handing_over[target_id]  # it came back
            self.book.targets[target_id].enrolled_marked = False  # the move cleared enrolled_at
        added = 0
        for target_id, row in wanted.items():
            if target_id not in self.book.targets:
                self._add(row)
                added += 1
        return added, len(gone)

    def _add(self, row: TargetRow) -> None:
        assert self.enrolment is not None
        state = TargetState(
            target_id=row.target_id,
            username=row.username,
            visibility=row.visibility,
            last_online=row.last_is_online,
            last_at=row.last_status_at,
        )
        self.book.add(state)
        if row.user_id is not None and row.access_hash is not None:
            self.book.bind(state, row.user_id, row.access_hash)
            self.enrolment.target_returned(row.user_id)
        if row.last_is_online and row.online_expires_at is not None:
            # Online when its last worker stopped (or was killed): the interval still ends at ``expires``.
            self.book.restore_expiry(state, row.online_expires_at)

    async def finish_handovers(self, control: ControlDb) -> int:
        """Stop watching targets that left once their new tracker has them (or the time limit passed)."""
        now = time.monotonic()
        done = {target_id for target_id, deadline in self.handing_over.items() if deadline <= now}
        try:
            done |= await control.handed_over([tid for tid in self.handing_over if tid not in done])
        finally:  # the time limit holds while Postgres is away too
            self._let_go_of(done)
        return len(done)

    def _let_go_of(self, done: set[int]) -> None:
        assert self.enrolment is not None
        for target_id in done:
            self.handing_over.pop(target_id, None)
            state = self.book.remove(target_id)
            if state is not None:
                self.enrolment.target_left(state)
        if done:
            self.log.info("worker_targets_handed_over", count=len(done), still=len(self.handing_over))
