"""``Plan``: a workflow compiled to flat integer arrays, validated and immutable.

Node ``i`` is the ``i``-th node added. Its dependencies are
``pred_idx[pred_ptr[i]:pred_ptr[i + 1]]`` and its dependents
``succ_idx[succ_ptr[i]:succ_ptr[i + 1]]`` (CSR, compressed sparse rows). The runtime
reads only these arrays and a few per-node byte arrays: no object per node, no dict of
objects on the hot path. The integer arrays are Python lists, not ``array.array``:
indexing a list hands back an int object that already exists, while indexing an
``array`` builds a new one every time (see docs/decisions/002-incremental-compilation.md).

Compilation is one pass over the nodes to resolve names to ids and bind parameters,
then Kahn's algorithm for the order, the levels, and -- when nodes are left over --
the cycle they hide.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Container, Iterator, Sequence
from functools import cached_property
from itertools import accumulate, chain
from operator import add, itemgetter, sub
from typing import TYPE_CHECKING, Any, Final

from .errors import CycleError, GraphError, UnknownNodeError
from .intern import Interner

if TYPE_CHECKING:
    from .graph import NodeSpec, Signature, Workflow

__all__ = ["Plan", "compile_plan"]

# Kinds of keyword binding, in Plan.kwargs[i] = ((param, kind, source), ...).
BIND_NODE: Final = 0  # source: node id
BIND_INPUT: Final = 1  # source: run input name (required)
BIND_OPTIONAL: Final = 2  # source: run input name (the default applies when absent)
BIND_CONTEXT: Final = 3  # source: None

# Plan.mode[i]: how node i is called.
MODE_ASYNC: Final = 0  # a coroutine function, awaited in the loop
MODE_SYNC: Final = 1  # a sync function; where it runs is the run's/node's executor


class Plan:
    """A compiled workflow. Build one with :meth:`flowrt.Workflow.compile`.

    Per node ``i``: ``fns[i]`` the callable; ``mode[i]`` async or sync; the first
    ``nargs[i]`` dependencies in ``pred_idx[pred_ptr[i]:]`` are its positional
    arguments, in order; ``kwargs[i]`` binds its named parameters (None when it has
    none to bind). A dependency listed twice (say, as an argument and in ``after=``) is
    an edge twice; the runtime counts both, which keeps every count consistent.
    """

    def __init__(
        self,
        workflow: str,
        specs: tuple[NodeSpec, ...],
        interner: Interner,
        pred_ptr: list[int],
        pred_idx: list[int],
        succ_ptr: list[int],
        succ_idx: list[int],
        nargs: list[int],
        kwargs: list[tuple[tuple[str, int, Any], ...] | None],
        mode: bytearray,
        order: Sequence[int],
        custom: list[int],
        required_inputs: dict[str, list[str]],
        optional_inputs: dict[str, list[str]],
    ) -> None:
        n = len(specs)
        self.workflow = workflow
        self.specs = specs
        self.interner = interner
        #: node name -> id
        self.index: dict[str, int] = interner._ids
        self.names: tuple[str, ...] = tuple(interner._keys)
        self.fns: list[Callable[..., Any]] = list(map(itemgetter(1), specs))
        self.pred_ptr = pred_ptr
        self.pred_idx = pred_idx
        self.nargs = nargs
        self.kwargs = kwargs
        self.mode = mode
        #: node ids in a topological order
        self.order = order
        self.succ_ptr = succ_ptr
        self.succ_idx = succ_idx
        self._required = required_inputs
        self._optional = optional_inputs
        # Options flattened to what the runtime checks per node; only the nodes with
        # non-default options (``custom``) are visited.
        self.attempts = [1] * n
        self.trigger = bytearray(n)
        self.limit_of = [-1] * n
        #: 1 for nodes with a retry, timeout or executor: the runtime's slow path
        self.special = bytearray(n)
        limit_names: dict[str, int] = {}
        for i in custom:
            o = specs[i].options
            self.attempts[i] = o.attempts
            self.trigger[i] = o.trigger.code
            if o.limit is not None:
                self.limit_of[i] = limit_names.setdefault(o.limit, len(limit_names))
            if o.retry is not None or o.timeout is not None or o.executor is not None:
                self.special[i] = 1
        #: the distinct limit names nodes use; ``limit_of[i]`` indexes it (-1: none)
        self.limit_names: tuple[str, ...] = tuple(limit_names)

    # -- reading --------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.specs)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.index

    def __repr__(self) -> str:
        return f"<Plan {self.workflow!r}: {len(self)} nodes, {len(self.pred_idx)} edges>"

    @property
    def required_inputs(self) -> tuple[str, ...]:
        """Run inputs without which the workflow cannot run."""
        return tuple(self._required)

    @property
    def optional_inputs(self) -> tuple[str, ...]:
        """Run inputs that fill parameters with defaults when given."""
        return tuple(self._optional)

    def input_users(self, name: str) -> list[str]:
        """The nodes that take run input ``name`` (with or without a default), in node order."""
        users = {*self._required.get(name, ()), *self._optional.get(name, ())}
        return sorted(users, key=self.index.__getitem__)

    def missing_inputs(self, given: Container[str]) -> dict[str, list[str]]:
        """Required inputs absent from ``given``, with the nodes that need them."""
        return {k: v for k, v in self._required.items() if k not in given}

    def deps(self, name: str) -> list[str]:
        """Names of the direct dependencies of node ``name`` (each once)."""
        i = self.index[name]
        names = self.names
        ids = self.pred_idx[self.pred_ptr[i] : self.pred_ptr[i + 1]]
        return [names[j] for j in dict.fromkeys(ids)]

    def dependents(self, name: str) -> list[str]:
        """Names of the nodes that depend directly on node ``name`` (each once)."""
        i = self.index[name]
        names = self.names
        ids = self.succ_idx[self.succ_ptr[i] : self.succ_ptr[i + 1]]
        return [names[j] for j in dict.fromkeys(ids)]

    def edges(self) -> Iterator[tuple[str, str]]:
        """Every ``(dependency, dependent)`` pair, each once."""
        for name in self.names:
            for dep in self.deps(name):
                yield dep, name

    def topological(self) -> list[str]:
        """Node names in a topological order (each after all its dependencies)."""
        names = self.names
        return [names[i] for i in self.order]

    @cached_property
    def indegree(self) -> list[int]:
        """Per node, how many dependencies it has (edges, duplicates counted)."""
        ptr = self.pred_ptr
        return list(map(sub, ptr[1:], ptr))

    @cached_property
    def levels(self) -> list[int]:
        """Per node, the length of the longest dependency chain above it (roots: 0)."""
        levels = [0] * len(self)
        ptr, idx = self.pred_ptr, self.pred_idx
        for i in self.order:
            a, b = ptr[i], ptr[i + 1]
            if a != b:
                levels[i] = max([levels[j] for j in idx[a:b]]) + 1
        return levels

    @property
    def depth(self) -> int:
        """How many levels the graph has (0 for an empty plan)."""
        return max(self.levels) + 1 if len(self) else 0

    def level(self, name: str) -> int:
        """Length of the longest dependency chain above node ``name`` (roots are 0)."""
        return self.levels[self.index[name]]

    @cached_property
    def fingerprint(self) -> str:
        """A hash of the structure: node names, edges, parameter bindings and options.

        Two plans with the same fingerprint run the same graph; a durable store uses it
        to refuse resuming a run with a changed workflow.
        """
        # By names, in name order: the order nodes were added in does not matter.
        h = hashlib.sha256()
        names, ptr, idx = self.names, self.pred_ptr, self.pred_idx
        for name in sorted(names):
            i = self.index[name]
            o = self.specs[i].options
            deps = [names[j] for j in idx[ptr[i] : ptr[i + 1]]]
            args = deps[: self.nargs[i]]
            bound = sorted((p, kind, names[src] if kind == BIND_NODE else src)
                           for p, kind, src in (self.kwargs[i] or ()))
            h.update(repr((name, args, sorted(deps), bound, o.attempts, o.timeout, o.limit,
                           str(o.trigger))).encode())
        return h.hexdigest()[:32]

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description of the structure: node -> its dependencies."""
        return {"workflow": self.workflow, "nodes": self.structure}

    @cached_property
    def structure(self) -> dict[str, list[str]]:
        """Node -> the names of its dependencies (computed once; do not modify)."""
        return {n: self.deps(n) for n in self.names}

    @cached_property
    def structure_json(self) -> str:
        """:attr:`structure` as JSON (what a store keeps; computed once)."""
        import json

        return json.dumps(self.structure, separators=(",", ":"))


def compile_plan(wf: Workflow) -> Plan:
    """Compile ``wf``; see :meth:`flowrt.Workflow.compile`.

    Most of the work happened as nodes were added (``Workflow.add``): ids, resolved
    dependencies, dependents, in an order that is already topological. Here parameters
    are bound by name, and -- only when a dependency was added after its dependent, or
    a parameter named a node -- the lists are rebuilt and sorted (Kahn's algorithm).
    """
    specs = tuple(wf._specs)
    n = len(specs)
    index = wf._index
    kwargs: list[tuple[tuple[str, int, Any], ...] | None] = [None] * n
    required: dict[str, list[str]] = {}
    optional: dict[str, list[str]] = {}
    named: dict[int, list[int]] = {}  # node -> dependencies found by parameter name
    for i in wf._open:
        spec = specs[i]
        found: list[int] = []
        bound = _bind_named(spec, wf._signature(spec.fn), index, found, required, optional)
        if bound:
            kwargs[i] = bound
        if found:
            named[i] = found

    # Dependencies per node as added: positional deps, then after= (in this order).
    nargs = list(map(len, map(itemgetter(2), specs)))
    counts = (list(map(add, nargs, map(len, map(itemgetter(4), specs)))) if wf._any_after
              else nargs)
    order: Sequence[int]
    if not wf._deferred and not named:
        # Every dependency was resolved when its dependent was added, so it came first:
        # insertion order is topological and there can be no cycle.
        ptr = list(accumulate(counts, initial=0))
        idx = wf._preds.copy()
        succ = wf._succ
        order = range(n)
    else:
        if not wf._deferred:
            pred_ptr = list(accumulate(counts, initial=0))
            pred_idx = wf._preds
        lists: list[list[int]] = []
        for i, spec in enumerate(specs):
            if wf._deferred:
                ids = [_resolve(wf, spec, a, index) for a in spec.args]
                for a in spec.after:
                    j = index.get(a)
                    if j is None:
                        raise UnknownNodeError(spec.name, a, "runs after")
                    ids.append(j)
            else:
                ids = pred_idx[pred_ptr[i] : pred_ptr[i + 1]]
            if i in named:
                ids += named[i]
            lists.append(ids)
        ptr = list(accumulate(map(len, lists), initial=0))
        idx = list(chain.from_iterable(lists))
        succ = [[] for _ in range(n)]
        for i, ids in enumerate(lists):
            for j in ids:
                succ[j].append(i)
        order = _toposort(n, succ, ptr)
        if len(order) < n:
            raise CycleError(_find_cycle(n, ptr, idx, order, list(index)))
    succ_ptr = list(accumulate(map(len, succ), initial=0))
    succ_idx = list(chain.from_iterable(succ))
    # The plan takes the workflow's name index as it is; the workflow copies it before
    # changing it again (copy on write: compiling costs no copy of n names).
    interner = Interner.from_ids(index, copy=False)
    wf._index_shared = True
    return Plan(wf.name, specs, interner.freeze(), ptr, idx, succ_ptr, succ_idx, nargs, kwargs,
                _modes(wf, specs), order, wf._custom, required, optional)


def _modes(wf: Workflow, specs: tuple[NodeSpec, ...]) -> bytearray:
    """Per node, MODE_ASYNC or MODE_SYNC (a C-speed map for hashable callables)."""
    sync = wf._sync
    try:
        return bytearray(map(sync.__getitem__, map(itemgetter(1), specs)))
    except (KeyError, TypeError):  # an unhashable callable
        return bytearray(0 if wf._signature(s.fn).is_async else 1 for s in specs)


def _resolve(wf: Workflow, spec: NodeSpec, ref: Any, index: dict[str, int]) -> int:
    """The id of a dependency given as a name or a node's function (the slow path)."""
    name = wf._name_of(ref)
    j = index.get(name)
    if j is None:
        raise UnknownNodeError(spec.name, name)
    return j


def _bind_named(
    spec: NodeSpec,
    sig: Signature,
    index: dict[str, int],
    preds: list[int],
    required: dict[str, list[str]],
    optional: dict[str, list[str]],
) -> tuple[tuple[str, int, Any], ...]:
    """Bind the parameters that positional deps left open; see the module docstring."""
    name = spec.name
    mapped = dict(spec.inputs) if spec.inputs else {}
    bound: list[tuple[str, int, Any]] = []
    for p in sig.params[min(len(spec.args), sig.positional) :]:
        source: Any
        src = mapped.pop(p.name, None)
        if src is not None:
            j = index.get(src)
            if j is None:
                raise UnknownNodeError(name, src, f"maps parameter {p.name!r} to")
            kind, source = BIND_NODE, j
        elif p.is_context:
            kind, source = BIND_CONTEXT, None
        elif p.name in index:
            kind, source = BIND_NODE, index[p.name]
        elif p.has_default:
            kind, source = BIND_OPTIONAL, p.name
        else:
            kind, source = BIND_INPUT, p.name
        if not p.keyword:
            if kind == BIND_OPTIONAL:
                continue  # positional-only with a default: leave it to the default
            raise GraphError(
                f"node {name!r}: positional-only parameter {p.name!r} cannot be filled by "
                "name; pass it with deps=[...]"
            )
        if kind == BIND_NODE:
            preds.append(int(source))
        elif kind == BIND_INPUT:
            required.setdefault(p.name, []).append(name)
        elif kind == BIND_OPTIONAL:
            optional.setdefault(p.name, []).append(name)
        bound.append((p.name, kind, source))
    if mapped:
        if not sig.varkw:
            raise GraphError(
                f"node {name!r}: inputs= names parameter {next(iter(mapped))!r}, which its "
                "function does not take"
            )
        for param, src in mapped.items():
            j = index.get(src)
            if j is None:
                raise UnknownNodeError(name, src, f"maps parameter {param!r} to")
            preds.append(j)
            bound.append((param, BIND_NODE, j))
    return tuple(bound)


def _toposort(n: int, succ: list[list[int]], pred_ptr: list[int]) -> list[int]:
    """Kahn's algorithm; the order it returns is short of ``n`` when there is a cycle."""
    indeg = [pred_ptr[i + 1] - pred_ptr[i] for i in range(n)]
    order = [i for i in range(n) if not indeg[i]]
    append = order.append
    for i in order:  # grows as it goes
        for j in succ[i]:
            d = indeg[j] - 1
            indeg[j] = d
            if not d:
                append(j)
    return order


def _find_cycle(
    n: int, pred_ptr: list[int], pred_idx: list[int], order: Sequence[int],
    names: Sequence[str],
) -> list[str]:
    """One cycle among the nodes Kahn's algorithm could not order.

    Each unordered node has an unordered dependency (else it would have been ordered),
    so walking from one to such a dependency must come back to a node already seen.
    """
    ordered = bytearray(n)
    for i in order:
        ordered[i] = 1
    i = ordered.index(0)
    seen: dict[int, int] = {}
    path: list[int] = []
    while i not in seen:
        seen[i] = len(path)
        path.append(i)
        i = next(j for j in pred_idx[pred_ptr[i] : pred_ptr[i + 1]] if not ordered[j])
    return [names[j] for j in [*path[seen[i]:], i]]
