"""The state of one run, as the code around the engine sees it.

A run is a few arrays indexed by node id (:class:`RunState`). The supervisor changes
them; node invocation reads the outputs and inputs from them, a durable checkpoint reads
a node's attempts and times as it ends, and the :class:`~flowrt.RunResult` is built on
them when the run is over. Nothing outside the engine reads the supervisor itself.

What the supervisor calls as nodes end, when a durable store records the run, is the
:class:`Checkpoint` protocol (``flowrt.durable`` implements it).
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Protocol

from .._logging import logger

if TYPE_CHECKING:
    from ..data import WorkflowData
    from ..workflow import Plan, WaitSpec

__all__ = ["Checkpoint", "RunState", "Waiter", "clock"]

#: node times are readings of this clock (seconds); ``RunState.time_base`` makes them
#: wall-clock times
clock = time.perf_counter


#: the resources of a run that has none (one allocation fewer per run)
_NO_RESOURCES: Final[Mapping[str, Any]] = MappingProxyType({})


class RunState:
    """What one run is made of: its plan, inputs and data, and per-node arrays.

    Per node ``i``: ``board[i]`` its status byte (a :class:`~flowrt.Status` value);
    ``values[i]`` its output (the run's :class:`~flowrt.WorkflowData` slot ``i``);
    ``attempts[i]`` attempts started; ``started[i]``/``finished[i]`` the clock readings
    of its first attempt's start and of its end, kept when ``timed[i]`` is 1 (metrics on,
    or sampled in); ``errors`` the exception of each failed node, by id. ``time_base``
    turns a clock reading into a wall-clock time (``started[i] + time_base``); ``log``
    is the run's bound logger. ``resources`` are the run's resources (never stored);
    ``bindable`` is what fills a parameter that no node fills: the inputs and the
    resources (an input and a resource never share a name).
    """

    __slots__ = ("attempts", "bindable", "board", "data", "errors", "finished", "inputs",
                 "log", "plan", "resources", "run_id", "started", "time_base", "timed",
                 "values")

    def __init__(self, *, plan: Plan, run_id: str, inputs: Mapping[str, Any],
                 data: WorkflowData, metrics: bool | float,
                 resources: Mapping[str, Any] | None = None) -> None:
        n = len(plan)
        self.plan = plan
        self.run_id = run_id
        self.inputs = inputs
        self.resources: Mapping[str, Any] = resources or _NO_RESOURCES
        self.bindable: Mapping[str, Any] = {**resources, **inputs} if resources else inputs
        self.data = data
        self.values: list[Any] = data._values
        self.board: bytearray = data.statuses.raw
        self.attempts = [0] * n
        self.started = array("d", bytes(8 * n))
        self.finished = array("d", bytes(8 * n))
        self.timed = _timed_nodes(n, metrics)
        self.errors: dict[int, BaseException] = {}
        self.time_base = time.time() - clock()
        self.log: Any = logger().bind(workflow=plan.workflow, run_id=run_id)

    def times(self, node: int) -> tuple[float | None, float | None]:
        """Wall-clock start and end of ``node`` (None when not timed, not run or not over)."""
        if not self.timed[node] or not self.attempts[node]:
            return None, None
        base = self.time_base
        finished = self.finished[node]
        return self.started[node] + base, (finished + base) if finished else None


class Checkpoint(Protocol):
    """Where a durable run records its nodes as they end (called by the supervisor).

    :meth:`succeeded` is called before the success is visible to anything else, and may
    refuse it: a :class:`~flowrt.SerializationError` fails the node (not retried).
    :meth:`ended` records a failure, a skip or a cancellation. Both are called in the
    event loop and must not block it.
    """

    def succeeded(self, node: int, value: Any, cached: bool = False) -> None:
        """``node`` succeeded with ``value`` (``cached``: read from the cache)."""

    def ended(self, node: int, status: int, error: BaseException | None) -> None:
        """``node`` failed, was skipped or cancelled."""

    # -- saga compensation --
    async def rolling_back(self, nodes: list[int]) -> bool:
        """A rollback of the run starts and will compensate ``nodes``: make that
        durable before the first compensation runs (their outcomes then come through
        :meth:`ended`, as COMPENSATED or COMPENSATION_FAILED). False when the store
        cannot record it (the run's lease is lost, a write failed): no rollback then,
        as nothing of it could be recorded."""
        ...

    def writable(self) -> bool:
        """Whether the run can still record anything (a rollback stops when it cannot:
        what it did next would not be recorded, so a resume would do it again)."""
        ...

    # -- the items of mapped nodes (docs/mapping.md) ------------------------------------

    def items_listed(self, node: int, count: int) -> None:
        """Mapped ``node`` has ``count`` items: called before its first item starts."""

    def item_succeeded(self, node: int, item: int, value: Any, attempts: int,
                       started: float | None, finished: float | None,
                       cached: bool = False) -> None:
        """Item ``item`` of mapped ``node`` returned ``value`` (may refuse it with
        :class:`~flowrt.SerializationError`, which fails the item). Times are wall-clock.
        ``cached``: the output came from the cache (the item ended CACHED)."""

    def item_ended(self, node: int, item: int, status: int, error: BaseException | None,
                   attempts: int, started: float | None, finished: float | None) -> None:
        """Item ``item`` of mapped ``node`` failed, was skipped or cancelled."""


class Waiter(Protocol):
    """Where the wait nodes of one run wait (called by the supervisor).

    Without a store the runtime's in-process one (:class:`flowrt._engine.waits.Inbox`):
    signals come through ``rt.signal`` in this process. With a store,
    ``flowrt.durable``'s: the wait and its due time are recorded, and signals are read
    from the store. Both read the time on the runtime's clock.
    """

    def wake(self) -> None:
        """A signal may have come for the run (``rt.signal`` in this process): look
        again now. Called in the event loop."""
        ...

    def begin(self, node: int, spec: WaitSpec) -> float | None:
        """Wait node ``node`` begins waiting: record it; return when it is due (a timer
        fires, a signal times out) on the runtime's clock, or None (no limit)."""
        ...

    async def signal(self, node: int, due: float | None,
                     idle: Callable[[], object]) -> tuple[bool, Any]:
        """``(True, payload)`` of the first signal sent under signal node ``node``'s
        name, waiting for it until the clock reads ``due``; ``(False, None)`` when
        ``due`` came first. Calls ``idle()`` once, when it finds no signal and goes to
        sleep (the supervisor parks a run whose nodes all sleep so)."""
        ...


def _timed_nodes(n: int, metrics: bool | float) -> bytearray:
    """Per node, 1 when its attempts are timed: every node, none, or one in ``1/rate``."""
    if metrics is True:
        return bytearray(b"\x01") * n
    if metrics is False or n == 0:
        return bytearray(n)
    rate = float(metrics)
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"metrics must be True, False or a sampling rate in (0, 1], "
                         f"got {metrics!r}")
    every = max(1, round(1.0 / rate))
    timed = bytearray(n)
    timed[::every] = b"\x01" * len(range(0, n, every))
    return timed
