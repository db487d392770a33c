"""Imported last in the forkserver's preload list: tie the forkserver to the supervisor, then freeze the heap.

Never import this module anywhere else. Workers keep the forkserver's "alive" pipe open, so the
forkserver would not notice the supervisor's death on its own while any worker lives; the
parent-death signal closes that gap (and the workers' own parent-death signal then fires).
"""

from __future__ import annotations

import gc
import os
import signal

from supervisor.process import SUPERVISOR_PID_ENV, set_parent_death_signal

_expected_parent = os.environ.get(SUPERVISOR_PID_ENV)
if _expected_parent is not None:
    set_parent_death_signal(signal.SIGKILL)
    if str(os.getppid()) != _expected_parent:  # the supervisor died before the signal was armed
        os._exit(1)

# Objects imported so far are shared copy-on-write with every worker; keep the collector off them.
gc.collect()
gc.freeze()
