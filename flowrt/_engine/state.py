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
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from .._logging import logger

if TYPE_CHECKING:
    from ..data import WorkflowData
    from ..workflow import Plan

__all__ = ["Checkpoint", "RunState", "clock"]

#: node times are readings of this clock (seconds); ``RunState.time_base`` makes them
#: wall-clock times
clock = time.perf_counter


class RunState:
    """What one run is made of: its plan, inputs and data, and per-node arrays.

    Per node ``i``: ``board[i]`` its status byte (a :class:`~flowrt.Status` value);
    ``values[i]`` its output (the run's :class:`~flowrt.WorkflowData` slot ``i``);
    ``attempts[i]`` attempts started; ``started[i]``/``finished[i]`` the clock readings
    of its first attempt's start and of its end, kept when ``timed[i]`` is 1 (metrics on,
    or sampled in); ``errors`` the exception of each failed node, by id. ``time_base``
    turns a clock reading into a wall-clock time (``started[i] + time_base``); ``log``
    is the run's bound logger.
    """

    __slots__ = ("attempts", "board", "data", "errors", "finished", "inputs", "log", "plan",
                 "run_id", "started", "time_base", "timed", "values")

    def __init__(self, *, plan: Plan, run_id: str, inputs: Mapping[str, Any],
                 data: WorkflowData, metrics: bool | float) -> None:
        n = len(plan)
        self.plan = plan
        self.run_id = run_id
        self.inputs = inputs
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

    def succeeded(self, node: int, value: Any) -> None: ...

    def ended(self, node: int, status: int, error: BaseException | None) -> None: ...

    # -- the items of mapped nodes (docs/mapping.md) ------------------------------------

    def items_listed(self, node: int, count: int) -> None:
        """Mapped ``node`` has ``count`` items: called before its first item starts."""

    def item_succeeded(self, node: int, item: int, value: Any, attempts: int,
                       started: float | None, finished: float | None) -> None:
        """Item ``item`` of mapped ``node`` returned ``value`` (may refuse it with
        :class:`~flowrt.SerializationError`, which fails the item). Times are wall-clock."""

    def item_ended(self, node: int, item: int, status: int, error: BaseException | None,
                   attempts: int, started: float | None, finished: float | None) -> None:
        """Item ``item`` of mapped ``node`` failed, was skipped or cancelled."""


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
