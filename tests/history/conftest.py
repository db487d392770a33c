"""History tests reuse the worker tests' sandbox trackers and in-process workers for the end-to-end cases."""

from tests.worker.conftest import make_tracker, run_worker_in_process

__all__ = ["make_tracker", "run_worker_in_process"]
