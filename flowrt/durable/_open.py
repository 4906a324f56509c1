"""``store=`` as given by a user (a path, ":memory:" or a Store) made a store object."""

from __future__ import annotations

import os
from pathlib import Path

from ._sqlite import SQLiteStore
from ._store import MemoryStore, Store

__all__ = ["open_store"]


def open_store(store: Store | str | os.PathLike[str]) -> Store:
    """A store object from ``store=``: a path means SQLite (``"runs.db"``).

    ``":memory:"`` makes a new :class:`MemoryStore`; a store object is returned as it is.

    Raises:
        TypeError: ``store`` is neither a path nor a :class:`Store`.
        StoreError: the path is a file that is not a flowrt store, or cannot be used.
    """
    if isinstance(store, str | os.PathLike):
        if str(store) == ":memory:":
            return MemoryStore()
        return SQLiteStore(Path(store))
    if not isinstance(store, Store):
        raise TypeError(f"store= takes a path or a flowrt Store, got {store!r}")
    return store
