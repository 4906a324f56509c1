"""The clock a runtime reads workflow time from: timers, signal timeouts, schedules.

Everything in flowrt that is about *when* in the world something should happen -- a
timer node's due time, a signal's timeout, the next slot of a schedule, when a queued
or parked run is due -- reads :meth:`Clock.now` and waits with :meth:`Clock.sleep_until`
on the runtime's clock (``Runtime(clock=...)``), so that tests drive time with
:class:`flowrt.testing.FakeClock` instead of sleeping. What measures the process itself
stays on real time: leases (a dead process does not care about a fake clock), node
``timeout=`` and retry backoff, run ``timeout=``, node durations.
docs/decisions/014-clock-and-schedules.md says why.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["Clock", "SystemClock"]

#: the longest a system clock sleep lasts before it looks at the time again, so that a
#: timer due in a week follows the wall clock when it is set (NTP, a suspended laptop)
_CHUNK = 60.0


@runtime_checkable
class Clock(Protocol):
    """Where a runtime reads the time of the world: wall-clock seconds since the epoch.

    ``now()`` must not block; ``sleep_until(when)`` returns once ``now() >= when`` (at
    once when it already is) and is cancelled like any anyio sleep.
    """

    def now(self) -> float:
        """The current time, seconds since the epoch."""
        ...

    async def sleep_until(self, when: float) -> None:
        """Return once the time is ``when`` or later."""
        ...


class SystemClock:
    """The real time (``time.time()``): the default clock of every runtime.

    >>> SystemClock().now() > 1.7e9
    True
    """

    def now(self) -> float:
        """``time.time()``."""
        return time.time()

    async def sleep_until(self, when: float) -> None:
        """Sleep until ``time.time() >= when``, in steps of at most a minute (so that the
        wall clock being set meanwhile is followed)."""
        while True:
            delay = when - time.time()
            if delay <= 0:
                return
            await anyio.sleep(min(delay, _CHUNK))

    def __repr__(self) -> str:
        return "SystemClock()"


#: the clock of runtimes given none
SYSTEM_CLOCK = SystemClock()
