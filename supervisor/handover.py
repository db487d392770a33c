"""Make before break: how long a tracker keeps watching targets that left it, and how it is asked to.

A target that moves to another tracker stays watched by the tracker it leaves until the new tracker's
worker has it as a contact (``targets.enrolled_at``), at most ``HANDOVER_MAX`` seconds. When a tracker
leaves the runnable set (deactivated, deleted, its session removed, a long flood wait on what tracking
needs) its worker is not stopped but asked to drain (``DRAIN_SIGNAL``): it keeps watching only the
targets it had until their new trackers have them, enrols nothing, then exits. The supervisor stops a
drainer that is still alive ``DRAIN_MARGIN`` after the bound (it cannot have anything left to watch).
"""

from __future__ import annotations

import signal

HANDOVER_MAX = 300.0
DRAIN_MARGIN = 30.0  # the drainer's own bookkeeping after its last handover (a reconcile, the flush)
DRAIN_SIGNAL = signal.SIGUSR1
