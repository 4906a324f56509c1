"""What the runs of one runtime share: limits, worker threads, executors, and each other.

A :class:`flowrt.Runtime` holds one :class:`Shared`; every run it starts is built on it
(:func:`flowrt._engine.run.prepare_run`). ``wf.run`` makes a runtime, so a :class:`Shared`,
for its one run.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, NamedTuple, cast

import anyio

from .._clock import SYSTEM_CLOCK, Clock
from .._types import BY_VALUE, Executor, ExecutorChoice
from ..executors import ProcessExecutor
from .limits import Limit

if TYPE_CHECKING:
    from .state import Waiter
    from .supervisor import Supervisor
    from .telemetry import Telemetry

__all__ = ["ActiveRun", "ExecutorChoice", "LimitUsage", "Shared"]

#: ``Shared.waiting`` until a run waits, ``owned`` until an executor is made from a
#: name, ``limits`` when there are none: empty, and a write raises (a runtime made for
#: one run allocates no dicts it does not use: docs/decisions/031-per-run-allocations.md)
_EMPTY: Final = cast("dict[str, Any]", MappingProxyType({}))


# -- introspection (Runtime.active, Runtime.limit_usage) --


class ActiveRun(NamedTuple):
    """A run in flight in a runtime, as :meth:`flowrt.Runtime.active` sees it now."""

    #: the run's id
    run_id: str
    #: the name of its workflow
    workflow: str
    #: wall-clock time the run started (seconds since the epoch)
    started: float
    #: nodes per status name (``{"succeeded": 3, "running": 1, "pending": 6}``), the
    #: statuses with none left out
    counts: dict[str, int]


class LimitUsage(NamedTuple):
    """A limit of a runtime now, as :meth:`flowrt.Runtime.limit_usage` sees it."""

    #: how many nodes may hold a slot at once
    capacity: int
    #: slots held by running nodes (of every run of the runtime)
    in_use: int
    #: nodes waiting for a slot
    waiting: int


class Shared:
    """Limits, worker threads and executors shared by runs, and the runs going on.

    ``max_concurrency`` caps the nodes running at once across the runs; ``limits`` maps a
    limit name to its capacity; ``threads`` caps the worker threads of sync nodes.
    Raises ``ValueError`` for a capacity that is not an int >= 1.
    """

    __slots__ = ("_idle", "_thread_limiter", "busy", "cap", "clock", "limits", "owned",
                 "runs", "stopping", "telemetry", "threads", "waiting")

    def __init__(self, *, max_concurrency: int | None = None,
                 limits: Mapping[str, int] | None = None, threads: int = 40,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.cap = (Limit("max_concurrency", max_concurrency)
                    if max_concurrency is not None else None)
        self.limits: dict[str, Limit] = (
            {name: Limit(name, k) for name, k in limits.items()} if limits else _EMPTY)
        self.threads = threads
        self._thread_limiter: anyio.CapacityLimiter | None = None
        #: executors made from a name (``executor="process"``): closed by :meth:`aclose`
        self.owned: dict[str, ProcessExecutor] = _EMPTY
        #: the supervisors of the runs going on now
        self.runs: set[Supervisor] = set()
        #: runs going on, from their first step (a store's claim) to their last write
        #: (see in_flight): the runtime closes its store only when none is left
        self.busy = 0
        self._idle: anyio.Event | None = None
        #: set by :meth:`stop_runs`: a run that starts now ends CANCELLED at once
        self.stopping = False
        #: OpenTelemetry, when the runtime has a tracer or meter provider (set as it opens)
        self.telemetry: Telemetry | None = None
        # -- waits (issue 14)
        #: where workflow time is read: timers, signal timeouts (``Runtime(clock=...)``)
        self.clock = clock
        #: run id -> the waiter of its wait nodes, while one of them waits: what
        #: ``rt.signal`` delivers to (no store) or wakes up (a store)
        self.waiting: dict[str, Waiter] = _EMPTY

    def open(self) -> None:
        """Ready for runs in the running event loop (again, after :meth:`aclose`)."""
        self._thread_limiter = None  # made at the first sync node (most runs have none)
        self.stopping = False

    def thread_limiter(self) -> anyio.CapacityLimiter:
        """The limiter of the worker threads (made on first use, in the running loop)."""
        if self._thread_limiter is None:
            self._thread_limiter = anyio.CapacityLimiter(self.threads)
        return self._thread_limiter

    def executor_for(self, where: str | Executor) -> Executor:
        """The executor object for an ``executor=`` value other than "thread" or "loop".

        Raises ``ValueError`` for an unknown name.
        """
        if not isinstance(where, str):
            return where
        executor = self.owned.get(where)
        if executor is None:
            if where != "process":
                raise ValueError(f"unknown executor {where!r}; expected 'loop', 'thread', "
                                 "'process' or an executor object")
            if self.owned is _EMPTY:
                self.owned = {}
            executor = self.owned[where] = ProcessExecutor()
        return executor

    def add_waiter(self, run_id: str, waiter: Waiter) -> None:
        """Run ``run_id`` has wait nodes: ``rt.signal`` finds them through ``waiter``."""
        if self.waiting is _EMPTY:
            self.waiting = {}
        self.waiting[run_id] = waiter

    def in_flight(self) -> Shared:
        """A block in which a run counts as going on (see :meth:`wait_idle`): the
        shared state itself, whose ``with`` counts the run (every run enters one: an
        object made per block would be one more allocation per run, a generator-based
        context manager a few microseconds more)."""
        return self

    def __enter__(self) -> None:
        self.busy += 1

    def __exit__(self, *exc: object) -> None:
        self.busy -= 1
        if not self.busy and self._idle is not None:
            self._idle.set()
            self._idle = None

    async def wait_idle(self) -> None:
        """Return when no run goes on."""
        while self.busy:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()

    def stop_runs(self) -> None:
        """Stop every run going on, and any that starts from now on: they end CANCELLED
        (a shutdown)."""
        self.stopping = True
        for sup in list(self.runs):
            sup.interrupt(shutdown=True)

    def active(self) -> list[ActiveRun]:
        """The runs going on now, oldest first."""
        runs = []
        for sup in self.runs:
            board = sup.board
            counts = {str(BY_VALUE[v]): c for v in range(len(BY_VALUE))
                      if (c := board.count(v))}
            runs.append(ActiveRun(sup.run_id, sup.plan.workflow, sup.wall_start, counts))
        runs.sort(key=lambda r: r.started)
        return runs

    def limit_usage(self) -> dict[str, LimitUsage]:
        """Each shared limit's use now, by name (``"max_concurrency"``: the cap)."""
        usage = {name: LimitUsage(lim.capacity, lim.in_use, len(lim.waiters))
                 for name, lim in self.limits.items()}
        if self.cap is not None:
            usage.setdefault("max_concurrency", LimitUsage(
                self.cap.capacity, self.cap.in_use, len(self.cap.waiters)))
        return usage

    def stop_run(self, run_id: str) -> bool:
        """Stop the run ``run_id`` going on here (it ends CANCELLED, as at its timeout);
        False when no such run goes on."""
        found = False
        for sup in list(self.runs):
            if sup.run_id == run_id:
                sup.interrupt()
                found = True
        return found

    async def aclose(self) -> None:
        """Close the executors made from a name (shielded from cancellation)."""
        if not self.owned:  # most runtimes made none: no cancel scope to open
            return
        with anyio.CancelScope(shield=True):
            owned = list(self.owned.values())
            self.owned = _EMPTY
            for executor in owned:
                await executor.aclose()
