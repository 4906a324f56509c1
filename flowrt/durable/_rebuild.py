"""Rebuild typed values read back from a store, from the annotations of the code.

The JSON serializer stores a dataclass, an attrs instance, a pydantic model or a named
tuple as its fields, and the file never names a class (a store must not import what a
file tells it to). A resumed run needs the objects back, or the node downstream of a
restored one fails with ``AttributeError: 'dict' object has no attribute ...``. The
code knows the type: a node's return annotation. So a restored output is rebuilt from
it:

- a dataclass, an attrs class, a ``typing.NamedTuple``: from the stored fields, each
  field rebuilt from its own annotation (nested classes come back too);
- a pydantic (v2) model: ``Model.model_validate(stored fields)``;
- an enum with ``int`` or ``str`` values (``IntEnum``, ``StrEnum``): ``Enum(value)``;
- inside ``list[T]``, ``tuple[T, ...]``, ``tuple[A, B]``, ``dict[K, T]`` (values),
  ``T | None``, and any nesting of those.

Everything else is left as read: a missing annotation, ``dict``, ``Any``, a union of
several classes, a class of another kind. A value that does not fit its annotation
(the class changed since the run was stored) raises :class:`~flowrt.SerializationError`
naming the node, before the run is resumed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import types
import typing
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from ..workflow._plan import BIND_INPUT, BIND_OPTIONAL

if TYPE_CHECKING:
    from ..workflow import Plan

__all__ = ["input_rebuilders", "rebuilder", "return_rebuilder"]

Rebuild = Callable[[Any], Any]

_NONE_TYPE = type(None)


def _hints(obj: Any) -> dict[str, Any]:
    """``typing.get_type_hints(obj)``, resolving names from a function's closure too
    (a class defined inside a function and used in its node), {} when it cannot."""
    target = obj
    while isinstance(target, functools.partial):
        target = target.func
    target = getattr(target, "__wrapped__", target)
    localns: dict[str, Any] = {}
    code = getattr(target, "__code__", None)
    closure = getattr(target, "__closure__", None)
    if code is not None and closure:
        for name, cell in zip(code.co_freevars, closure, strict=False):
            with contextlib.suppress(ValueError):  # an empty cell
                localns[name] = cell.cell_contents
    try:
        return typing.get_type_hints(target, localns=localns or None)
    except Exception:  # unresolvable names, objects without annotations...
        return {}


def _is_named_tuple(tp: type) -> bool:
    return issubclass(tp, tuple) and hasattr(tp, "_fields")


def _fields_rebuild(tp: type, memo: dict[Any, Rebuild | None]) -> Rebuild:
    """Rebuild an instance of a dataclass, attrs class or named tuple from its fields."""
    hints = _hints(tp)
    later: list[tuple[str, Rebuild | None]] = []  # (field, its rebuild), init fields
    after: list[tuple[str, Rebuild | None]] = []  # fields the constructor does not take
    keyword: dict[str, str] = {}  # field -> constructor keyword
    if dataclasses.is_dataclass(tp):
        for f in dataclasses.fields(tp):
            sub = _rebuilder(hints.get(f.name, Any), memo)
            (later if f.init else after).append((f.name, sub))
            keyword[f.name] = f.name
    elif hasattr(tp, "__attrs_attrs__"):
        for a in tp.__attrs_attrs__:
            sub = _rebuilder(hints.get(a.name, a.type if a.type is not None else Any), memo)
            (later if a.init else after).append((a.name, sub))
            keyword[a.name] = getattr(a, "alias", None) or a.name.lstrip("_")
    else:  # a named tuple
        for name in cast("tuple[str, ...]", getattr(tp, "_fields", ())):
            later.append((name, _rebuilder(hints.get(name, Any), memo)))
            keyword[name] = name

    def build(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        kwargs = {}
        for name, sub in later:
            if name in value:
                v = value[name]
                kwargs[keyword[name]] = sub(v) if sub is not None else v
        obj = tp(**kwargs)
        for name, sub in after:
            if name in value:
                v = value[name]
                object.__setattr__(obj, name, sub(v) if sub is not None else v)
        return obj

    return build


def _rebuilder(tp: Any, memo: dict[Any, Rebuild | None]) -> Rebuild | None:
    try:
        if tp in memo:
            return memo[tp]
    except TypeError:  # an unhashable annotation
        return None
    origin = typing.get_origin(tp)
    if origin is not None:
        return _generic(tp, origin, memo)
    if isinstance(tp, type):
        return _class(tp, memo)
    return None


def _optional(inner: Rebuild) -> Rebuild:
    return lambda v: None if v is None else inner(v)


def _list_of(item: Rebuild) -> Rebuild:
    return lambda v: [item(x) for x in v] if type(v) is list else v


def _tuple_of(item: Rebuild) -> Rebuild:
    return lambda v: tuple(item(x) for x in v) if type(v) is tuple else v


def _tuple_fields(subs: list[Rebuild | None]) -> Rebuild:
    def build(v: Any) -> Any:
        if type(v) is not tuple or len(v) != len(subs):
            return v
        return tuple(x if s is None else s(x) for s, x in zip(subs, v, strict=True))

    return build


def _dict_of(value: Rebuild) -> Rebuild:
    return lambda v: {k: value(x) for k, x in v.items()} if type(v) is dict else v


def _generic(tp: Any, origin: Any, memo: dict[Any, Rebuild | None]) -> Rebuild | None:
    """``list[T]``, ``T | None``, ``dict[K, T]``...: rebuild what they hold."""
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _rebuilder(args[0], memo)
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in args if a is not _NONE_TYPE]
        if len(members) != 1:
            return None  # a union of several types: which one was stored is not known
        inner = _rebuilder(members[0], memo)
        return None if inner is None else _optional(inner)
    if origin in (list, Sequence):
        item = _rebuilder(args[0], memo) if args else None
        return None if item is None else _list_of(item)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _rebuilder(args[0], memo)
            return None if item is None else _tuple_of(item)
        subs = [_rebuilder(a, memo) for a in args]
        return _tuple_fields(subs) if any(subs) else None
    if origin in (dict, Mapping):
        value = _rebuilder(args[1], memo) if len(args) == 2 else None
        return None if value is None else _dict_of(value)
    return None


def _class(tp: type, memo: dict[Any, Rebuild | None]) -> Rebuild | None:
    """A class: a pydantic model, an enum, a class made of fields, or nothing to do."""
    validate = getattr(tp, "model_validate", None)
    if callable(validate) and hasattr(tp, "model_fields"):  # pydantic v2
        return lambda v: validate(v) if isinstance(v, dict) else v
    if issubclass(tp, enum.Enum):
        return lambda v: v if isinstance(v, tp) else tp(v)
    if dataclasses.is_dataclass(tp) or hasattr(tp, "__attrs_attrs__") or _is_named_tuple(tp):
        # A class that refers to itself (a tree): its fields meet this forward
        # reference to the builder while it is being made.
        built: list[Rebuild] = []
        memo[tp] = lambda v: built[0](v)
        built.append(_fields_rebuild(tp, memo))
        memo[tp] = built[0]
        return built[0]
    return None


def rebuilder(tp: Any) -> Rebuild | None:
    """A function that rebuilds a value of annotation ``tp`` from its stored form, or
    None when nothing needs rebuilding."""
    return _rebuilder(tp, {})


_by_function: weakref.WeakKeyDictionary[Any, Rebuild | None] = weakref.WeakKeyDictionary()
_MISSING: Any = object()


def return_rebuilder(fn: Any) -> Rebuild | None:
    """The rebuild of ``fn``'s return annotation (cached per function), or None."""
    try:
        found = _by_function.get(fn, _MISSING)
    except TypeError:  # not weakly referenceable
        found = _MISSING
    if found is not _MISSING:
        return cast("Rebuild | None", found)
    annotations = getattr(fn, "__annotations__", None)
    if annotations is not None and "return" not in annotations and not isinstance(
        fn, functools.partial
    ):
        made = None  # no return annotation: the common case, decided without typing
    else:
        made = rebuilder(_hints(fn).get("return", Any))
    with contextlib.suppress(TypeError):
        _by_function[fn] = made
    return made


def input_rebuilders(plan: Plan) -> dict[str, Rebuild]:
    """Per run input of ``plan``, the rebuild of the annotation of the first node
    parameter (in node order) that takes it and is annotated; inputs without one are
    left out."""
    out: dict[str, Rebuild] = {}
    seen: set[str] = set()
    for i, bound in enumerate(plan.kwargs):
        for param, kind, source in bound or ():
            if kind not in (BIND_INPUT, BIND_OPTIONAL) or source in seen:
                continue
            tp = _hints(plan.fns[i]).get(param)
            if tp is None:
                continue
            seen.add(source)
            made = rebuilder(tp)
            if made is not None:
                out[source] = made
    return out
