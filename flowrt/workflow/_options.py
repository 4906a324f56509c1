"""A node's options (retries, timeout, limit, trigger, executor) and its spec."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple, cast

import attrs

from .._types import Cache, Executor, ExecutorChoice, Retry, Trigger
from ..errors import GraphError

__all__ = ["DEFAULT_MAX_ITEMS", "DEFAULT_OPTIONS", "EXECUTOR_NAMES", "MAP_KEYWORDS",
           "NODE_KEYWORDS", "MapSpec", "NodeOptions", "NodeSpec", "check_compensation",
           "map_spec", "name_of", "node_options"]

#: Where a sync node may run, by name; an executor object is accepted too.
EXECUTOR_NAMES: Final = frozenset({"loop", "thread", "process"})

#: Every keyword ``Workflow.node`` and ``Workflow.add`` take, for "did you mean" hints.
NODE_KEYWORDS: Final = ("name", "deps", "after", "inputs", "retries", "retry", "timeout",
                        "limit", "trigger", "executor",
                        "branch",  # branches
                        "compensate", "output",  # saga, sub-workflows
                        "cache",  # caching
                        "map", "max_items", "concurrency", "partial")  # maps

# -- maps (design.md, "Control flow"; docs/mapping.md) --------------------------------

#: The options of a mapped node that are about the map itself, not about each item.
MAP_KEYWORDS: Final = ("max_items", "concurrency", "partial")
#: A map of more items than this fails before any item starts (``max_items=``).
DEFAULT_MAX_ITEMS: Final = 100_000


@attrs.frozen
class MapSpec:
    """How a mapped node fans out: ``wf.nodes[name].map``, None for other nodes.

    ``params`` are the mapped parameters (zipped, in order) and ``sources`` the nodes
    whose outputs they iterate over; ``max_items`` caps the item count (more fails the
    node before any item starts); ``concurrency`` caps the items in flight (None: only
    the run's limits); ``partial``: failed items give None in the output instead of
    failing the node.
    """

    params: tuple[str, ...]
    sources: tuple[str, ...]
    max_items: int = DEFAULT_MAX_ITEMS
    concurrency: int | None = None
    partial: bool = False


def map_spec(node: str, mapping: Mapping[str, str], options: dict[str, Any]) -> MapSpec:
    """Validate a node's ``map=`` and map options (popped from ``options``).

    Raises:
        GraphError: an empty or malformed mapping, or a bad option value.
    """
    max_items = options.pop("max_items", DEFAULT_MAX_ITEMS)
    concurrency = options.pop("concurrency", None)
    partial = options.pop("partial", False)
    if not mapping:
        raise GraphError(f"node {node!r}: map= needs at least one parameter -> node")
    for param, source in mapping.items():
        if not isinstance(param, str) or not param.isidentifier():
            raise GraphError(f"node {node!r}: map= maps parameters (names) to nodes, "
                             f"got parameter {param!r}")
        if not isinstance(source, str) or not source:
            raise GraphError(f"node {node!r}: map= maps parameter {param!r} to {source!r}, "
                             "not a node name")
    if not _is_int(max_items) or max_items < 0:
        raise GraphError(f"node {node!r}: option max_items= must be an int >= 0, "
                         f"got {max_items!r}")
    if concurrency is not None and (not _is_int(concurrency) or concurrency < 1):
        raise GraphError(f"node {node!r}: option concurrency= must be an int >= 1 or None, "
                         f"got {concurrency!r}")
    if not isinstance(partial, bool):
        raise GraphError(f"node {node!r}: option partial= must be True or False, "
                         f"got {partial!r}")
    return MapSpec(tuple(mapping), tuple(mapping.values()), max_items, concurrency, partial)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def name_of(ref: str | Callable[..., Any], names_by_fn: Mapping[Any, str]) -> str:
    """The node name a dependency reference stands for.

    ``ref`` is a node's name, or a function: the node it was decorated into with
    ``@wf.node`` (``names_by_fn``), else a node named like the function's ``__name__``.

    Raises:
        TypeError: ``ref`` is neither a str nor something with a ``__name__``.
    """
    if isinstance(ref, str):
        return ref
    try:
        return names_by_fn[ref]
    except (KeyError, TypeError):  # not decorated, or unhashable
        pass
    name = getattr(ref, "__name__", None)
    if isinstance(name, str):
        return name
    raise TypeError(f"a dependency must be a node name or a node's function, got {ref!r}")


@attrs.frozen
class NodeOptions:
    """How a node runs: retries, timeout, limit, trigger rule, executor and cache.

    Nodes with the same options share one instance. ``wf.nodes[name].options`` is one.
    """

    retry: Retry | None = None  #: the retry policy (``retries=n`` is ``Retry(attempts=n + 1)``)
    timeout: float | None = None  #: seconds per attempt
    limit: str | None = None  #: the name of the concurrency limit the node takes a slot of
    trigger: Trigger = Trigger.ALL_SUCCESS  #: when the node runs, given how its deps ended
    #: where a sync node runs: None (the run's default), "loop", "thread", "process" or
    #: an executor object
    executor: ExecutorChoice = None
    # -- branches (design.md, "Control flow") --
    #: a branch: its output names the direct successors to take; the others are
    #: BYPASSED (docs/branching.md)
    branch: bool = False
    # -- saga compensation --
    #: what undoes the node when the run fails after it succeeded: called with its
    #: output (and a Context if it asks), see docs/compensation.md
    compensate: Callable[..., Any] | None = None
    # -- end saga compensation --
    # -- caching --
    #: cache the node's output (docs/caching.md); None: it always runs
    cache: Cache | None = None

    @property
    def attempts(self) -> int:
        """How many attempts the node gets in all."""
        return 1 if self.retry is None else self.retry.attempts

    def as_options(self) -> dict[str, Any]:
        """The options that differ from the defaults, as keyword arguments of ``add``."""
        return {k: v for k, v in attrs.asdict(self, recurse=False).items()
                if v != getattr(DEFAULT_OPTIONS, k)}


DEFAULT_OPTIONS: Final = NodeOptions()
_options_cache: dict[tuple[Any, ...], NodeOptions] = {}


class NodeSpec(NamedTuple):
    """One node as defined: its name, callable, declared dependencies and options.

    A NamedTuple rather than an attrs class: one is built per node on the definition
    path, and a tuple builds in half the time of a frozen attrs instance.
    """

    name: str  #: the node's name
    fn: Callable[..., Any]  #: the callable the node calls
    #: node names whose outputs fill the first positional parameters, in order
    args: tuple[str, ...]
    #: parameter -> node name, for parameters not named after the node they take
    inputs: Mapping[str, str] | None
    #: ordering-only dependencies: the node runs after them, without their outputs
    after: tuple[str, ...]
    options: NodeOptions
    #: how a mapped node fans out (``map=``), None for other nodes
    map: MapSpec | None = None


def node_options(node: str, options: dict[str, Any]) -> NodeOptions:
    """Validate a node's options and return the shared NodeOptions instance for them."""
    retries = options.pop("retries", None)
    retry = options.pop("retry", None)
    timeout = options.pop("timeout", None)
    limit = options.pop("limit", None)
    trigger = options.pop("trigger", Trigger.ALL_SUCCESS)
    executor = options.pop("executor", None)
    branch = options.pop("branch", False)  # branches
    compensate = options.pop("compensate", None)
    if options.pop("output", None) is not None:
        raise GraphError(f"node {node!r}: option output= is for a sub-workflow (a Workflow "
                         "given as the node's callable)")
    cache = options.pop("cache", None)
    if options:
        raise TypeError(_unknown_options(node, sorted(options)))

    def bad(option: str, expected: str, value: Any) -> GraphError:
        return GraphError(f"node {node!r}: option {option}= {expected}, got {value!r}")

    if retries is not None:
        if retry is not None:
            raise GraphError(f"node {node!r}: give retries= or retry=, not both")
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise bad("retries", "must be an int >= 0", retries)
        retry = Retry(attempts=retries + 1) if retries else None
    elif retry is not None and not isinstance(retry, Retry):
        raise bad("retry", "must be a flowrt.Retry", retry)
    if timeout is not None and (
        not isinstance(timeout, int | float) or isinstance(timeout, bool) or not timeout > 0
    ):
        raise bad("timeout", "must be a number of seconds > 0", timeout)
    if limit is not None and (not isinstance(limit, str) or not limit):
        raise bad("limit", "must be the name of a limit (a non-empty str)", limit)
    try:
        # The values are the lowercase names; accept a name in any case as well.
        trigger = Trigger(trigger.lower() if isinstance(trigger, str) else trigger)
    except ValueError:
        choices = ", ".join(t.name for t in Trigger)
        raise bad("trigger", f"must be a flowrt.Trigger ({choices})", trigger) from None
    if (executor is not None and not isinstance(executor, str | Executor)) or (
            isinstance(executor, str) and executor not in EXECUTOR_NAMES):
        raise bad("executor", "must be 'loop', 'thread', 'process' or an executor object",
                  executor)
    if not isinstance(branch, bool):  # branches
        raise bad("branch", "must be True or False", branch)
    if compensate is not None:
        check_compensation(node, compensate)
    if cache is not None and not isinstance(cache, Cache):  # caching
        raise bad("cache", "must be a flowrt.Cache", cache)
    where = cast(ExecutorChoice, executor)
    key = (retry, None if timeout is None else float(timeout), limit, trigger, where, branch,
           compensate, cache)
    if (executor is not None and not isinstance(executor, str)) or compensate is not None or (
            cache is not None and cache.key is not None):
        # not kept: the options cache would keep the executor or the function (the
        # compensation, a cache key function) alive
        return NodeOptions(*key)
    try:
        return _options_cache[key]
    except KeyError:
        opts = NodeOptions(*key)
        _options_cache[key] = opts
        return opts


def check_compensation(node: str, fn: Any) -> None:
    """Refuse a ``compensate=`` that cannot be called with the node's output.

    Raises:
        GraphError: ``fn`` is not callable, or takes no positional parameter for the
            output.
    """
    if not callable(fn):
        raise GraphError(f"node {node!r}: option compensate= must be a function called with "
                         f"the node's output, got {fn!r}")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin whose signature cannot be read
        return
    kinds = [p.kind for p in sig.parameters.values()]
    P = inspect.Parameter
    if not any(k in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD, P.VAR_POSITIONAL)
               for k in kinds):
        raise GraphError(f"node {node!r}: compensate={getattr(fn, '__name__', fn)!r} takes "
                         "no positional parameter; it is called with the node's output first")


def _unknown_options(node: str, unknown: list[str]) -> str:
    """The message for unknown keyword options, with the near match of each typo."""
    parts = []
    hinted = False
    for option in unknown:
        near = difflib.get_close_matches(option, NODE_KEYWORDS, n=1)
        hinted = hinted or bool(near)
        parts.append(f"{option}=" + (f" (did you mean {near[0]}=?)" if near else ""))
    message = f"node {node!r}: unknown option{'s' if len(parts) > 1 else ''} {', '.join(parts)}"
    if not hinted:
        message += "; the options are " + ", ".join(NODE_KEYWORDS)
    return message
