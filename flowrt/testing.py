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
import difflib
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ._types import RunStatus
from .durable._run import CRASH_AT, Crash
from .durable._store import CRASHED
from .workflow._waits import SIGNAL, TIMER

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
                       nodes: list[str] | None = None,
                       signals: Mapping[str, Any] | None = None,
                       **options: Any) -> dict[str, Any]:
    """Check that a run resumed from every node boundary ends as a run without a crash.

    Runs ``workflow`` once in a fresh :class:`~flowrt.MemoryStore`; then, for each node
    (``nodes``, default: all of them, in order), a fresh run that crashes right after
    that node's end is recorded (:func:`crash_at`) and is resumed -- and, for a wait
    node, one more that crashes right after its wait is recorded (``on="wait"``); the
    resumed run's node statuses and outputs must equal the first run's. ``options`` are
    run options.

    Wait nodes are served as a test would serve them: the runs are parked
    (``park=True``) and, while one waits, each signal node waiting gets its payload
    from ``signals``, each approval node its payload from ``signals`` or else an
    approval (``{"approved": True, "by": "check_resume", "comment": None}``), and a
    timer fires: the runtime runs on a :class:`FakeClock`, moved to the timer's due
    time (nothing sleeps). Signals go first; the clock moves only when nothing but
    timers is left, so that a signal's timeout never fires.

    Args:
        workflow: the workflow.
        inputs: its run inputs.
        nodes: the crash points (node names), default every node.
        signals: signal (or approval) node name -> the payload it is sent.
        options: run options (``park`` excepted: the check parks its runs itself).

    Returns:
        The node statuses and outputs every run ended with.

    Raises:
        AssertionError: a resumed run ended otherwise (naming the crash point and what
            differs), or a run kept waiting with nothing left to send it.
        ValueError: a signal node has no payload in ``signals`` (naming it), a name in
            ``signals`` or ``nodes`` is no such node (naming the near match), or
            ``park`` was given.
    """
    from .durable import MemoryStore
    from .runtime import Runtime

    plan = workflow.compile()
    waits: dict[str, str] = plan.waits
    payloads = _wait_payloads(workflow.name, waits, signals)
    if "park" in options:
        raise ValueError("check_resume parks its runs itself (it sends their signals and "
                         "moves their clock): leave park= out")
    names = list(workflow) if nodes is None else list(nodes)
    for name in names:
        if name not in plan.index:
            raise ValueError(f"nodes=: workflow {workflow.name!r} has no node {name!r}"
                             + _near(name, plan.names))

    def picture(result: Any) -> dict[str, Any]:
        return {"status": str(result.status),
                "nodes": {n: str(r.status) for n, r in result.nodes.items()},
                "outputs": dict(result.outputs)}

    async def to_the_end(rt: Runtime, clock: FakeClock,
                         crash: tuple[str, str] | None) -> dict[str, Any]:
        """Run ``r`` until it ends, serving its waits; the starts before the first
        :class:`Crash` crash at ``crash`` (a node after a wait is reached in a later
        start), the later ones do not (a node run again would crash again)."""
        given = inputs
        for _ in range(2 * len(plan) + 2):  # each round ends a wait, or the crash
            armed = (crash_at(crash[0], on=crash[1]) if crash is not None
                     else contextlib.nullcontext())
            try:
                with armed:
                    result = await rt.run(workflow, given, run_id="r", park=True,
                                          **options)
            except Crash:
                crash = None  # resumed from the store from now on
            else:
                if not _waiting(result):
                    return picture(result)
                await _serve_waits(rt, clock, "r", payloads)
            given = None  # the run is in the store: it resumes with its stored inputs
        stored = rt.store.load("r") if rt.store is not None else None
        left = [w.node for w in stored.waits()] if stored is not None else []
        raise AssertionError(f"the run kept waiting (for {', '.join(map(repr, left))}) "
                             "although check_resume sent every signal and fired every timer")

    async def fresh(crash: tuple[str, str] | None) -> dict[str, Any]:
        clock = FakeClock()
        async with Runtime(store=MemoryStore(), clock=clock) as rt:
            return await to_the_end(rt, clock, crash)

    expected = await fresh(None)
    for name in names:
        points = ["end", "wait"] if name in waits else ["end"]
        for on in points:
            resumed = await fresh((name, on))
            if resumed != expected:
                where = f"{name!r}" + (" (as it began to wait)" if on == "wait" else "")
                raise AssertionError(f"resumed after a crash at {where}, the run ended "
                                     f"{resumed}, not {expected}")
    return expected


def _near(name: str, names: Iterable[str]) -> str:
    near = difflib.get_close_matches(name, list(names), n=1)
    return f"; did you mean {near[0]!r}?" if near else ""


def _wait_payloads(workflow: str, waits: Mapping[str, str],
                   signals: Mapping[str, Any] | None) -> dict[str, Any]:
    """The payload each signal and approval node of ``waits`` is sent; raises
    ``ValueError`` for a signal node without one or a name that is no such node."""
    given = dict(signals or {})
    takers = [n for n, kind in waits.items() if kind != TIMER]
    for name in given:
        if waits.get(name) in (None, TIMER):
            what = "a timer: it takes no signal" if name in waits else "no signal node"
            raise ValueError(f"signals=: {name!r} is {what} of workflow {workflow!r}"
                             + _near(name, takers)
                             + (f" (its signal and approval nodes: "
                                f"{', '.join(map(repr, takers))})" if takers else ""))
    missing = [n for n in takers if waits[n] == SIGNAL and n not in given]
    if missing:
        listed = ", ".join(f"{n!r}: ..." for n in missing)
        raise ValueError(f"check_resume cannot make up a payload for signal node"
                         f"{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(map(repr, missing))} of workflow {workflow!r}: pass "
                         f"signals={{{listed}}}")
    return {n: given.get(n, {"approved": True, "by": "check_resume", "comment": None})
            for n in takers}


def _waiting(result: Any) -> bool:
    return bool(result.status is RunStatus.WAITING)


async def _serve_waits(rt: Any, clock: FakeClock, run_id: str,
                       payloads: Mapping[str, Any]) -> None:
    """Send parked run ``run_id``'s waiting signal nodes their payload; when none
    waits for a signal, move ``clock`` to the first due timer."""
    stored = rt.store.load(run_id)
    waiting = stored.waits() if stored is not None else []
    sent = False
    for wait in waiting:
        if wait.kind != TIMER and not wait.signalled:
            await rt.signal(run_id, wait.node, payloads[wait.node],
                            id=f"check_resume:{wait.node}")
            sent = True
    if not sent:
        dues = [w.due for w in waiting if w.kind == TIMER and w.due is not None]
        if dues and min(dues) > clock.now():
            clock.set(min(dues))
