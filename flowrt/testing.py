"""Testing workflows that wait, and resuming: a fake clock and simulated crashes.

- :class:`FakeClock`: give it to a runtime (``Runtime(clock=FakeClock())``) and timers,
  signal timeouts, schedules and due times follow it: ``clock.advance(3600)`` makes an
  hour pass at once, without sleeping.
- :func:`crash_at`: inside ``with crash_at("charge"):``, a durable run stops as if its
  process died right after node ``charge``'s end reached the store -- nothing after that
  is recorded, the run is left "running" with a holder that counts as dead -- and
  ``rt.run`` raises :class:`Crash`. Running it again with the same ``run_id`` resumes
  it from there, as a restarted process would.
- :func:`check_resume`: runs a workflow once without a crash, then once per node
  boundary crashing there and resuming, and checks that every resumed run ends with the
  same statuses and outputs.

>>> import anyio, flowrt
>>> from flowrt.testing import FakeClock
>>> clock = FakeClock(1000.0)
>>> clock.advance(60); clock.now()
1060.0
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from .durable._run import CRASH_AT, Crash
from .durable._store import CRASHED

if TYPE_CHECKING:
    from .workflow import Workflow

__all__ = ["Crash", "FakeClock", "check_resume", "crash_at"]


class FakeClock:
    """A clock that moves only when told: :meth:`advance` and :meth:`set`.

    ``now()`` is the fake time (seconds since the epoch; 2024-01-01 by default), and
    ``sleep_until(t)`` returns once the fake time reaches ``t``. Use it from the event
    loop that runs the runtime (``advance`` wakes the sleepers there).

    Args:
        start: the time it starts at, seconds since the epoch.
    """

    def __init__(self, start: float = 1_704_067_200.0) -> None:
        self._now = float(start)
        self._moved: anyio.Event | None = None

    def now(self) -> float:
        """The fake time."""
        return self._now

    async def sleep_until(self, when: float) -> None:
        """Wait until the fake time is ``when`` or later."""
        while self._now < when:
            if self._moved is None:
                self._moved = anyio.Event()
            await self._moved.wait()

    def advance(self, seconds: float) -> None:
        """Move the time ``seconds`` forward and wake what it makes due.

        Raises:
            ValueError: ``seconds`` is negative (the time never goes back).
        """
        if seconds < 0:
            raise ValueError(f"a FakeClock never goes back, got advance({seconds!r})")
        self.set(self._now + seconds)

    def set(self, when: float) -> None:
        """Move the time to ``when`` (not before now) and wake what it makes due.

        Raises:
            ValueError: ``when`` is before the current fake time.
        """
        if when < self._now:
            raise ValueError(f"a FakeClock never goes back: it is {self._now}, got {when}")
        self._now = float(when)
        moved, self._moved = self._moved, None
        if moved is not None:
            moved.set()

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"


@contextlib.contextmanager
def crash_at(node: str, *, on: str = "end") -> Iterator[None]:
    """Crash the durable runs started inside the block right after ``node``'s record
    reaches the store (``on="end"``: it ended, however; ``on="wait"``: a wait node
    started waiting, its due time recorded; ``on="compensated"``: a rollback's
    compensation of the node ended, however).

    The run stops where it is: nodes running then are abandoned, and nothing more is
    written -- no node ends, no final status; its lease is left to a holder that counts
    as dead, so that running it again resumes it at once. ``rt.run`` raises
    :class:`Crash`. A run that never reaches ``node`` ends as usual.

    Args:
        node: the node's name.
        on: ``"end"``, ``"wait"`` or ``"compensated"``.

    Raises:
        ValueError: ``on`` is neither.
    """
    if on not in ("end", "wait", "compensated"):
        raise ValueError(f"on= is 'end', 'wait' or 'compensated', got {on!r}")
    token = CRASH_AT.set((node, on))
    try:
        yield
    finally:
        CRASH_AT.reset(token)


def mark_crashed(lease_token: str) -> None:
    """The holder with ``lease_token`` died (a simulated crash): its lease is stale."""
    CRASHED.add(lease_token)


async def check_resume(workflow: Workflow, inputs: Mapping[str, Any] | None = None, *,
                       nodes: list[str] | None = None, **options: Any) -> dict[str, Any]:
    """Check that a run resumed from every node boundary ends as a run without a crash.

    Runs ``workflow`` once in a fresh :class:`~flowrt.MemoryStore`; then, for each node
    (``nodes``, default: all of them, in order), a fresh run that crashes right after
    that node's end is recorded (:func:`crash_at`) and is resumed; the resumed run's
    node statuses and outputs must equal the first run's. ``options`` are run options.

    Returns:
        The node statuses and outputs every run ended with.

    Raises:
        AssertionError: a resumed run ended otherwise (naming the crash point and what
            differs).
    """
    from .durable import MemoryStore
    from .runtime import Runtime

    def picture(result: Any) -> dict[str, Any]:
        return {"status": str(result.status),
                "nodes": {n: str(r.status) for n, r in result.nodes.items()},
                "outputs": dict(result.outputs)}

    async with Runtime(store=MemoryStore()) as rt:
        expected = picture(await rt.run(workflow, inputs, run_id="reference", **options))
    for name in nodes if nodes is not None else list(workflow):
        async with Runtime(store=MemoryStore()) as rt:
            crashed = False
            try:
                with crash_at(name):
                    await rt.run(workflow, inputs, run_id="r", **options)
            except Crash:
                crashed = True
            resumed = picture(await rt.run(workflow, None if crashed else inputs,
                                           run_id="r", **options))
        if resumed != expected:
            raise AssertionError(f"resumed after a crash at {name!r}, the run ended "
                                 f"{resumed}, not {expected}")
    return expected
