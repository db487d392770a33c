"""Imported last in the forkserver's preload list: tie the forkserver to the supervisor, then freeze the heap.

Never import this module anywhere else. Workers keep the forkserver's "alive" pipe open, so the
forkserver would not notice the supervisor's death on its own while any worker lives; the
parent-death signal closes that gap (and the workers' own parent-death signal then fires).
"""

from __future__ import annotations

import gc
import os
import signal

from setproctitle import setproctitle

from seeonline.parent_death import die_with_parent
from seeonline_supervisor.process import FORKSERVER_PID_ENV, SUPERVISOR_PID_ENV

_expected_parent = os.environ.get(SUPERVISOR_PID_ENV)
if _expected_parent is not None and not die_with_parent(signal.SIGKILL, int(_expected_parent)):
    os._exit(1)  # the supervisor died before the signal was armed
os.environ[FORKSERVER_PID_ENV] = str(os.getpid())  # inherited by every worker forked from here
setproctitle("seeonline supervisor forkserver")

# Objects imported so far are shared copy-on-write with every worker; keep the collector off them.
gc.collect()
gc.freeze()
