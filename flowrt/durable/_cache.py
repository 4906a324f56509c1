"""Cached node outputs kept in a store, so that they outlive the process.

The engine looks cached nodes up through a :class:`~flowrt._engine.cache.NodeCache`;
:class:`StoreCache` is the one over a :class:`~flowrt.durable.Store`'s cache table
(``get_cached`` / ``put_cached``), with the store's serializer. Outputs typed by their
node's return annotation are rebuilt as a resumed run rebuilds them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import SerializationError
from ._rebuild import return_rebuilder
from ._store import decode

if TYPE_CHECKING:
    from ._store import Store

__all__ = ["StoreCache"]


class StoreCache:
    """A node cache in ``store``; ``now`` reads the runtime's clock (for ``ttl``)."""

    __slots__ = ("now", "store")

    def __init__(self, store: Store, now: Callable[[], float]) -> None:
        self.store = store
        self.now = now

    def get(self, key: str, fn: Callable[..., Any]) -> tuple[bool, Any]:
        entry = self.store.get_cached(key, self.now())
        if entry is None:
            return False, None
        blob, serializer = entry
        if serializer != self.store.serializer.name:
            return False, None  # written through another serializer: a miss, replaced
        value = decode(self.store.serializer, blob, "a cached output")
        rebuild = return_rebuilder(fn)
        return True, value if rebuild is None else rebuild(value)

    def put(self, key: str, value: Any, ttl: float | None) -> None:
        serializer = self.store.serializer
        try:
            blob = serializer.dumps(value)
        except SerializationError as error:
            raise SerializationError(f"the output cannot be stored: {error}") from None
        now = self.now()
        self.store.put_cached(key, blob, serializer.name, now,
                              None if ttl is None else now + ttl)
