"""What flowrt reads of a node's callable: its parameters, and whether it is async."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import attrs

from ._context import Context

__all__ = ["Param", "Signature"]


@attrs.frozen
class Param:
    """A named parameter of a node's callable."""

    name: str
    positional: bool  # may be passed positionally
    keyword: bool  # may be passed by keyword
    has_default: bool
    is_context: bool


@attrs.frozen
class Signature:
    """What flowrt needs to know of a callable to call it; analysed once per callable."""

    params: tuple[Param, ...]
    positional: int  # how many leading params may be passed positionally
    varargs: bool
    varkw: bool
    is_async: bool
    known: bool  # False when the signature could not be read (some builtins)
    #: how many positional deps it can take (inf with ``*args`` or when not known)
    max_args: float = attrs.field(init=False)
    #: a node with fewer positional deps than this has named parameters left to bind
    bind_from: float = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        max_args = self.positional if self.known and not self.varargs else float("inf")
        object.__setattr__(self, "max_args", max_args)
        # Keyword-only parameters are always bound by name; positional ones only when
        # no positional dep fills them.
        n = len(self.params)
        object.__setattr__(self, "bind_from", n if n <= self.positional else float("inf"))

    @classmethod
    def of(cls, fn: Callable[..., Any]) -> Signature:
        is_async = _is_async(fn)
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            return cls((), 0, True, True, is_async, False)
        params: list[Param] = []
        positional = 0
        varargs = varkw = False
        P = inspect.Parameter
        for p in sig.parameters.values():
            if p.kind is P.VAR_POSITIONAL:
                varargs = True
                continue
            if p.kind is P.VAR_KEYWORD:
                varkw = True
                continue
            is_pos = p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)
            if is_pos:
                positional += 1
            params.append(
                Param(
                    p.name,
                    is_pos,
                    p.kind is not P.POSITIONAL_ONLY,
                    p.default is not P.empty,
                    _is_context(p.annotation),
                )
            )
        return cls(tuple(params), positional, varargs, varkw, is_async, True)


def _is_async(fn: Callable[..., Any]) -> bool:
    if inspect.isasyncgenfunction(fn):
        raise TypeError(f"{fn!r} is an async generator function; a node must return a value")
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(type(fn), "__call__", None)  # noqa: B004 -- a callable object
    return call is not None and not inspect.isfunction(fn) and inspect.iscoroutinefunction(call)


def _is_context(annotation: Any) -> bool:
    if annotation is Context:
        return True
    # String annotations (from __future__ import annotations) are not evaluated.
    return isinstance(annotation, str) and annotation.rsplit(".", 1)[-1] == "Context"
