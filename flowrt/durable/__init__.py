"""Durable runs: the :class:`Store` protocol, the SQLite, PostgreSQL and in-memory
stores, the serializers, and the run records a store keeps.

A run given a store (``store="runs.db"`` or a :class:`Store` object) records each node
as it ends, so that running it again with the same ``run_id`` resumes it. See
docs/durable.md for what is guaranteed.
"""

from . import _control as control
from ._memory import MemoryStore
from ._open import open_store
from ._postgres import PostgresStore
from ._serialize import (
    JSONSerializer,
    PickleSerializer,
    Serializer,
    get_serializer,
    reader_for,
)
from ._sqlite import SQLiteStore
from ._store import (
    Claim,
    ItemRecord,
    Lease,
    NodeRecord,
    RunRecord,
    ScheduleRecord,
    SignalRecord,
    Store,
    StoredRun,
    Wait,
)

__all__ = ["Claim", "ItemRecord", "JSONSerializer", "Lease", "MemoryStore", "NodeRecord",
           "PickleSerializer", "PostgresStore", "RunRecord", "SQLiteStore", "ScheduleRecord",
           "Serializer", "SignalRecord", "Store", "StoredRun", "Wait", "control", "get_serializer",
           "open_store", "reader_for"]
