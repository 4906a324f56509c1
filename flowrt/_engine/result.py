"""``RunResult``: what a run left behind, read through views built on access.

A result keeps the run's arrays (statuses, attempts, times, outputs) and builds
per-node objects only when asked: a 100,000-node run costs no 100,000 result objects.
"""

from __future__ import annotations

import dataclasses
import math
import traceback
from array import array
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .._types import BY_VALUE, RunStatus, Status
from ..errors import NodeFailed, NoOutput, WorkflowFailed, describe_error

if TYPE_CHECKING:
    from .._types import Event
    from ..data import WorkflowData
    from ..workflow import Plan
    from .mapping import ItemBoard

__all__ = ["ItemResult", "NodeResult", "RunMetrics", "RunResult", "jsonable"]


@attrs.frozen
class ItemResult:
    """One item of a mapped node: ``result.items(name)[i]``.

    ``index`` the item's place in the list, ``status`` the item's final status
    (PENDING for an item that never started, as when the run was cancelled before it),
    ``attempts`` the attempts started, ``error`` the
    exception of a failed item's last attempt, ``started``/``finished`` wall-clock
    times (None when unknown).
    """

    index: int
    status: Status
    attempts: int
    error: BaseException | None
    started: float | None = None
    finished: float | None = None

_COMPENSATED = Status.COMPENSATED.value
_COMPENSATION_FAILED = Status.COMPENSATION_FAILED.value


@attrs.frozen
class NodeResult:
    """One node of a finished run: ``result.nodes[name]``.

    ``name`` and ``status`` are the node's; ``attempts`` counts the attempts started
    (0 if the node never ran); ``error`` is the exception of a failed node's last
    attempt, else None. ``started``/``finished`` are wall-clock times (seconds since
    the epoch) of the node's first attempt start and its end; None when the node never
    ran or was not timed (metrics off or sampled out). ``duration`` is in seconds.
    ``restored`` is True for a node of a durable run that succeeded in an earlier start
    of the run and was read back from the store instead of running again.
    """

    name: str
    status: Status
    attempts: int
    error: BaseException | None
    started: float | None
    finished: float | None
    restored: bool = False

    @property
    def duration(self) -> float | None:
        """Seconds from the first attempt's start to the end, or None."""
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    def to_dict(self) -> dict[str, Any]:
        """The node as JSON-ready data: ``status``, ``attempts``, ``started``,
        ``finished``, ``duration``, ``error`` ("Type: message"), ``traceback`` and
        ``restored``."""
        error = tb = None
        if self.error is not None:
            e = self.error
            error = describe_error(e)
            tb = getattr(e, "traceback_text", None) or "".join(
                traceback.format_exception(type(e), e, e.__traceback__))
        return {"status": str(self.status), "attempts": self.attempts, "started": self.started,
                "finished": self.finished, "duration": self.duration, "error": error,
                "traceback": tb, "restored": self.restored}


@attrs.frozen
class RunMetrics:
    """Counts and times of a run: ``result.metrics``."""

    nodes: int  #: nodes in the workflow
    counts: Mapping[str, int]  #: nodes per final status
    attempts: int  #: attempts started, retries included
    retries: int  #: attempts after a first one
    wall_time: float  #: seconds from run start to run end
    timed_nodes: int  #: nodes with a duration (all, unless metrics were off or sampled)
    node_time_total: float  #: sum of the timed nodes' durations
    node_time_max: float  #: the longest timed node's duration

    @property
    def node_time_mean(self) -> float:
        """Mean duration of a timed node (0.0 when none was timed)."""
        return self.node_time_total / self.timed_nodes if self.timed_nodes else 0.0


class _Nodes(Mapping[str, NodeResult]):
    __slots__ = ("_r",)

    def __init__(self, result: RunResult) -> None:
        self._r = result

    def __getitem__(self, name: str | Callable[..., Any]) -> NodeResult:
        return self._r._node(self._r._id(name))

    def __iter__(self) -> Iterator[str]:
        return iter(self._r.plan.names)

    def __len__(self) -> int:
        return len(self._r.plan)


#: the statuses of nodes that have an output: succeeded, or read from the cache
_HAS_OUTPUT: frozenset[int] = frozenset({Status.SUCCEEDED, Status.CACHED})


class _Outputs(Mapping[str, Any]):
    __slots__ = ("_r",)

    def __init__(self, result: RunResult) -> None:
        self._r = result

    def __getitem__(self, name: str) -> Any:
        r = self._r
        i = r.plan.index.get(name)
        if i is None or r._board[i] not in _HAS_OUTPUT:
            raise KeyError(name)
        return r._values[i]

    def __iter__(self) -> Iterator[str]:
        names = self._r.plan.names
        board = self._r._board
        return (names[i] for i in range(len(board)) if board[i] in _HAS_OUTPUT)

    def __len__(self) -> int:
        board = self._r._board
        return board.count(Status.SUCCEEDED) + board.count(Status.CACHED)


class RunResult:
    """The outcome of one run.

    ``result["node"]`` is a succeeded node's output; it raises
    :class:`~flowrt.NodeFailed` for a failed node (the node's exception is the
    ``__cause__``) and :class:`~flowrt.NoOutput` for a skipped or cancelled one, and
    for one a rollback compensated (its effect was undone).
    """

    def __init__(
        self,
        *,
        plan: Plan,
        run_id: str,
        status: RunStatus,
        board: bytearray,
        values: list[Any],
        attempts: list[int],
        started: array[float],
        finished: array[float],
        timed: bytearray,
        errors: Mapping[int, BaseException],
        data: WorkflowData,
        wall_start: float,
        time_base: float,
        wall_time: float,
        hook_errors: list[tuple[Event, BaseException]] | None = None,
        restored: bytearray | None = None,
        items: Mapping[int, ItemBoard] | None = None,
    ) -> None:
        """Built by the engine (and by a store for a finished run), not by users.

        Per node ``i`` (plan order): ``board[i]`` its final status byte, ``values[i]`` its
        output, ``attempts[i]``, ``started[i]``/``finished[i]`` clock readings kept when
        ``timed[i]`` is 1 (``+ time_base`` makes them wall-clock times); ``errors`` by
        node id; ``restored[i]`` 1 for a node a durable run read back from its store.
        ``wall_start`` is the run's wall-clock start, ``wall_time`` its length.
        """
        self.plan = plan
        self.workflow = plan.workflow
        self.run_id = run_id
        self.status = status
        self._board = board
        self._values = values
        self._attempts = attempts
        self._started = started
        self._finished = finished
        self._errors = errors
        self._timed = timed
        self._time_base = time_base
        self.data = data
        #: wall-clock time the run started (seconds since the epoch)
        self.started = wall_start
        #: seconds the run took
        self.duration = wall_time
        #: ``(event, exception)`` for every time an ``on_event`` hook raised
        self.hook_errors = hook_errors or []
        #: per node, 1 when a durable run read it back from its store; None for a run
        #: without a store
        self._restored = restored
        self._items: Mapping[int, ItemBoard] = items if items is not None else {}

    # -- status ---------------------------------------------------------------------

    @property
    def ok(self) -> bool:
        """True when the run SUCCEEDED: no node failed and none was cancelled.

        Nodes skipped because their trigger rule did not hold (an alert under
        ``ONE_FAILED`` when nothing failed) leave a run ok, as in Airflow
        (docs/decisions/010-run-ok.md).
        """
        return self.status is RunStatus.SUCCEEDED

    def raise_for_status(self) -> RunResult:
        """Raise :class:`~flowrt.WorkflowFailed` (with every node error) unless ok."""
        if not self.ok:
            raise WorkflowFailed(self.workflow, str(self.status), self.errors)
        return self

    # -- nodes ----------------------------------------------------------------------

    def _id(self, name: str | Callable[..., Any]) -> int:
        """The id of node ``name``: a node's name, or its function as in ``deps=[fn]``."""
        if type(name) is not str:
            name = self.plan.name_of(name)
        i = self.plan.index.get(name)
        if i is None:
            raise KeyError(f"workflow {self.workflow!r} has no node {name!r}")
        return i

    def __getitem__(self, name: str | Callable[..., Any]) -> Any:
        i = self._id(name)
        name = self.plan.names[i]
        status = self._board[i]
        if status == Status.SUCCEEDED or status == Status.CACHED:
            return self._values[i]
        if status == Status.FAILED:
            error = self._errors[i]
            raise NodeFailed(name, error) from error
        raise NoOutput(name, str(Status(status)))

    def get(self, name: str | Callable[..., Any], default: Any = None) -> Any:
        """A succeeded node's output, or ``default`` (also for a name that is no node)."""
        try:
            return self[name]
        except LookupError:
            return default

    @property
    def outputs(self) -> Mapping[str, Any]:
        """Outputs of the succeeded nodes, by name."""
        return _Outputs(self)

    @property
    def nodes(self) -> Mapping[str, NodeResult]:
        """Every node's :class:`NodeResult`, by name."""
        return _Nodes(self)

    def _node(self, i: int) -> NodeResult:
        started = finished = None
        if self._timed[i] and self._attempts[i]:
            base = self._time_base
            started = self._started[i] + base
            if self._finished[i]:
                finished = self._finished[i] + base
        restored = self._restored is not None and self._restored[i] == 1
        return NodeResult(self.plan.names[i], BY_VALUE[self._board[i]], self._attempts[i],
                          self._errors.get(i), started, finished, restored)

    # -- saga compensation --
    @property
    def compensation(self) -> dict[str, Status]:
        """The nodes a rollback undid: name -> ``Status.COMPENSATED`` or
        ``Status.COMPENSATION_FAILED`` (``nodes[name].error`` says why), in node order;
        empty when nothing was compensated (docs/compensation.md). A mapped node that
        failed (or was cancelled) keeps that status while its succeeded items are
        undone: it is listed here by how its items' compensations went."""
        board = self._board
        undone: dict[int, int] = {}
        for i, items in self._items.items():
            if board[i] in (_COMPENSATED, _COMPENSATION_FAILED):
                continue
            if items.board.count(_COMPENSATION_FAILED):
                undone[i] = _COMPENSATION_FAILED
            elif items.board.count(_COMPENSATED):
                undone[i] = _COMPENSATED
        if not (undone or board.count(_COMPENSATED) or board.count(_COMPENSATION_FAILED)):
            return {}
        names = self.plan.names
        return {names[i]: BY_VALUE[undone.get(i, s)] for i, s in enumerate(board)
                if i in undone or s in (_COMPENSATED, _COMPENSATION_FAILED)}
    # -- end saga compensation --

    @property
    def errors(self) -> dict[str, BaseException]:
        """The exception of every failed node (and failed compensation), by name."""
        names = self.plan.names
        return {names[i]: e for i, e in self._errors.items()}

    def statuses(self) -> dict[str, Status]:
        """Every node's final status, by name."""
        names = self.plan.names
        return dict(zip(names, map(BY_VALUE.__getitem__, self._board), strict=True))

    def counts(self) -> dict[str, int]:
        """Nodes per status (statuses with none left out)."""
        board = self._board
        return {str(s): c for s in Status if (c := board.count(s))}

    @property
    def metrics(self) -> RunMetrics:
        """Counts and times of the run."""
        total = 0.0
        longest = 0.0
        timed = 0
        started, finished = self._started, self._finished
        for i in range(len(self._board)):
            if self._timed[i] and self._attempts[i] and finished[i]:
                d = finished[i] - started[i]
                total += d
                timed += 1
                if d > longest:
                    longest = d
        attempts = sum(self._attempts)
        ran = sum(1 for a in self._attempts if a)
        return RunMetrics(len(self._board), self.counts(), attempts, attempts - ran,
                          self.duration, timed, total, longest)

    # -- mapped nodes ---------------------------------------------------------------

    def items(self, name: str | Callable[..., Any]) -> list[ItemResult]:
        """The items of mapped node ``name``, by index: status, attempts, error, times.

        Empty when the node did not get to start its items (skipped, failed before,
        an empty list). After a resume it includes the items restored from the store.

        Raises:
            KeyError: no node ``name``.
            ValueError: ``name`` is not a mapped node.
        """
        i = self._id(name)
        if i not in self.plan.maps:
            raise ValueError(f"node {self.plan.names[i]!r} is not a mapped node "
                             "(result.items() is for nodes added with map=)")
        board = self._items.get(i)
        if board is None:
            return []
        errors = board.errors
        return [ItemResult(k, BY_VALUE[s], board.attempts[k], errors.get(k),
                           board.started[k] or None, board.finished[k] or None)
                for k, s in enumerate(board.board)]

    def item_counts(self, name: str) -> dict[str, int]:
        """Items of mapped node ``name`` per status name (empty when none ran)."""
        board = self._items.get(self._id(name))
        return {} if board is None else board.counts()

    def _item_counts(self) -> dict[str, dict[str, int]]:
        names = self.plan.names
        return {names[i]: board.counts() for i, board in self._items.items()}

    # -- export ---------------------------------------------------------------------

    def to_dict(self, *, outputs: bool = True) -> dict[str, Any]:
        """The run as JSON-ready data (what ``flowrt run --json`` prints).

        Keys: ``run_id``, ``workflow``, ``status``, ``ok``, ``started`` (wall-clock
        seconds since the epoch), ``finished``, ``duration``, ``node_count``, ``counts``
        (nodes per status), ``attempts``, ``retries``, ``nodes`` (name ->
        :meth:`NodeResult.to_dict` plus ``deps``, the node's dependencies, and ``wait``
        and ``due`` as a store gives them: what a wait node waits for; ``items``, a mapped
        node's items per status, else None; ``item_list``, its items by index as
        ``{"status", "attempts", "error"}``, else None) and, unless
        ``outputs=False``, ``outputs`` (the succeeded nodes' outputs; values JSON cannot
        hold become their ``repr``, see :func:`jsonable`). Stored runs have the same
        keys (:meth:`flowrt.StoredRun.to_dict`), so tools read either.
        """
        structure = self.plan.structure
        waits: dict[str, str] = getattr(self.plan, "waits", {})
        nodes = {}
        for name, node in self.nodes.items():
            entry = node.to_dict()
            entry["deps"] = list(structure[name])
            entry["due"] = None  # a wait node's due time is the store's
            entry["wait"] = waits.get(name)
            mapped = self.plan.index[name] in self.plan.maps
            entry["items"] = self.item_counts(name) if mapped else None
            entry["item_list"] = [
                {"status": str(it.status), "attempts": it.attempts,
                 "error": None if it.error is None
                 else f"{type(it.error).__name__}: {it.error}"}
                for it in self.items(name)] if mapped else None
            nodes[name] = entry
        metrics = self.metrics
        data: dict[str, Any] = {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "status": str(self.status),
            "ok": self.ok,
            "started": self.started,
            "finished": self.started + self.duration,
            "duration": self.duration,
            "node_count": len(self.plan),
            "counts": self.counts(),
            "attempts": metrics.attempts,
            "retries": metrics.retries,
            "nodes": nodes,
        }
        if outputs:
            data["outputs"] = {k: jsonable(v) for k, v in self.outputs.items()}
        return data

    def to_mermaid(self) -> str:
        """The workflow as a Mermaid flowchart, nodes coloured by their status."""
        from ..tools.viz import to_mermaid

        return to_mermaid(self.plan, self.statuses(), self._item_counts())

    def to_dot(self) -> str:
        """The workflow as a Graphviz digraph, nodes filled by their status."""
        from ..tools.viz import to_dot

        return to_dot(self.plan, self.statuses(), self._item_counts())

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts().items())
        return f"<RunResult {self.workflow!r} run={self.run_id} {self.status}: {counts}>"


def jsonable(value: Any) -> Any:
    """``value`` as data that :func:`json.dumps` takes: dicts, lists, tuples and sets are
    walked (keys made strings), dataclasses become dicts, bytes are decoded (invalid
    UTF-8 replaced); floats that JSON has no word for (``nan``, ``inf``), ints too long
    to write in decimal, and every other type become a string (their ``repr``)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        # Python refuses to write ints of more than 4,300 digits (sys.int_info)
        return value if value.bit_length() < 14_000 else f"<int of {value.bit_length()} bits>"
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    try:
        return repr(value)
    except Exception:  # a user's __repr__ that raises: still a JSON document
        return f"<{type(value).__qualname__} object>"
