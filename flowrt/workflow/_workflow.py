"""Defining workflows: ``Workflow``, its nodes, and how their dependencies are inferred.

A workflow is a static DAG of named nodes; each node is a Python callable. Nodes are
added with the :meth:`Workflow.node` decorator or the :meth:`Workflow.add` builder.
How a node's parameters are filled is decided when the workflow is compiled (so nodes
may be added in any order):

1. positional ``deps=`` given to :meth:`Workflow.add` fill the first positional
   parameters, in order;
2. a parameter mapped by ``inputs=`` (or by a ``deps=`` mapping) receives the output of
   the node it names;
3. a parameter annotated :class:`~flowrt.Context` receives the context;
4. a parameter named after a node receives that node's output;
5. any other parameter is a *run input*: required if it has no default, optional
   (the default is used unless the run gives a value) if it has one.

:meth:`Workflow.compile` validates all of it and returns an immutable
:class:`~flowrt.workflow.Plan`, cached until the workflow changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, Unpack, overload

from .._types import Cache, Retry, Trigger
from ..errors import DuplicateNodeError, GraphError
from ._options import (
    DEFAULT_OPTIONS,
    MAP_KEYWORDS,
    NODE_KEYWORDS,
    MapSpec,
    NodeOptions,
    NodeSpec,
    map_spec,
    name_of,
    node_options,
)
from ._signature import Signature
from ._waits import APPROVAL, SIGNAL, TIMER, WaitSpec, wait_spec

if TYPE_CHECKING:
    from datetime import datetime, timedelta

    from .._engine.result import RunResult
    from ..durable import Store
    from ..runtime import RunOptions
    from ._plan import Plan

__all__ = ["Workflow"]

F = TypeVar("F", bound=Callable[..., Any])


class Workflow:
    """A named, static DAG of nodes.

    Args:
        name: the workflow's name, in results, events, logs and stores.

    Raises:
        ValueError: ``name`` is not a non-empty str.

    >>> wf = Workflow("hello")
    >>> @wf.node
    ... def greeting(name: str) -> str:
    ...     return f"hello {name}"
    >>> wf.run_sync({"name": "flowrt"})["greeting"]
    'hello flowrt'
    """

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a workflow's name must be a non-empty str, got {name!r}")
        self.name = name
        self._names_by_fn: dict[Any, str] = {}  # decorated function -> its node
        self._signatures: dict[Any, Signature] = {}  # analysed once per callable
        self._sync: dict[Any, int] = {}  # callable -> 1 if sync, 0 if async
        self._clear()

    def _clear(self) -> None:
        # A node is a few entries in flat, parallel lists, not an object: adding one is
        # the hot path of generated graphs. compile() resolves the names and builds the
        # plan's arrays in bulk; NodeSpec objects are built only when asked for (nodes).
        # See docs/decisions/002-bulk-compilation.md.
        self._index: dict[str, int] = {}  # node name -> id, in order of addition
        self._index_shared = False  # a compiled plan uses _index: copy it before changing
        self._fns: list[Callable[..., Any]] = []  # node id -> its callable
        self._nargs: list[int] = []  # node id -> how many positional deps it has
        self._arg_refs: list[Any] = []  # every node's positional deps, flat, in node order
        self._after: dict[int, tuple[str, ...]] = {}  # node id -> after= names (sparse)
        self._inputs: dict[int, dict[str, str]] = {}  # node id -> inputs= mapping (sparse)
        self._options: dict[int, NodeOptions] = {}  # node id -> non-default options (sparse)
        self._maps: dict[int, MapSpec] = {}  # node id -> how it fans out (mapped nodes only)
        self._open: list[int] = []  # nodes with named parameters to bind at compile
        self._spec_list: list[NodeSpec] = []  # NodeSpecs built so far, by node id
        self._spec_refs = 0  # how far into _arg_refs _spec_list has read
        self._waits: dict[int, WaitSpec] = {}  # node id -> what a wait node waits for
        self._plan: Plan | None = None

    # -- defining -------------------------------------------------------------------

    @overload
    def node(self, fn: F, /) -> F: ...
    @overload
    def node(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        after: Sequence[str | Callable[..., Any]] = (),
        inputs: Mapping[str, str | Callable[..., Any]] | None = None,
        retries: int | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        limit: str | None = None,
        trigger: Trigger | str = Trigger.ALL_SUCCESS,
        executor: Any = None,
        branch: bool = False,
        compensate: Callable[..., Any] | None = None,
        cache: Cache | None = None,
        map: Mapping[str, str | Callable[..., Any]] | None = None,
        max_items: int = ...,
        concurrency: int | None = None,
        partial: bool = False,
    ) -> Callable[[F], F]: ...

    def node(self, fn: Any = None, /, *, name: str | None = None, **options: Any) -> Any:
        """Add the decorated function as a node; usable bare or with options.

        The node is named after the function unless ``name=`` is given; the function is
        returned unchanged, so it stays callable and testable on its own.

        Args:
            fn: the function, when used bare (``@wf.node``).
            name: the node's name (default: the function's ``__name__``); required for a
                lambda.
            options: ``after``, ``inputs``, ``retries``, ``retry``, ``timeout``,
                ``limit``, ``trigger``, ``executor``, ``branch``, ``compensate``,
                ``cache``, and for a mapped node ``map``, ``max_items``,
                ``concurrency``, ``partial``, as for :meth:`add`.

        Raises:
            TypeError: ``fn`` is not callable, has no usable name (a lambda without
                ``name=``), or an option is unknown (the message names the near match).
            GraphError: an option has a bad value.
            DuplicateNodeError: the workflow has a node of that name already.

        >>> wf = Workflow("w")
        >>> @wf.node(retries=2)
        ... def fetch(url: str) -> str:
        ...     return url.upper()
        >>> fetch("a"), list(wf), wf.nodes["fetch"].options.attempts
        ('A', ['fetch'], 3)
        """

        def decorate(fn: F) -> F:
            node = name if name is not None else getattr(fn, "__name__", None)
            if not isinstance(node, str):
                raise TypeError(f"cannot name a node after {fn!r}; pass name=")
            if name is None and not node.isidentifier():  # '<lambda>', '<genexpr>'...
                what = "a lambda" if node == "<lambda>" else f"{fn!r}"
                raise TypeError(f"@wf.node cannot name a node after {what}: give the node a "
                                "name with @wf.node(name=...) or wf.add(name, fn)")
            self.add(node, fn, **options)
            self._names_by_fn[fn] = node
            return fn

        if fn is None:
            return decorate
        if not callable(fn):
            raise TypeError(f"@node decorates a callable, got {fn!r}")
        return decorate(fn)

    # -- branches (design.md, "Control flow") --

    @overload
    def branch(self, fn: F, /) -> F: ...
    @overload
    def branch(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        after: Sequence[str | Callable[..., Any]] = (),
        inputs: Mapping[str, str | Callable[..., Any]] | None = None,
        retries: int | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        limit: str | None = None,
        trigger: Trigger | str = Trigger.ALL_SUCCESS,
        executor: Any = None,
    ) -> Callable[[F], F]: ...

    def branch(self, fn: Any = None, /, *, name: str | None = None, **options: Any) -> Any:
        """Add the decorated function as a branch node: :meth:`node` with ``branch=True``.

        The function returns the direct successor(s) to take: a node's name, a node's
        function, or a list of them (an empty list or None takes none). The direct
        successors it does not choose end BYPASSED, and so does everything below them
        that only they lead to; a node that joins the paths again (a merge) takes a
        trigger rule that tolerates bypassed dependencies, usually
        ``Trigger.NONE_FAILED_MIN_ONE_SUCCESS``. The branch's output is the name (or
        list of names) it chose; a durable run records it and never asks again.
        Returning anything else fails the branch with :class:`~flowrt.BranchError`.
        See docs/branching.md.

        Args:
            fn: the function, when used bare (``@wf.branch``).
            name: the node's name (default: the function's ``__name__``).
            options: the options of :meth:`node` (``after``, ``inputs``, ``retries``,
                ``retry``, ``timeout``, ``limit``, ``trigger``, ``executor``).

        Raises:
            TypeError: as :meth:`node` does, and for a ``branch=`` option.
            GraphError: an option has a bad value.
            DuplicateNodeError: the workflow has a node of that name already.

        >>> wf = Workflow("w")
        >>> @wf.branch
        ... def route(n: int) -> str:
        ...     return "big" if n > 9 else "small"
        >>> wf.add("big", lambda: "B", after=["route"])
        >>> wf.add("small", lambda: "S", after=["route"])
        >>> r = wf.run_sync({"n": 3})
        >>> r["route"], r["small"], str(r.nodes["big"].status)
        ('small', 'S', 'bypassed')
        """
        if "branch" in options:
            raise TypeError("@wf.branch takes no branch= option: it is a branch")
        return self.node(fn, name=name, branch=True, **options)

    # -- maps (docs/mapping.md) --

    def map(self, fn: Any = None, /, *, name: str | None = None,
            map: Mapping[str, str | Callable[..., Any]] | None = None,
            **kwargs: Any) -> Any:
        """Add the decorated function as a *mapped* node: called once per item.

        ``@wf.map(path="files")`` calls the function once per item of node ``files``'
        output, with the item as ``path``; the node's output is the list of the items'
        outputs, in order. Several mapped parameters zip (their lists must have equal
        lengths). Keywords that are node options (``retries``, ``timeout``, ``limit``,
        ``executor``... and the map's own ``max_items``, ``concurrency``, ``partial``)
        are options; every other keyword maps a parameter to a node (``map=`` gives
        the mapping explicitly, for a parameter named like an option). See
        docs/mapping.md.

        Args:
            fn: the function (the decorator is always called with the mapping).
            name: the node's name (default: the function's ``__name__``).
            map: ``parameter -> node`` mappings, added to the keyword ones.
            kwargs: mapped parameters and options, as for :meth:`add`.

        Raises:
            GraphError: no mapped parameter, or a bad option value.
            TypeError: as for :meth:`node`.
            DuplicateNodeError: the workflow has a node of that name already.

        >>> wf = Workflow("w")
        >>> wf.add("numbers", lambda: [1, 2, 3])
        >>> @wf.map(n="numbers")
        ... def square(n: int) -> int:
        ...     return n * n
        >>> wf.run_sync()["square"]
        [1, 4, 9]
        """
        mapping: dict[str, Any] = dict(map or {})
        options: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key in NODE_KEYWORDS:
                options[key] = value
            else:
                mapping[key] = value
        if not mapping:
            raise GraphError("@wf.map needs the parameter(s) to map, as param=\"node\" "
                             "(e.g. @wf.map(path=\"files\"))")
        return self.node(fn, name=name, map=mapping, **options)

    def add(
        self,
        name: str,
        fn: Callable[..., Any] | Workflow,
        *,
        deps: Sequence[str | Callable[..., Any]] | Mapping[str, str | Callable[..., Any]] = (),
        after: Sequence[str | Callable[..., Any]] = (),
        inputs: Mapping[str, str | Callable[..., Any]] | None = None,
        **options: Any,
    ) -> None:
        """Add node ``name`` calling ``fn`` (or running workflow ``fn``).

        A rejected node leaves the workflow as it was. The node's
        :class:`~flowrt.workflow.NodeSpec` is ``wf.nodes[name]``.

        Args:
            name: the node's name, unique in the workflow.
            fn: a coroutine function (run in the event loop), a plain callable (run
                where its executor says: a worker thread by default), or a
                :class:`Workflow`: a sub-workflow (docs/sub-workflows.md), whose run
                inputs are this node's parameters and whose single sink's output (or
                ``output=``'s) is this node's.
            deps: node names (or decorated functions) whose outputs fill the first
                positional parameters, in order; or a mapping ``parameter -> node``.
            after: nodes this one runs after, without taking their outputs.
            inputs: ``parameter -> node`` for parameters not named after their node.
            options: ``retries`` (int >= 0) or ``retry`` (a :class:`~flowrt.Retry`),
                ``timeout`` (seconds per attempt), ``limit`` (a limit's name),
                ``trigger`` (a :class:`~flowrt.Trigger` or its name), ``executor``
                (``"loop"``, ``"thread"``, ``"process"`` or an executor object; sync
                nodes only), ``compensate`` (a function undoing the node, called with
                its output when the run fails after it succeeded; docs/compensation.md),
                ``output`` (a sub-workflow's node whose output is this node's), ``cache``
                (a :class:`~flowrt.Cache`: docs/caching.md); ``map`` (``parameter ->
                node``: call ``fn`` once per item of those nodes' outputs, zipped; see
                :meth:`map`) with ``max_items`` (default 100,000), ``concurrency``
                (items in flight) and ``partial`` (failed items give None instead of
                failing the node).

        Raises:
            ValueError: ``name`` is not a non-empty str.
            CycleError: ``fn`` is a workflow that contains this one (or is it).
            TypeError: ``fn`` is not callable, ``deps``/``after`` is a str, or an
                option is unknown (the message names the near match).
            GraphError: more positional ``deps`` than ``fn`` takes, a bad option value,
                or ``executor=`` on an async function.
            DuplicateNodeError: the workflow has a node of that name already.

        Names are resolved when the workflow is compiled, so dependencies may be added
        later; :meth:`compile` reports unknown ones.

        >>> wf = Workflow("w")
        >>> wf.add("x", lambda: 2)
        >>> wf.add("double", lambda v: 2 * v, deps=["x"])
        >>> wf.run_sync()["double"]
        4
        """
        # This is the hot path of generated graphs: validate, then append to flat lists.
        # The common case (a callable seen before, positional deps, no options) tests as
        # little as it can: a workflow or a new callable has no signature yet, and only
        # options can name an executor (decision 027).
        if type(name) is not str or not name:
            raise ValueError(f"a node's name must be a non-empty str, got {name!r}")
        try:
            sig = self._signatures.get(fn)
        except TypeError:  # an unhashable callable
            sig = None
        if sig is None and isinstance(fn, Workflow):
            fn = self._subworkflow(name, fn, options.pop("output", None))
        spec: MapSpec | None = None
        if options and ("map" in options or any(k in options for k in MAP_KEYWORDS)):
            spec, inputs = self._map_of(name, options, inputs)
        if type(deps) is not list and type(deps) is not tuple:
            if isinstance(deps, Mapping):
                inputs = {**deps, **(inputs or {})}
                deps = ()
            elif isinstance(deps, str):
                raise TypeError(f"node {name!r}: deps= takes a list of node names, not a str")
            else:
                deps = tuple(deps)
        if sig is None:  # a callable seen for the first time
            if not callable(fn):
                raise TypeError(f"node {name!r}: fn must be callable, got {fn!r}")
            sig = self._signature(fn)
        k = len(deps)
        if k > sig.max_args:
            raise GraphError(
                f"node {name!r} has {k} positional deps but its function takes "
                f"{sig.positional} positional parameter" + ("" if sig.positional == 1 else "s")
            )
        opts = DEFAULT_OPTIONS
        if options:
            opts = node_options(name, options)
            if opts.executor is not None and sig.is_async:
                raise GraphError(
                    f"node {name!r}: option executor= is for sync functions; "
                    "async nodes always run in the event loop"
                )
        input_names = {p: self._name_of(n) for p, n in inputs.items()} if inputs else None
        if after:
            if isinstance(after, str):
                raise TypeError(f"node {name!r}: after= takes a list of node names, not a str")
            after_names = tuple(map(self._name_of, after))
        # Valid: from here on nothing raises but a duplicate name, checked before any
        # change (the node takes the next id unless the name has one already).
        if self._index_shared:  # a compiled plan holds the index: copy before changing
            self._index = dict(self._index)
            self._index_shared = False
        index = self._index
        i = len(index)
        if index.setdefault(name, i) is not i:
            raise DuplicateNodeError(name, self.name)
        self._fns.append(fn)  # type: ignore[arg-type]  # a Workflow was replaced above
        self._nargs.append(k)
        self._arg_refs += deps
        if opts is not DEFAULT_OPTIONS:
            self._options[i] = opts
        if spec is not None:
            self._maps[i] = spec
        if after:
            self._after[i] = after_names
        if input_names:
            self._inputs[i] = input_names
        # Named parameters that positional deps leave open are bound at compile.
        if input_names or k < sig.bind_from:
            self._open.append(i)

    def subworkflow(self, workflow: Workflow, *, name: str | None = None,
                    **options: Any) -> str:
        """Add ``workflow`` as a node (named after it unless ``name=``); return the name.

        The same as ``wf.add(name, workflow, **options)``; see docs/sub-workflows.md.

        >>> inner = Workflow("double")
        >>> inner.add("twice", lambda x: 2 * x)
        >>> outer = Workflow("outer")
        >>> outer.add("x", lambda: 21)
        >>> outer.subworkflow(inner)
        'double'
        >>> outer.run_sync()["double"]
        42
        """
        node = workflow.name if name is None else name
        self.add(node, workflow, **options)
        return node

    def _subworkflow(self, name: str, child: Workflow, output: str | None
                     ) -> Callable[..., Any]:
        """The callable of node ``name`` running ``child`` (checked for containing this
        workflow, and for nesting too deep)."""
        from ._subworkflow import MAX_DEPTH, SubWorkflow, nesting

        depth = 1 + nesting(child, (self,))  # raises CycleError when child contains self
        if depth > MAX_DEPTH:
            raise GraphError(f"node {name!r}: sub-workflow {child.name!r} nests {depth} "
                             f"levels deep; the limit is {MAX_DEPTH}")
        return SubWorkflow(child, output)

    def _map_of(self, name: str, options: dict[str, Any],
                inputs: Mapping[str, str | Callable[..., Any]] | None
                ) -> tuple[MapSpec, dict[str, str | Callable[..., Any]]]:
        """The map of node ``name`` (popped from ``options``) and its ``inputs=`` with the
        mapped parameters added (a mapped parameter takes its node's output, which the
        map splits into items)."""
        mapping = options.pop("map", None)
        if mapping is None:
            given = next(k for k in MAP_KEYWORDS if k in options)
            raise GraphError(f"node {name!r}: option {given}= is for mapped nodes; "
                             "give map={param: node} or use @wf.map")
        if not isinstance(mapping, Mapping):
            raise GraphError(f"node {name!r}: map= takes a mapping parameter -> node, "
                             f"got {mapping!r}")
        if options.get("branch"):
            raise GraphError(f"node {name!r}: a mapped node cannot be a branch (map= and "
                             "branch=True); branch on the map's output in a node after it")
        names = {p: self._name_of(src) for p, src in mapping.items()}
        spec = map_spec(name, names, options)
        merged: dict[str, str | Callable[..., Any]] = dict(inputs or {})
        for param, source in names.items():
            other = merged.get(param)
            if other is not None and self._name_of(other) != source:
                raise GraphError(f"node {name!r}: parameter {param!r} is mapped over "
                                 f"{source!r} and given {self._name_of(other)!r} by inputs=")
            merged[param] = source
        return spec, merged

    def remove(self, name: str) -> NodeSpec:
        """Remove node ``name`` and return its spec (dependents will fail to compile).

        Raises:
            KeyError: the workflow has no node ``name``.
        """
        i = self._index.get(name)
        if i is None:
            raise KeyError(f"workflow {self.name!r} has no node {name!r}")
        specs = self._specs()
        spec = specs[i]
        self._names_by_fn = {f: n for f, n in self._names_by_fn.items() if n != name}
        self._clear()
        for other in specs[:i] + specs[i + 1 :]:  # added again, in their order
            extra: dict[str, Any] = {}
            if other.map is not None:
                extra = {"map": dict(zip(other.map.params, other.map.sources, strict=True)),
                         "max_items": other.map.max_items,
                         "concurrency": other.map.concurrency, "partial": other.map.partial}
            self.add(other.name, other.fn, deps=other.args, after=other.after,
                     inputs=other.inputs, **other.options.as_options(), **extra)
            if isinstance(other.fn, WaitSpec):
                self._waits[self._index[other.name]] = other.fn
        return spec

    # -- waits (issue 14) -------------------------------------------------------------

    def signal(self, name: str, *, after: Sequence[str | Callable[..., Any]] = (),
               timeout: float | timedelta | None = None,
               trigger: Trigger | str = Trigger.ALL_SUCCESS) -> None:
        """Add node ``name`` that waits for a signal ``name`` sent to the run
        (``rt.signal(run_id, name, payload)``, ``flowrt signal``) and outputs its payload.

        Dependents receive the payload through a parameter named after the node. A
        signal sent before the node waits is kept until it does; the first one sent
        wins.

        Args:
            name: the node's name, which is the signal's name.
            after: the nodes it begins waiting after.
            timeout: seconds (or a ``timedelta``) from when it begins waiting to when
                it fails with :class:`~flowrt.SignalTimeout` (a ``TimeoutError``); None
                waits without limit.
            trigger: its trigger rule, as for any node.

        Raises:
            ValueError: ``name`` is not a non-empty str.
            GraphError: a bad ``timeout`` or ``trigger``.
            DuplicateNodeError: the workflow has a node of that name already.

        >>> from datetime import timedelta
        >>> wf = Workflow("w")
        >>> wf.signal("payment", timeout=timedelta(days=2))
        >>> wf.nodes["payment"].fn
        WaitSpec(kind='signal', timeout=172800.0, delay=None, until=None)
        """
        self._add_wait(name, wait_spec(SIGNAL, name, timeout=timeout), after, trigger)

    def approval(self, name: str, *, after: Sequence[str | Callable[..., Any]] = (),
                 timeout: float | timedelta | None = None,
                 trigger: Trigger | str = Trigger.ALL_SUCCESS) -> None:
        """Add node ``name``: a signal whose payload approves or rejects
        (``rt.approve`` / ``rt.reject``, ``flowrt approve`` / ``reject``).

        Approved, it outputs the payload: ``{"approved": True, "by": ..., "comment":
        ...}``. Rejected, it fails with :class:`~flowrt.Rejected` (who and why in its
        message) and its dependents are skipped as for any failure.

        Args:
            name: the node's name, which is the signal's name.
            after: the nodes it begins waiting after.
            timeout: seconds (or a ``timedelta``) from when it begins waiting to when
                it fails with :class:`~flowrt.SignalTimeout`; None waits without limit.
            trigger: its trigger rule, as for any node.

        Raises:
            ValueError: ``name`` is not a non-empty str.
            GraphError: a bad ``timeout`` or ``trigger``.
            DuplicateNodeError: the workflow has a node of that name already.
        """
        self._add_wait(name, wait_spec(APPROVAL, name, timeout=timeout), after, trigger)

    def timer(self, name: str, *, after: Sequence[str | Callable[..., Any]] = (),
              delay: float | timedelta | None = None, until: datetime | None = None,
              trigger: Trigger | str = Trigger.ALL_SUCCESS) -> None:
        """Add node ``name`` that waits ``delay`` from when it begins waiting, or until
        ``until``, on the runtime's clock; its output is None.

        With a store its due time is recorded when it begins waiting, so a run resumed
        after a crash or a park waits only for the time left.

        Args:
            name: the node's name.
            after: the nodes it begins waiting after.
            delay: seconds or a ``timedelta``.
            until: an aware ``datetime`` (instead of ``delay``).
            trigger: its trigger rule, as for any node.

        Raises:
            ValueError: ``name`` is not a non-empty str.
            GraphError: not exactly one of ``delay`` and ``until``, a negative delay,
                a naive datetime, or a bad ``trigger``.
            DuplicateNodeError: the workflow has a node of that name already.
        """
        self._add_wait(name, wait_spec(TIMER, name, delay=delay, until=until), after,
                       trigger)

    def _add_wait(self, name: str, spec: WaitSpec,
                  after: Sequence[str | Callable[..., Any]], trigger: Trigger | str) -> None:
        options: dict[str, Any] = {} if trigger == Trigger.ALL_SUCCESS else {"trigger": trigger}
        self.add(name, spec, after=after, **options)
        self._waits[self._index[name]] = spec

    def _name_of(self, ref: str | Callable[..., Any]) -> str:
        return name_of(ref, self._names_by_fn)

    def _signature(self, fn: Callable[..., Any]) -> Signature:
        try:
            return self._signatures[fn]
        except KeyError:
            sig = self._signatures[fn] = Signature.of(fn)
            self._sync[fn] = 0 if sig.is_async else 1
            return sig
        except TypeError:  # unhashable callable
            return Signature.of(fn)

    def _specs(self) -> list[NodeSpec]:
        """Every node's spec, by id: built on first use, then kept (nodes only append)."""
        specs = self._spec_list
        if len(specs) < len(self._fns):
            refs, at = self._arg_refs, self._spec_refs
            names = list(self._index)
            fns, nargs = self._fns, self._nargs
            options, after, inputs = self._options, self._after, self._inputs
            maps = self._maps
            for i in range(len(specs), len(fns)):
                k = nargs[i]
                # tuple.__new__ skips NamedTuple's Python-level __new__.
                specs.append(tuple.__new__(NodeSpec, (
                    names[i], fns[i], tuple(refs[at : at + k]), inputs.get(i),
                    after.get(i, ()), options.get(i, DEFAULT_OPTIONS), maps.get(i))))
                at += k
            self._spec_refs = at
        return specs

    # -- reading --------------------------------------------------------------------

    @property
    def nodes(self) -> Mapping[str, NodeSpec]:
        """The node specs by name, in the order they were added (a read-only copy)."""
        from types import MappingProxyType

        return MappingProxyType(dict(zip(self._index, self._specs(), strict=True)))

    def __contains__(self, name: object) -> bool:
        """Whether the workflow has a node ``name``."""
        return name in self._index

    def __len__(self) -> int:
        return len(self._fns)

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __repr__(self) -> str:
        return f"<Workflow {self.name!r} with {len(self._fns)} nodes>"

    # -- compiling ------------------------------------------------------------------

    def compile(self) -> Plan:
        """Validate the workflow and return its :class:`~flowrt.workflow.Plan`.

        The plan is cached until the workflow changes, so calling this again is free.
        Raises :class:`~flowrt.CycleError`, :class:`~flowrt.UnknownNodeError` or another
        :class:`~flowrt.GraphError` naming the culprit.
        """
        plan = self._plan
        # Nodes are only ever appended (remove() starts afresh), so a plan of as many
        # nodes as the workflow has is the plan of the workflow as it is.
        if plan is None or len(plan) != len(self._fns):
            from ._plan import compile_plan

            plan = self._plan = compile_plan(self)
        return plan

    # -- exporting ------------------------------------------------------------------

    def to_mermaid(self) -> str:
        """The workflow as a Mermaid flowchart."""
        from ..tools.viz import to_mermaid

        return to_mermaid(self.compile())

    def to_dot(self) -> str:
        """The workflow as a Graphviz DOT digraph."""
        from ..tools.viz import to_dot

        return to_dot(self.compile())

    # -- running --------------------------------------------------------------------

    async def run(self, inputs: Mapping[str, Any] | None = None, *,
                  store: Store | str | None = None,
                  **options: Unpack[RunOptions]) -> RunResult:
        """Run the workflow in the current event loop and return its result.

        This uses a private :class:`~flowrt.Runtime` for the one run; a service shares
        one runtime between runs instead (``await rt.run(wf, ...)``).

        Args:
            inputs: values of the run inputs (parameters that are no node), by name.
            store: keep the run in this store (a path means SQLite), so that running
                it again with the same ``run_id`` resumes it.
            options: the run options, :class:`~flowrt.runtime.RunOptions`: ``run_id``,
                ``max_concurrency``, ``limits``, ``fail_fast``, ``timeout``, ``data``,
                ``executor``, ``on_event``, ``resume``, ``metrics``, ``strict_inputs``,
                ``park``.

        Returns:
            The :class:`~flowrt.RunResult`; a failed node does not raise (see
            ``result.raise_for_status()``).

        Raises:
            MissingInputError: a required run input is missing (before any node runs).
            UnknownInputError: an input that no node takes, unless
                ``strict_inputs=False``.
            GraphError: the workflow does not compile (a cycle, an unknown dependency).
            TypeError: an unknown option, or ``limits`` that is not a mapping.
            ValueError: a bad option value, or an input named like a node.
        """
        from ..runtime import private_runtime

        async with private_runtime(store, options) as rt:
            return await rt.run(self, inputs, **options)

    def run_sync(self, inputs: Mapping[str, Any] | None = None, *, backend: str = "asyncio",
                 backend_options: Mapping[str, Any] | None = None,
                 store: Store | str | None = None,
                 **options: Unpack[RunOptions]) -> RunResult:
        """Run the workflow to completion in a new event loop (``anyio.run``).

        Args:
            inputs: values of the run inputs, by name (as for :meth:`run`).
            backend: ``"asyncio"`` or ``"trio"``.
            backend_options: passed to :func:`anyio.run` as they are:
                ``{"use_uvloop": True}`` runs the asyncio backend on uvloop
                (``pip install 'flowrt[uvloop]'``).
            store: as for :meth:`run`.
            options: the run options, as for :meth:`run`.

        Raises:
            RuntimeError: called inside a running event loop; ``await wf.run(...)``
                there instead.
            ValueError: an unknown ``backend``, uvloop asked for but not installed, and
                whatever :meth:`run` raises.

        >>> wf = Workflow("hello")
        >>> wf.add("hello", lambda name: f"hello {name}")
        >>> wf.run_sync({"name": "trio"}, backend="trio")["hello"]
        'hello trio'
        """
        from ..runtime import run_sync

        return run_sync(self, inputs, backend=backend, backend_options=backend_options,
                        store=store, **options)
