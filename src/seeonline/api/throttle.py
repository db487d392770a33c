"""Slow down key guessing: a token bucket of failed authentications per client address, in bounded memory.

An address may fail ``burst`` times in a row; then one attempt per ``1 / refill_per_second`` seconds. While
its bucket is empty it is answered 429 *before* its key is checked, so the answers reveal nothing about
keys at a higher rate. Valid requests cost nothing.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

AUTH_FAILURE_BURST = 20
AUTH_REFILL_PER_SECOND = 1.0
# The most addresses remembered at once; the least recently failing are forgotten first.
MAX_ADDRESSES = 10_000


class FailureThrottle:
    """Failed-authentication buckets keyed by client address."""

    def __init__(
        self,
        burst: int = AUTH_FAILURE_BURST,
        refill_per_second: float = AUTH_REFILL_PER_SECOND,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.refill_per_second = refill_per_second
        self.max_addresses = max_addresses
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (tokens, at)

    def _tokens(self, address: str, now: float) -> float:
        tokens, at = self._buckets.get(address, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - at) * self.refill_per_second)

    def retry_after(self, address: str) -> int:
        """0 when ``address`` may try now, else the whole seconds until it may."""
        if address not in self._buckets:
            return 0
        missing = 1.0 - self._tokens(address, self._clock())
        return 0 if missing <= 0 else max(1, math.ceil(missing / self.refill_per_second))

    def failed(self, address: str) -> None:
        """Record a failed authentication from ``address``."""
        now = self._clock()
        self._buckets[address] = (self._tokens(address, now) - 1.0, now)
        self._buckets.move_to_end(address)
        while len(self._buckets) > self.max_addresses:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)
