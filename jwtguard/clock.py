"""The clock jwtguard measures elapsed time and deadlines with, and the one deadline helper.

Elapsed time is read from ``clock_gettime(CLOCK_MONOTONIC)``, not ``time.monotonic()``: freezegun's
``freeze_time`` freezes ``time.monotonic`` (and ``perf_counter``), so under a user's frozen test a polling
loop (``while monotonic() < deadline: sleep``) would never end and a fetch deadline would never pass.
Wall-clock time (``time.time()``, what tokens are judged by) is not read here: freezers must keep moving it.
"""

from __future__ import annotations

import time

from jwtguard.exceptions import FetchError

if hasattr(time, "clock_gettime") and hasattr(time, "CLOCK_MONOTONIC"):

    def elapsed() -> float:
        """Seconds on a monotonic clock that time freezers leave running (only differences mean anything)."""
        # Looked up at each call: time-machine patches clock_gettime, and passes CLOCK_MONOTONIC through.
        return time.clock_gettime(time.CLOCK_MONOTONIC)

else:  # pragma: no cover - Windows has no clock_gettime

    def elapsed() -> float:
        """Seconds on a monotonic clock (only differences mean anything)."""
        return time.monotonic()


class DeadlinePassed(FetchError, TimeoutError):
    """Raised when a deadline has passed: a fetch that failed (``FetchError``), and a ``TimeoutError`` to the
    socket code it interrupts (which closes what it holds, as for any timeout)."""


def time_left(deadline: float, what: str) -> float:
    """Seconds until ``deadline`` (an ``elapsed()`` reading); ``DeadlinePassed`` naming ``what`` once none are left."""
    left = deadline - elapsed()
    if left <= 0:
        raise DeadlinePassed(f"{what}: no time left before the deadline (HTTP_TIMEOUT)")
    return left
