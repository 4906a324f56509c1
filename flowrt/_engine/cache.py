"""Cached nodes: their keys, and where the engine looks them up.

A node with ``cache=flowrt.Cache(...)`` is looked up before it runs: its key is the
node's name, its version (a hash of its code unless ``Cache(version=...)``) and a hash
of its arguments in JSON-canonical form (docs/decisions/021-cache-keys.md). A hit ends
the node CACHED with the stored output; a miss runs it and stores what it returns.

Where entries live is a :class:`NodeCache`: :class:`MemoryCache` (a runtime without a
store owns one) or the store's cache table (``flowrt.durable``'s ``StoreCache``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import decimal
import enum
import functools
import hashlib
import inspect
import json
import math
import pathlib
import uuid
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from ..data._workflow_data import MISSING
from ..errors import CacheKeyError
from ..workflow import Plan
from ..workflow._plan import BIND_CONTEXT, BIND_NODE
from ..workflow._subworkflow import SubWorkflow

if TYPE_CHECKING:
    from .._types import Cache
    from .state import RunState

__all__ = ["CacheSpec", "ItemKeys", "MemoryCache", "NodeCache", "Unhashable", "cache_key",
           "canonical", "canonical_arguments", "check_cached_inputs", "code_version",
           "specs_of"]

#: the first item of every key: a change of the key's recipe misses old entries
KEY_FORMAT = "flowrt-cache-1"


class NodeCache(Protocol):
    """Where cached outputs are kept (called in the event loop: must not block long)."""

    def get(self, key: str, fn: Callable[..., Any]) -> tuple[bool, Any]:
        """``(True, output)`` for a live entry under ``key``, else ``(False, None)``.

        ``fn`` is the node's callable (a store rebuilds typed outputs from its
        annotation)."""
        ...

    def put(self, key: str, value: Any, ttl: float | None) -> None:
        """Keep ``value`` under ``key`` for ``ttl`` seconds (None: until replaced),
        replacing any entry there. May raise :class:`~flowrt.SerializationError`."""
        ...


class MemoryCache:
    """Entries in a dict, for the life of a runtime (one without a store).

    A hit hands back the very object the node returned (as :func:`functools.cache`
    does): do not change it in place. ``now`` reads the runtime's clock.
    """

    __slots__ = ("entries", "now")

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        #: key -> (output, expiry time or None)
        self.entries: dict[str, tuple[Any, float | None]] = {}

    def get(self, key: str, fn: Callable[..., Any]) -> tuple[bool, Any]:
        entry = self.entries.get(key)
        if entry is None:
            return False, None
        value, expires = entry
        if expires is not None and self.now() >= expires:
            del self.entries[key]
            return False, None
        return True, value

    def put(self, key: str, value: Any, ttl: float | None) -> None:
        self.entries[key] = (value, None if ttl is None else self.now() + ttl)

    def prune(self) -> int:
        """Delete the entries that expired by now; return how many."""
        now = self.now()
        expired = [k for k, (_, expires) in self.entries.items()
                   if expires is not None and now >= expires]
        for key in expired:
            del self.entries[key]
        return len(expired)

    def __len__(self) -> int:
        return len(self.entries)


# -- keys -----------------------------------------------------------------------------


class Unhashable(Exception):
    """A value without a JSON-canonical form (the message says which type)."""


def canonical(value: Any) -> Any:
    """``value`` as JSON-ready data in one canonical form, so that equal values dump
    equal: a dict's keys and a set's items are sorted (by their own canonical JSON), a
    tuple is a list, dataclasses, attrs classes and pydantic models are their fields
    tagged with their class. Raises :class:`Unhashable` for anything else."""
    try:
        return _canonical(value)
    except RecursionError:
        raise Unhashable("a value that contains itself") from None


#: one encoder for every key: ``json.dumps`` with options builds a new one per call
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _canonical(v: Any) -> Any:
    t = type(v)
    if v is None or t is str or t is int or t is bool:
        return v
    if t is float:
        # NaN and infinities are no JSON numbers; tag them (nan == nan for a key)
        return v if math.isfinite(v) else {"__float__": repr(v)}
    if t is list or t is tuple:
        return [_canonical(x) for x in v]
    if t is dict or isinstance(v, Mapping):
        items = [(_canonical(k), _canonical(x)) for k, x in v.items()]
        if all(type(k) is str for k, _ in items):
            return dict(items)  # json.dumps(sort_keys=True) orders it
        return {"__map__": sorted(([k, x] for k, x in items), key=lambda kx: _dumps(kx[0]))}
    if t is set or t is frozenset:
        return {"__set__": sorted((_canonical(x) for x in v), key=_dumps)}
    if isinstance(v, enum.Enum):
        return {"__enum__": _qualname(t), "value": _canonical(v.value)}
    if isinstance(v, bool | int):
        return int(v)
    if isinstance(v, float):
        return _canonical(float(v))
    if isinstance(v, str):
        return str(v)
    if isinstance(v, bytes | bytearray | memoryview):
        return {"__bytes__": bytes(v).hex()}
    if isinstance(v, datetime.datetime | datetime.date | datetime.time):
        return {"__" + t.__name__ + "__": v.isoformat()}
    if isinstance(v, datetime.timedelta):
        return {"__timedelta__": v.total_seconds()}
    if isinstance(v, decimal.Decimal | uuid.UUID | pathlib.PurePath):
        return {"__" + t.__name__ + "__": str(v)}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {"__class__": _qualname(t), "fields": {
            f.name: _canonical(getattr(v, f.name)) for f in dataclasses.fields(v)}}
    if attrs.has(t):
        return {"__class__": _qualname(t), "fields": {
            a.name: _canonical(getattr(v, a.name)) for a in attrs.fields(t)}}
    if isinstance(v, list | tuple):
        return [_canonical(x) for x in v]
    if isinstance(v, set | frozenset):
        return {"__set__": sorted((_canonical(x) for x in v), key=_dumps)}
    dump = getattr(v, "model_dump", None)  # a pydantic model
    if callable(dump) and not isinstance(v, type):
        return {"__class__": _qualname(t), "fields": _canonical(dump(mode="json"))}
    raise Unhashable(f"{_qualname(t)} has no JSON form")


def _qualname(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


def cache_key(node: str, version: str, arguments: Any) -> str:
    """The key of ``node`` at ``version`` called with ``arguments`` (canonical data)."""
    text = _dumps([KEY_FORMAT, node, version, arguments])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@functools.lru_cache(maxsize=4096)
def _version_of_code(code: Any, source: str | None) -> str:
    h = hashlib.sha256()
    if source is not None:
        h.update(source.encode("utf-8", "surrogatepass"))
    else:
        _hash_code(h, code)
    return h.hexdigest()[:16]


def _hash_code(h: Any, code: Any) -> None:
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if inspect.iscode(const):
            _hash_code(h, const)
        else:
            h.update(repr(const).encode("utf-8", "surrogatepass"))


def code_version(fn: Callable[..., Any]) -> str:
    """A hash of ``fn``'s code: its source text when it can be read, else its bytecode
    and constants. (A ``functools.partial`` adds its bound arguments' repr; a
    sub-workflow's is its child's structure and the code of each of its nodes.)"""
    if type(fn) is SubWorkflow:  # the child's structure and every node's code
        plan = fn.workflow.compile()
        h = hashlib.sha256(plan.fingerprint.encode())
        for child_fn in plan.fns:
            h.update(code_version(child_fn).encode())
        return h.hexdigest()[:16]
    extra = ""
    while isinstance(fn, functools.partial):
        extra += repr((fn.args, sorted(fn.keywords.items())))
        fn = fn.func
    target: Any = inspect.unwrap(fn)
    code = getattr(target, "__code__", None)
    if code is None:  # a callable object: its __call__
        call = getattr(type(target), "__call__", None)  # noqa: B004
        code = getattr(call, "__code__", None)
        target = call
    if code is None:
        return hashlib.sha256((repr(fn) + extra).encode()).hexdigest()[:16]
    try:
        source: str | None = inspect.getsource(target)
    except (OSError, TypeError):
        source = None
    version = _version_of_code(code, source)
    if extra:
        version = hashlib.sha256((version + extra).encode()).hexdigest()[:16]
    return version


@attrs.frozen
class CacheSpec:
    """What a run needs to key one cached node: its options, version and the names of
    the parameters its positional dependencies fill."""

    cache: Cache
    version: str
    positional: tuple[str, ...]


def specs_of(plan: Plan) -> dict[int, CacheSpec]:
    """The :class:`CacheSpec` of the cached nodes of ``plan`` met so far, by node: kept
    with the plan, so that the runs of one plan share them."""
    try:
        return _SPECS[plan]
    except KeyError:
        specs: dict[int, CacheSpec] = {}
        _SPECS[plan] = specs
        return specs


_SPECS: weakref.WeakKeyDictionary[Plan, dict[int, CacheSpec]] = weakref.WeakKeyDictionary()


def cache_spec(plan: Plan, node: int) -> CacheSpec:
    """The :class:`CacheSpec` of cached ``node`` of ``plan``."""
    cache = plan.options_of(node).cache
    assert cache is not None
    fn = plan.fns[node]
    version, params = _facts_of(fn)
    if cache.version is not None:
        version = cache.version
    n = plan.nargs[node]
    names = tuple(params[k] if k < len(params) else f"*args[{k - len(params)}]"
                  for k in range(n))
    return CacheSpec(cache, version, names)


#: fn -> (its code version, its positional parameters' names): reading the source and the
#: signature costs ~50 us, once per function rather than once per node and run
_FACTS: weakref.WeakKeyDictionary[Any, tuple[str, tuple[str, ...]]] = (
    weakref.WeakKeyDictionary())


def _facts_of(fn: Callable[..., Any]) -> tuple[str, tuple[str, ...]]:
    try:
        return _FACTS[fn]
    except (KeyError, TypeError):  # not seen yet, or not weakly referable
        pass
    try:
        params = tuple(p.name for p in inspect.signature(fn).parameters.values()
                       if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    except (TypeError, ValueError):
        params = ()
    facts = (code_version(fn), params)
    with contextlib.suppress(TypeError):
        _FACTS[fn] = facts
    return facts


def arguments(state: RunState, node: int, spec: CacheSpec) -> dict[str, Any]:
    """The arguments of ``node`` that make its key, by parameter name: its
    dependencies' outputs and its run inputs; never its Context or a resource."""
    plan = state.plan
    values = state.values
    inputs = state.inputs
    named: dict[str, Any] = {}
    k = plan.pred_ptr[node]
    for name, j in zip(spec.positional, plan.pred_idx[k : k + plan.nargs[node]], strict=True):
        v = values[j]
        named[name] = None if v is MISSING else v
    for param, kind, source in plan.kwargs[node] or ():
        if kind == BIND_NODE:
            v = values[source]
            named[param] = None if v is MISSING else v
        elif kind != BIND_CONTEXT and source in inputs:  # a resource is never in inputs
            named[param] = inputs[source]
    return named


def key_of(name: str, spec: CacheSpec, named: dict[str, Any]) -> str:
    """The key of node ``name`` called with ``named``; raises :class:`CacheKeyError`
    naming the parameter whose value cannot be hashed."""
    if spec.cache.key is not None:
        custom = spec.cache.key(named)
        try:
            return cache_key(name, spec.version, {"__key__": canonical(custom)})
        except Unhashable as why:
            raise CacheKeyError(name, "Cache(key=...)'s result", str(why)) from None
    return cache_key(name, spec.version, canonical_arguments(name, named))


def canonical_arguments(name: str, named: dict[str, Any]) -> dict[str, Any]:
    """``named`` (arguments of node ``name`` by parameter) in canonical form; raises
    :class:`CacheKeyError` naming the parameter whose value cannot be hashed."""
    args: dict[str, Any] = {}
    for param, value in named.items():
        try:
            args[param] = canonical(value)
        except Unhashable as why:
            raise CacheKeyError(name, param, str(why)) from None
    return args


class ItemKeys:
    """The cache keys of the items of a cached mapped node (docs/caching.md, "Mapped
    nodes"): each item's key is the one the node would have if called with that item's
    arguments -- its fixed arguments (made canonical once, not once per item) and the
    item's values of the mapped parameters."""

    __slots__ = ("_fixed", "_fixed_canonical", "name", "spec")

    def __init__(self, name: str, spec: CacheSpec, fixed: dict[str, Any]) -> None:
        self.name = name
        self.spec = spec
        self._fixed = fixed  # the arguments every item shares, by parameter name
        self._fixed_canonical: dict[str, Any] | None = None

    def key(self, item_args: dict[str, Any]) -> str:
        """The key of the item called with ``item_args`` (its mapped parameters) on top
        of the fixed arguments; raises :class:`CacheKeyError`."""
        if self.spec.cache.key is not None:
            return key_of(self.name, self.spec, {**self._fixed, **item_args})
        fixed = self._fixed_canonical
        if fixed is None:
            fixed = self._fixed_canonical = canonical_arguments(self.name, self._fixed)
        args = fixed.copy()
        args.update(canonical_arguments(self.name, item_args))
        return cache_key(self.name, self.spec.version, args)


def check_cached_inputs(plan: Plan, inputs: Mapping[str, Any]) -> None:
    """Refuse a run input that a cached node takes and that cannot be hashed (before the
    run starts): raises :class:`CacheKeyError` naming the node and the parameter."""
    cached = plan.cached
    if cached is None or not inputs:
        return
    for node in range(len(plan)):
        if not cached[node]:
            continue
        cache = plan.options_of(node).cache
        if cache is None or cache.key is not None:
            continue  # a key function may leave such an argument out
        for param, kind, source in plan.kwargs[node] or ():
            if kind != BIND_NODE and kind != BIND_CONTEXT and source in inputs:
                try:
                    canonical(inputs[source])
                except Unhashable as why:
                    raise CacheKeyError(plan.names[node], param, str(why)) from None
