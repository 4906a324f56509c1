"""Mapped nodes: a node called once per item of a list known only when it runs.

A mapped node's attempt (:func:`run_map`) splits its mapped parameters into items and
runs them under an *item supervisor*: a :class:`~flowrt._engine.supervisor.Supervisor`
over an :class:`ItemPlan`, whose arrays (status board, attempts, times, output slots,
dependency counters) are allocated once, sized by the item count, when the list is
known. A waiting item is a few slots in those arrays: no task, no coroutine, no object
(docs/decisions/023-map-slabs.md). The item supervisor is the ordinary one, so every
node option works per item -- retries, timeout, limit, executor -- and so do
cancellation and ``fail_fast``; the run's limits are the item supervisor's limits
(items take the slots, the mapped node holds none), plus one of ``concurrency`` slots.

**Depth-first chains.** A map over a map's output (``B`` maps a parameter over ``A``)
whose other dependencies are final when ``A`` starts runs in ``A``'s item supervisor:
item ``i`` of ``B`` depends on item ``i`` of ``A`` alone, so it starts as soon as that
one is done. ``A``'s attempt returns when every item of the chain is final; ``B``'s
attempt then returns the outcome kept for it (see the decision record for why).

**Durable.** When the run has a checkpoint, each level's item count is recorded before
the first item starts, and each item's outcome as it ends; a resumed run restores the
items recorded as succeeded (:attr:`Supervisor.recorded_items`) and runs the others.
"""

from __future__ import annotations

import functools
import logging
import time
from array import array
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import anyio.lowlevel

from .._logging import is_enabled
from .._types import Event, EventKind, Status
from ..data._workflow_data import MISSING
from ..errors import MapError
from ..workflow._context import Context
from ..workflow._plan import BIND_CONTEXT, BIND_NODE
from . import cache as caching
from . import invoke as actor
from .limits import Limit
from .supervisor import Supervisor

if TYPE_CHECKING:
    from ..workflow import Plan
    from ..workflow._options import MapSpec, NodeOptions
    from .state import Checkpoint, RunState

__all__ = ["ItemBoard", "ItemPlan", "RecordedItems", "run_map"]

SUCCEEDED = Status.SUCCEEDED.value
FAILED = Status.FAILED.value
SKIPPED = Status.SKIPPED.value
CANCELLED = Status.CANCELLED.value
CACHED = Status.CACHED.value


class RecordedItems(NamedTuple):
    """What a durable run's store recorded of a mapped node's items (for a resume).

    ``listed``: the item count recorded before the first item started (None: none);
    ``succeeded``: item -> (output, attempts, wall-clock start, end) of the items that
    succeeded; ``ended``: item -> (status byte, attempts, error, start, end) of the
    others that reached a final status (the result reports them; they run again);
    ``cached``: the items of ``succeeded`` whose output came from the cache.
    """

    listed: int | None
    succeeded: dict[int, tuple[Any, int, float | None, float | None]]
    ended: dict[int, tuple[int, int, BaseException | None, float | None, float | None]]
    cached: frozenset[int] = frozenset()


class ItemBoard:
    """The items of one mapped node once it is over: per item its status byte,
    attempts, wall-clock start and end (0.0: unknown), and the errors of failed items.
    What :meth:`flowrt.RunResult.items` reads.

    ``outputs``: the items' outputs (MISSING for those without one), kept only for a
    node with ``compensate=`` (a rollback undoes each succeeded item with its output)."""

    __slots__ = ("attempts", "board", "errors", "finished", "outputs", "started")

    def __init__(self, board: bytes | bytearray, attempts: list[int], started: array[float],
                 finished: array[float], errors: dict[int, BaseException],
                 outputs: list[Any] | None = None) -> None:
        self.board = bytearray(board)  # a rollback changes it (COMPENSATED items)
        self.attempts = attempts
        self.started = started
        self.finished = finished
        self.errors = errors
        self.outputs = outputs

    def __len__(self) -> int:
        return len(self.board)

    def counts(self) -> dict[str, int]:
        """Items per status name (statuses with no item left out)."""
        return {str(s): self.board.count(s.value) for s in Status
                if self.board.count(s.value)}

    @classmethod
    def from_record(cls, recorded: RecordedItems, outputs: bool = False) -> ItemBoard:
        """The items of a mapped node restored whole from a store (``outputs``: with
        the outputs of the succeeded ones, for a node with ``compensate=``)."""
        n = recorded.listed or 0
        board = bytearray([Status.PENDING.value]) * n
        attempts = [0] * n
        started = array("d", bytes(8 * n))
        finished = array("d", bytes(8 * n))
        errors: dict[int, BaseException] = {}
        kept: list[Any] | None = [MISSING] * n if outputs else None
        for i, (value, tries, begin, end) in recorded.succeeded.items():
            if i < n:
                if kept is not None:
                    kept[i] = value
                board[i] = CACHED if i in recorded.cached else SUCCEEDED
                attempts[i] = tries
                started[i], finished[i] = begin or 0.0, end or 0.0
        for i, (status, tries, error, begin, end) in recorded.ended.items():
            if i < n and board[i] != SUCCEEDED and board[i] != CACHED:
                board[i], attempts[i] = status, tries
                started[i], finished[i] = begin or 0.0, end or 0.0
                if error is not None:
                    errors[i] = error
        return cls(board, attempts, started, finished, errors, kept)


class _Level:
    """One mapped node of a chain: how each of its items is called."""

    __slots__ = (
        "args",
        "columns",
        "context",
        "fn",
        "from_parent",
        "keys",
        "kw",
        "name",
        "node",
        "offset",
        "options",
        "parent",
        "spec",
    )

    def __init__(self, node: int, name: str, fn: Any, args: Any, kw: dict[str, Any],
                 columns: list[tuple[str, list[Any]]], spec: MapSpec, options: NodeOptions,
                 context: tuple[str, ...], parent: int, from_parent: str | None) -> None:
        self.node = node
        self.name = name
        self.fn = fn
        self.args = tuple(args)
        self.kw = kw
        self.columns = columns  # (param, its items) for the params mapped over a list
        self.spec = spec
        self.options = options
        self.context = context  # parameters that take a Context
        self.parent = parent  # the level whose item i feeds item i of this one (-1: none)
        self.from_parent = from_parent  # the parameter that takes it
        self.offset = 0  # this level's first item id in the item supervisor
        #: the items' cache keys (a cached mapped node: docs/caching.md), else None
        self.keys: caching.ItemKeys | None = None


class _Names:
    """``plan.names`` of an item plan: every item is named after its mapped node."""

    __slots__ = ("levels", "n")

    def __init__(self, levels: list[_Level], n: int) -> None:
        self.levels = levels
        self.n = n

    def __getitem__(self, item: int) -> str:
        return self.levels[item // self.n].name


class ItemPlan:
    """The plan an item supervisor runs: one entry per item of each map of a chain,
    in flat arrays built by list repetition (C speed, no per-item object).

    Item ``i`` of level ``k`` is ``k * n + i``; it depends on item ``i`` of its parent
    level (if any). It reads the attributes of :class:`~flowrt.workflow.Plan` that the
    supervisor reads.
    """

    def __init__(self, plan: Plan, levels: list[_Level], n: int) -> None:
        k = len(levels)
        total = k * n
        self.workflow = plan.workflow
        self.names = _Names(levels, n)
        self._options = [lvl.options for lvl in levels]
        self._n = n
        self.fns = _repeat([lvl.fn for lvl in levels], n)
        self.mode = bytearray()
        for lvl in levels:
            self.mode += bytes([plan.mode[lvl.node]]) * n
        self.special = bytearray(b"\x01") * total  # every item goes through _attempt
        self.slow = self.special
        self.trigger = bytearray(total)
        self.attempts = _repeat([o.attempts for o in self._options], n)
        self.limit_of = _repeat(list(range(k)), n)
        self.limit_names: tuple[str, ...] = ()
        self.nargs = [0] * total
        self.kwargs: list[Any] = [None] * total
        self.node_options: dict[int, Any] = {}
        self.maps: dict[int, Any] = {}
        self.item_limit_of: dict[int, int] = {}
        #: items of a cached mapped node are cached each on its own (the node is not)
        self.cached: bytearray | None = None
        if any(o.cache is not None for o in self._options):
            self.cached = bytearray()
            for o in self._options:
                self.cached += (b"\x01" if o.cache is not None else b"\x00") * n
        self.wait_specs: dict[int, Any] = {}  # items never wait
        # Dependencies: item i of a level with a parent depends on item i of the parent.
        indegree = []
        pred_ptr = [0]
        pred_idx: list[int] = []
        succ_lists: list[list[int]] = [[] for _ in range(k)]  # level -> child levels
        for j, lvl in enumerate(levels):
            if lvl.parent >= 0:
                succ_lists[lvl.parent].append(j)
        for lvl in levels:
            if lvl.parent < 0:
                indegree += [0] * n
                pred_ptr += [pred_ptr[-1]] * n
            else:
                indegree += [1] * n
                start = pred_ptr[-1]
                pred_ptr += range(start + 1, start + n + 1)
                pred_idx += range(lvl.parent * n, lvl.parent * n + n)
        succ_ptr = [0]
        succ_idx: list[int] = []
        for j in range(k):
            kids = succ_lists[j]
            start = succ_ptr[-1]
            if not kids:
                succ_ptr += [start] * n
                continue
            width = len(kids)
            succ_ptr += range(start + width, start + width * n + 1, width)
            for i in range(n):
                succ_idx += [c * n + i for c in kids]
        self.indegree = indegree
        #: items without a dependency: those of the levels that map over a list
        self.roots = [i for j, lvl in enumerate(levels) if lvl.parent < 0
                      for i in range(j * n, j * n + n)]
        # no branches among items (branches: design.md, "Control flow")
        self.branch = bytearray(total)
        self.has_branches = False
        self.pred_ptr = pred_ptr
        self.pred_idx = pred_idx
        self.succ_ptr = succ_ptr
        self.succ_idx = succ_idx
        self._total = total

    def options_of(self, item: int) -> NodeOptions:
        """The options of item ``item``: its mapped node's."""
        return self._options[item // self._n]

    def __len__(self) -> int:
        return self._total


def _repeat(values: list[Any], n: int) -> list[Any]:
    """``[values[0]] * n + [values[1]] * n + ...``"""
    out: list[Any] = []
    for v in values:
        out += [v] * n
    return out


class _ItemState:
    """The :class:`~flowrt._engine.state.RunState` fields an item supervisor uses."""

    __slots__ = ("attempts", "board", "data", "errors", "finished", "inputs", "log", "plan",
                 "run_id", "started", "time_base", "timed", "values")

    def __init__(self, parent: RunState, plan: ItemPlan, timed: int) -> None:
        total = len(plan)
        self.plan = plan
        self.run_id = parent.run_id
        self.inputs = parent.inputs
        self.data = parent.data
        self.values: list[Any] = [MISSING] * total
        self.board = bytearray(total)
        self.attempts = [0] * total
        self.started = array("d", bytes(8 * total))
        self.finished = array("d", bytes(8 * total))
        self.timed = bytearray([timed]) * total
        self.errors: dict[int, BaseException] = {}
        self.time_base = parent.time_base
        self.log = parent.log


class _ItemCheckpoint:
    """Tells the run's checkpoint about items as they end (the item supervisor's)."""

    __slots__ = ("chain", "checkpoint")

    def __init__(self, checkpoint: Checkpoint, chain: _Chain) -> None:
        self.checkpoint = checkpoint
        self.chain = chain

    def _times(self, item: int) -> tuple[float | None, float | None]:
        state = self.chain.state
        if not state.timed[item] or not state.attempts[item]:
            return None, None
        base = state.time_base
        finished = state.finished[item]
        return state.started[item] + base, (finished + base) if finished else None

    def succeeded(self, node: int, value: Any, cached: bool = False) -> None:
        # called for every item of a durable map: level_of() and _times() inlined
        chain = self.chain
        lvl = chain.levels[node // chain.n]
        state = chain.state
        attempts = state.attempts[node]
        started = finished = None
        if state.timed[node] and attempts:
            base = state.time_base
            started = state.started[node] + base
            end = state.finished[node]
            if end:
                finished = end + base
        self.checkpoint.item_succeeded(lvl.node, node - lvl.offset, value, attempts, started,
                                       finished, cached)

    def ended(self, node: int, status: int, error: BaseException | None) -> None:
        lvl = self.chain.level_of(node)
        started, finished = self._times(node)
        self.checkpoint.item_ended(lvl.node, node - lvl.offset, status, error,
                                   self.chain.state.attempts[node], started, finished)

    def items_listed(self, node: int, count: int) -> None:  # pragma: no cover - not called
        self.checkpoint.items_listed(node, count)

    def item_succeeded(self, *args: Any) -> None:  # pragma: no cover - no maps in maps
        raise NotImplementedError

    def item_ended(self, *args: Any) -> None:  # pragma: no cover - no maps in maps
        raise NotImplementedError

    # An item supervisor never rolls back: the run's compensations run in the parent's.
    async def rolling_back(self, nodes: list[int]) -> bool:  # pragma: no cover
        return await self.checkpoint.rolling_back(nodes)

    def writable(self) -> bool:
        return self.checkpoint.writable()


class ItemSupervisor(Supervisor):
    """The supervisor of the items of a chain of mapped nodes (one mapped node, mostly).

    The parent run's supervisor, limits, hooks and executor are its own; events are
    about the mapped node with the item's index (``event.item``).
    """

    def __init__(self, parent: Supervisor, chain: _Chain) -> None:
        # fail_fast stops the items at the first failure, unless failed items are
        # expected (partial=True: they give None)
        fail_fast = parent.fail_fast and not any(lvl.spec.partial for lvl in chain.levels)
        super().__init__(parent.shared, cast("RunState", chain.state), max_concurrency=None,
                         limits=None, fail_fast=fail_fast, timeout=None,
                         hooks=parent._hooks, executor=parent._executor,
                         cache=parent._cache, refresh=parent._refresh)
        self.chain = chain
        self.hook_errors = parent.hook_errors  # one list for the run
        self.log = parent.log
        self._log_nodes = parent._log_nodes
        self.log_runs = False  # the run's start and end are the parent's to log
        self.log_failures = is_enabled(self.log, logging.WARNING)
        self.trace = parent.trace
        # The run's limits, and one of `concurrency` slots per mapped node that has one.
        plan = parent.plan
        gates = []
        for lvl in chain.levels:
            own = parent._gates[plan.item_limit_of[lvl.node]]
            if lvl.spec.concurrency is not None:
                own = (*own, Limit(f"concurrency of {lvl.name!r}", lvl.spec.concurrency))
            gates.append(own)
        self._gates = gates
        self.limited = any(gates)
        # The common case -- one async map, no timeout, no Context, one mapped list --
        # calls a partial of the function with the item as its one keyword: measured
        # 6.75 -> 5.6 us per no-op item (perf/bench_maps.py, maps/noop-10000/map).
        self._direct: Any = None
        lvl = chain.levels[0]
        if (len(chain.levels) == 1 and not plan.mode[lvl.node] and lvl.options.timeout is None
                and not lvl.context and len(lvl.columns) == 1):
            self._direct = functools.partial(lvl.fn, *lvl.args, **lvl.kw)
            self._param, self._column = lvl.columns[0]

    def _plan_remote_outputs(self) -> bytearray | None:
        return None  # items' outputs come back: they make the mapped node's list

    def _cache_key(self, node: int) -> str:
        """An item's key: its mapped node's, called with the item's arguments."""
        chain = self.chain
        lvl = chain.level_of(node)
        keys = lvl.keys
        assert keys is not None  # set by _run_chain for the levels of a cached map
        item = node - lvl.offset
        args = {param: column[item] for param, column in lvl.columns}
        if lvl.from_parent is not None:
            args[lvl.from_parent] = self.values[chain.levels[lvl.parent].offset + item]
        return keys.key(args)

    def _attempt(self, node: int, args: Any, bound: Any) -> Any:
        direct = self._direct
        if direct is not None:
            return direct(**{self._param: self._column[node]})
        chain = self.chain
        lvl = chain.level_of(node)
        item = node - lvl.offset
        kw = lvl.kw.copy()
        for param, column in lvl.columns:
            kw[param] = column[item]
        if lvl.from_parent is not None:
            parent = chain.levels[lvl.parent]
            kw[lvl.from_parent] = self.values[parent.offset + item]
        for param in lvl.context:
            kw[param] = Context(self.plan.workflow, self.run_id, lvl.name,
                                self.attempts[node], self.state.data, item)
        return self._call(node, lvl.fn, lvl.args, kw)

    def emit(self, kind: EventKind, node: int, error: BaseException | None = None,
             status: str | None = None) -> None:
        """Log and pass on an item's event (the run's own events are the parent's)."""
        if node < 0:
            return
        lvl = self.chain.level_of(node)
        item = node - lvl.offset
        attempt = self.attempts[node]
        if self._log_nodes:
            self.log.debug(str(kind), node=lvl.name, item=item, attempt=attempt,
                           error=None if error is None else repr(error))
        if self._hooks:
            event = Event(kind, self.plan.workflow, self.run_id, lvl.name, attempt,
                          time.time(), error, status, item)
            self.pass_on(event)


class _Chain:
    """One or more mapped nodes run by one item supervisor (see the module docs)."""

    __slots__ = ("levels", "n", "outcomes", "state")

    def __init__(self, levels: list[_Level], n: int, state: _ItemState | None) -> None:
        self.levels = levels
        self.n = n
        self.state = cast("_ItemState", state)
        #: mapped node -> its output, or the exception it fails with
        self.outcomes: dict[int, tuple[bool, Any]] = {}

    def level_of(self, item: int) -> _Level:
        return self.levels[item // self.n]


async def run_map(sup: Supervisor, node: int, args: Any, kw: dict[str, Any]) -> Any:
    """The attempt of mapped ``node``: run its items and return the list of their outputs.

    Raises :class:`~flowrt.MapError` when the mapped parameters cannot be split into
    items (before any item starts), and the error of the first failed item (by index)
    when an item failed and the map is not ``partial``.
    """
    chain = sup.chains.pop(node, None)
    if chain is not None:  # it ran with the map it maps over: its outcome is kept
        return _outcome(chain, node)
    plan = sup.plan
    spec = plan.maps[node]
    name = plan.names[node]
    columns, n = _columns(name, spec, kw, plan, None)
    levels = [_level(sup, node, args, kw, columns, -1, None)]
    _chain_below(sup, levels, 0, n)
    chain = _Chain(levels, n, None)
    for lvl in levels[1:]:
        sup.chains[lvl.node] = chain
    await _run_chain(sup, chain)
    return _outcome(chain, node)


def _outcome(chain: _Chain, node: int) -> Any:
    ok, value = chain.outcomes[node]
    if ok:
        return value
    raise value


def _columns(name: str, spec: MapSpec, kw: dict[str, Any], plan: Plan,
             skip: str | None) -> tuple[list[tuple[str, list[Any]]], int]:
    """The mapped parameters' lists (but ``skip``'s) and the item count.

    Raises:
        MapError: a value is no list, the lengths differ, or there are too many items.
    """
    columns: list[tuple[str, list[Any]]] = []
    lengths: list[tuple[str, str, int]] = []
    for param, source in zip(spec.params, spec.sources, strict=True):
        if param == skip:
            continue
        value = kw[param]
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise MapError(f"node {name!r} maps parameter {param!r} over the output of "
                           f"{source!r}, which is a {type(value).__name__}, not a list")
        items = value if type(value) is list else list(value)
        columns.append((param, items))
        lengths.append((param, source, len(items)))
    counts = {length for _, _, length in lengths}
    if len(counts) > 1:
        listed = ", ".join(f"{p!r} ({n} items from {s!r})" for p, s, n in lengths)
        raise MapError(f"node {name!r} zips mapped parameters of different lengths: "
                       f"{listed}")
    n = counts.pop() if counts else 0
    if n > spec.max_items:
        raise MapError(f"node {name!r} maps over {n} items, more than its max_items="
                       f"{spec.max_items} (raise max_items= if that many is intended)")
    return columns, n


def _level(sup: Supervisor, node: int, args: Any, kw: dict[str, Any],
           columns: list[tuple[str, list[Any]]], parent: int,
           from_parent: str | None) -> _Level:
    plan = sup.plan
    spec = plan.maps[node]
    fixed = {k: v for k, v in kw.items() if k not in spec.params}
    context = tuple(p for p, kind, _ in plan.kwargs[node] or () if kind == BIND_CONTEXT)
    return _Level(node, plan.names[node], plan.fns[node], args, fixed, columns, spec,
                  plan.options_of(node), context, parent, from_parent)


def _chain_below(sup: Supervisor, levels: list[_Level], at: int, n: int) -> None:
    """Add to ``levels`` the maps over level ``at``'s output that can run depth-first
    with it: a PENDING mapped node with the default trigger, every other dependency
    of which succeeded already, taking the output only as one mapped parameter."""
    lvl = levels[at]
    if lvl.spec.partial:  # its failed items give None: the next map would run on them
        return
    plan = sup.plan
    node = lvl.node
    for s in dict.fromkeys(plan.succ_idx[plan.succ_ptr[node] : plan.succ_ptr[node + 1]]):
        spec = plan.maps.get(s)
        if spec is None or plan.trigger[s] or sup.board[s] != Status.PENDING.value:
            continue
        preds = plan.pred_idx[plan.pred_ptr[s] : plan.pred_ptr[s + 1]]
        edges = preds.count(node)
        if sup.remaining[s] != edges or sup.succeeded_deps(s) != len(preds) - edges:
            continue  # waits for another dependency too
        if node in preds[: plan.nargs[s]]:
            continue  # takes the whole list positionally
        from_node = [p for p, kind, src in plan.kwargs[s] or ()
                     if kind == BIND_NODE and src == node]
        if len(from_node) != 1 or from_node[0] not in spec.params:
            continue
        k = plan.pred_ptr[s]
        args = [sup.values[j] for j in plan.pred_idx[k : k + plan.nargs[s]]]
        bound = plan.kwargs[s]
        kw = actor.call_kwargs(sup.state, s, bound) if bound is not None else {}
        try:
            columns, count = _columns(plan.names[s], spec, kw, plan, from_node[0])
        except MapError:
            continue  # it fails on its own when it runs
        if (columns and count != n) or n > spec.max_items:
            continue
        levels.append(_level(sup, s, args, kw, columns, at, from_node[0]))
        _chain_below(sup, levels, len(levels) - 1, n)


async def _run_chain(sup: Supervisor, chain: _Chain) -> None:
    """Run the chain's items; set each mapped node's outcome."""
    levels, n = chain.levels, chain.n
    checkpoint = sup.checkpoint
    if n == 0:
        for lvl in levels:
            sup.items[lvl.node] = ItemBoard(b"", [], array("d"), array("d"), {})
            if checkpoint is not None:
                checkpoint.items_listed(lvl.node, 0)
            chain.outcomes[lvl.node] = (True, [])
        return
    for k, lvl in enumerate(levels):
        lvl.offset = k * n
    item_plan = ItemPlan(sup.plan, levels, n)
    chain.state = _ItemState(sup.state, item_plan, sup.timed[levels[0].node])
    if item_plan.cached is not None:
        for lvl in levels:
            if lvl.options.cache is not None:
                lvl.keys = _item_keys(sup, lvl)
    child = ItemSupervisor(sup, chain)
    for lvl in levels:
        recorded = sup.recorded_items.get(lvl.node)
        if recorded is not None and recorded.listed == n:
            for item, (value, attempts, started, finished) in recorded.succeeded.items():
                if item < n:
                    child.restore(lvl.offset + item, value, attempts, started, finished)
                    if item in recorded.cached:
                        child.board[lvl.offset + item] = CACHED
        if checkpoint is not None:
            checkpoint.items_listed(lvl.node, n)
    if checkpoint is not None:
        child.checkpoint = _ItemCheckpoint(checkpoint, chain)
    state = chain.state
    try:
        await child.run()
    finally:  # cancelled too: the result tells which items ran
        for lvl in levels:
            lo, hi = lvl.offset, lvl.offset + n
            sup.items[lvl.node] = ItemBoard(
                bytes(state.board[lo:hi]), state.attempts[lo:hi], _wall(state, lo, hi),
                _wall(state, lo, hi, end=True),
                {i - lo: e for i, e in state.errors.items() if lo <= i < hi},
                state.values[lo:hi] if lvl.options.compensate is not None else None)
    board = state.board
    if child.interrupted or (not child.stopped_by_failure and CANCELLED in board):
        # Stopped from outside: the run itself is being cancelled.
        await anyio.lowlevel.checkpoint()
        raise MapError("the items were cancelled")
    values = state.values
    for lvl in levels:
        lo, hi = lvl.offset, lvl.offset + n
        out = values[lo:hi]
        failed = [i for i in range(lo, hi) if board[i] != SUCCEEDED and board[i] != CACHED]
        if not failed:
            chain.outcomes[lvl.node] = (True, out)
        elif lvl.spec.partial and not child.stopped_by_failure:
            for i in failed:
                out[i - lo] = None
            chain.outcomes[lvl.node] = (True, out)
        else:
            chain.outcomes[lvl.node] = (False, _failure(lvl, state, failed, n))


def _item_keys(sup: Supervisor, lvl: _Level) -> caching.ItemKeys:
    """How the items of cached level ``lvl`` are keyed: the mapped node's arguments but
    its mapped parameters (never its Context or resources), and its cache spec."""
    specs = caching.specs_of(sup.plan)
    spec = specs.get(lvl.node)
    if spec is None:
        spec = specs[lvl.node] = caching.cache_spec(sup.plan, lvl.node)
    fixed = caching.arguments(sup.state, lvl.node, spec)
    for param in lvl.spec.params:
        fixed.pop(param, None)
    return caching.ItemKeys(lvl.name, spec, fixed)


def _failure(lvl: _Level, state: _ItemState, failed: list[int], n: int) -> BaseException:
    """The error a mapped node fails with: its first failed item's, noted."""
    errors = state.errors
    first = next((i for i in failed if i in errors), None)
    if first is None:  # its items were skipped: an item of the map it maps over failed
        return MapError(f"node {lvl.name!r}: {len(failed)} of {n} items did not run "
                        "(the items they map over failed)")
    error = errors[first]
    count = sum(1 for i in failed if i in errors)
    note = (f"item {first - lvl.offset} of mapped node {lvl.name!r} "
            f"({count} of {n} items failed; result.items({lvl.name!r}) lists them)")
    if note not in getattr(error, "__notes__", ()):
        error.add_note(note)
    return error


def _wall(state: _ItemState, lo: int, hi: int, end: bool = False) -> array[float]:
    """Wall-clock starts (or ends) of items ``lo:hi`` (0.0 where unknown)."""
    times = (state.finished if end else state.started)[lo:hi]
    base = state.time_base
    return array("d", [t + base if t else 0.0 for t in times])

