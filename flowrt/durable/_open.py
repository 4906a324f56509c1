"""``store=`` as given by a user (a path, a PostgreSQL URL, ":memory:" or a Store) made a
store object."""

from __future__ import annotations

import os
from pathlib import Path

from ._memory import MemoryStore
from ._postgres import PostgresStore
from ._sqlite import SQLiteStore
from ._store import Store

__all__ = ["POSTGRES_SCHEMES", "open_store"]

#: what a ``store=`` string starts with to name a PostgreSQL database
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(store: Store | str | os.PathLike[str]) -> Store:
    """A store object from ``store=``: a path means SQLite (``"runs.db"``), a URL
    ``"postgresql://..."`` (or ``"postgres://..."``) a :class:`PostgresStore` with its
    defaults.

    ``":memory:"`` makes a new :class:`MemoryStore`; a store object is returned as it is.

    Raises:
        TypeError: ``store`` is neither a path nor a :class:`Store`.
        StoreError: the path is a file that is not a flowrt store, or cannot be used;
            the database cannot be reached or is no flowrt store.
        ImportError: a PostgreSQL URL without psycopg installed (the ``postgres`` extra).
    """
    if isinstance(store, str | os.PathLike):
        if str(store) == ":memory:":
            return MemoryStore()
        if isinstance(store, str) and store.startswith(POSTGRES_SCHEMES):
            return PostgresStore(store)
        return SQLiteStore(Path(store))
    if not isinstance(store, Store):
        raise TypeError(f"store= takes a path or a flowrt Store, got {store!r}")
    return store
