"""``WorkflowData``: a run's key/value store, laid out as a slab of slots.

Keys are interned to dense ids (by an :class:`~flowrt.Interner` of its own), and a value
lives in the slot of its key's id in one preallocated list. Reading or writing a key is
one dict lookup and one list index; reading by id (:meth:`WorkflowData.get_at`) skips
the lookup.

When a run uses a ``WorkflowData``, the data is *attached* to the run's plan: the
plan's node names take ids ``0 .. n-1`` (without copying the plan's table), so node
``i``'s output is slot ``i`` and ``data["charge"]`` reads the output of node ``charge``.
The node statuses of the run live beside them on a :class:`~flowrt.data.StatusBoard`.

:meth:`WorkflowData.reset` clears only the slots that were used and keeps the capacity,
so reusing one ``WorkflowData`` for repeated runs allocates nothing new (the Go
original's arena reset).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs

from .._types import Status
from ._interner import Interner
from ._status_board import StatusBoard

if TYPE_CHECKING:
    from ..workflow import Plan

__all__ = ["DataMetrics", "WorkflowData"]

SNAPSHOT_VERSION: Final = 1


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


#: The value of an empty slot.
MISSING: Final = _Missing()


@attrs.frozen
class DataMetrics:
    """Counts of a metered ``WorkflowData``'s operations (see ``WorkflowData(metrics=)``).

    Every operation is counted; with a sampling rate below 1 only every ``1/rate``-th
    operation is timed, and ``mean_ns`` is the mean of the timed ones.
    """

    sets: int  #: ``set`` (and ``data[key] = v``) calls
    gets: int  #: ``get`` (and ``data[key]``, ``key in data``) calls
    misses: int  #: gets that found no value
    deletes: int  #: ``delete`` calls
    timed: int  #: operations timed
    total_ns: int  #: their total time, in nanoseconds

    @property
    def mean_ns(self) -> float:
        """Mean time of a timed operation, in nanoseconds (0.0 when none was timed)."""
        return self.total_ns / self.timed if self.timed else 0.0


class WorkflowData:
    """Key/value data of a run, addressed by interned key ids.

    Args:
        capacity: slots to preallocate (the store grows past it when needed).
        metrics: ``False`` (off, the default: no cost at all), ``True`` (count and time
            every operation) or a sampling rate in ``(0, 1]`` (count every operation,
            time a sample of them); see :attr:`metrics`.

    Raises:
        ValueError: a negative ``capacity``, or a sampling rate outside ``(0, 1]``.

    >>> d = WorkflowData()
    >>> d["user"] = "ada"
    >>> d.get("user"), d.get("missing", 0), "user" in d, len(d)
    ('ada', 0, True, 1)
    """

    __slots__ = ("_base", "_high", "_ids", "_interner", "_saved_statuses", "_values",
                 "_version", "statuses")

    def __new__(cls, capacity: int = 64, *, metrics: bool | float = False) -> WorkflowData:
        # Metering is a subclass, so that unmetered data pays nothing for it.
        if metrics is not False and cls is WorkflowData:
            cls = _FullyMeteredWorkflowData if metrics is True else _MeteredWorkflowData
        return object.__new__(cls)

    def __init__(self, capacity: int = 64, *, metrics: bool | float = False) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self._interner = Interner()
        self._ids = self._interner._ids  # own keys: key -> id
        self._base: dict[str, int] = {}  # the attached plan's node names -> id
        self._values: list[Any] = [MISSING] * capacity
        self._high = 0  # one past the highest slot ever written since the last reset
        self._version = 0  # changes whenever a key is set or deleted (checkpoints read it)
        self.statuses = StatusBoard(0)
        self._saved_statuses: dict[str, str] = {}  # from a snapshot, while not attached

    # -- keys -----------------------------------------------------------------------

    def key(self, name: str) -> int:
        """The interned id of ``name`` (interning it if new), for :meth:`get_at`/:meth:`set_at`."""
        i = self._base.get(name)
        if i is None:
            i = self._ids.get(name)
            if i is None:
                i = self._interner.intern(name)
        return i

    def _id(self, name: str) -> int | None:
        i = self._base.get(name)
        if i is None:
            return self._ids.get(name)
        return i

    # -- by key ---------------------------------------------------------------------

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``."""
        i = self._base.get(key)
        if i is None:
            i = self._ids.get(key)
            if i is None:
                i = self._interner.intern(key)
        try:
            self._values[i] = value
        except IndexError:
            self._grow(i + 1)
            self._values[i] = value
        if i >= self._high:
            self._high = i + 1
        self._version += 1

    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default`` when there is none."""
        i = self._base.get(key)
        if i is None:
            i = self._ids.get(key)
            if i is None:
                return default
        try:
            v = self._values[i]
        except IndexError:
            return default
        return default if v is MISSING else v

    def __getitem__(self, key: str) -> Any:
        v = self.get(key, MISSING)
        if v is MISSING:
            raise KeyError(key)
        return v

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key, MISSING) is not MISSING

    def delete(self, key: str) -> bool:
        """Remove ``key``'s value; return whether there was one."""
        i = self._id(key)
        if i is None or i >= len(self._values) or self._values[i] is MISSING:
            return False
        self._values[i] = MISSING
        self._version += 1
        return True

    # -- by id ----------------------------------------------------------------------

    def set_at(self, i: int, value: Any) -> None:
        """Store ``value`` in slot ``i`` (an id from :meth:`key`).

        Raises:
            IndexError: no key has id ``i`` (ids of :func:`flowrt.intern` do not count).
        """
        if not 0 <= i < len(self._interner):
            raise IndexError(f"no key has id {i}")
        try:
            self._values[i] = value
        except IndexError:
            self._grow(i + 1)
            self._values[i] = value
        if i >= self._high:
            self._high = i + 1
        self._version += 1

    def get_at(self, i: int, default: Any = None) -> Any:
        """The value in slot ``i``, or ``default`` when it is empty."""
        if i < 0:  # not a key id: no reading another slot from the end
            return default
        try:
            v = self._values[i]
        except IndexError:
            return default
        return default if v is MISSING else v

    # -- whole ----------------------------------------------------------------------

    def __len__(self) -> int:
        # No list.count(MISSING): it would call every value's __eq__.
        return sum(1 for v in self._values[: self._high] if v is not MISSING)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self.items())

    def items(self) -> Iterator[tuple[str, Any]]:
        """``(key, value)`` for every key that holds a value, in id order."""
        values = self._values
        key = self._interner.key
        for i in range(self._high):
            v = values[i]
            if v is not MISSING:
                yield key(i), v

    def items_from(self, first: int) -> Iterator[tuple[str, Any]]:
        """``(key, value)`` for the keys with id ``first`` or more (past a plan's nodes)."""
        values = self._values
        key = self._interner.key
        for i in range(first, self._high):
            v = values[i]
            if v is not MISSING:
                yield key(i), v

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of every key and value."""
        return dict(self.items())

    def reset(self) -> None:
        """Clear every value and status, keeping the capacity and the interned keys.

        Costs time in proportion to the slots used since the last reset.
        """
        high = self._high
        if high:
            self._values[:high] = [MISSING] * high
            self._high = 0
        self.statuses.reset()
        self._saved_statuses = {}
        self._version += 1

    def _grow(self, need: int) -> None:
        values = self._values
        values.extend([MISSING] * max(need - len(values), len(values)))

    @property
    def capacity(self) -> int:
        """How many slots are allocated."""
        return len(self._values)

    @property
    def metrics(self) -> DataMetrics | None:
        """Operation counts when created with ``metrics=``; None when metrics are off."""
        return None

    # -- runs -----------------------------------------------------------------------

    def attach(self, plan: Plan) -> None:
        """Lay this data out for a run of ``plan``: node ``i``'s output in slot ``i``.

        Values of keys that are not node names are kept; node outputs and statuses are
        cleared. Called by the runtime at the start of a run.
        """
        n = len(plan)
        if self._interner._base is not plan.interner:
            kept = [(k, v) for k, v in self.items() if k not in plan.index]
            self._interner = Interner(base=plan.interner)
            self._ids = self._interner._ids
            self._base = plan.index
            self._values = [MISSING] * max(len(self._values), n + len(kept) + 16)
            # The runtime writes node outputs straight into slots 0 .. n-1.
            self._high = n
            for k, v in kept:
                self.set(k, v)
        else:
            self._values[:n] = [MISSING] * n
            if len(self._values) < n:
                self._grow(n)
            if self._high < n:
                self._high = n
        self._saved_statuses = {}
        if len(self.statuses) != n:
            self.statuses.resize(n)
        else:
            self.statuses.reset()

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready dict of every key, value and node status.

        The dict's structure is plain JSON; values are as they were stored (a durable
        store serializes them with its own serializer).
        """
        if len(self.statuses):
            statuses = {k: str(s) for k, s in self.node_statuses().items()}
        else:
            statuses = dict(self._saved_statuses)
        return {"version": SNAPSHOT_VERSION, "values": self.to_dict(), "statuses": statuses}

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any], *, metrics: bool | float = False
                      ) -> WorkflowData:
        """Rebuild data from :meth:`snapshot`'s output.

        Node statuses are kept with the data (and given back by :meth:`snapshot`) until
        it is attached to a run; a durable store decides what a resumed run keeps.
        ``metrics`` is as for the constructor.

        Raises:
            ValueError: the snapshot is of a version this flowrt does not read.
        """
        version = snapshot.get("version")
        if version != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported WorkflowData snapshot version {version!r}")
        values = snapshot.get("values", {})
        data = cls(max(64, len(values)), metrics=metrics)
        for k, v in values.items():
            data.set(k, v)
        data._saved_statuses = dict(snapshot.get("statuses", {}))
        return data

    def node_statuses(self) -> dict[str, Status]:
        """Statuses by node name of the attached plan's non-pending nodes."""
        key = self._interner.key
        return {key(i): s for i, s in enumerate(self.statuses) if s}

    def __repr__(self) -> str:
        return f"<WorkflowData {len(self)} keys, capacity {self.capacity}>"


_ns = time.perf_counter_ns
_set = WorkflowData.set
_get = WorkflowData.get
_delete = WorkflowData.delete


class _MeteredWorkflowData(WorkflowData):
    """``WorkflowData`` that counts its operations and times a sample of them."""

    __slots__ = ("_counts", "_every", "_tick", "_timed_ns")

    def __init__(self, capacity: int = 64, *, metrics: bool | float = True) -> None:
        super().__init__(capacity)
        rate = 1.0 if metrics is True else float(metrics)
        if not 0.0 < rate <= 1.0:
            raise ValueError(f"metrics sampling rate must be in (0, 1], got {metrics!r}")
        # Deterministic sampling: time every k-th operation. Cheaper than a random draw.
        self._every = max(1, round(1.0 / rate))
        self._tick = 0
        self._counts = [0, 0, 0, 0, 0]  # sets, gets, misses, deletes, timed
        self._timed_ns = 0

    def set(self, key: str, value: Any) -> None:
        counts = self._counts
        counts[0] += 1
        self._tick += 1
        if self._tick >= self._every:
            self._tick = 0
            t = _ns()
            _set(self, key, value)
            self._timed_ns += _ns() - t
            counts[4] += 1
        else:
            _set(self, key, value)

    def get(self, key: str, default: Any = None) -> Any:
        counts = self._counts
        counts[1] += 1
        self._tick += 1
        if self._tick >= self._every:
            self._tick = 0
            t = _ns()
            v = _get(self, key, MISSING)
            self._timed_ns += _ns() - t
            counts[4] += 1
        else:
            v = _get(self, key, MISSING)
        if v is MISSING:
            counts[2] += 1
            return default
        return v

    def delete(self, key: str) -> bool:
        counts = self._counts
        counts[3] += 1
        self._tick += 1
        if self._tick >= self._every:
            self._tick = 0
            t = _ns()
            found = _delete(self, key)
            self._timed_ns += _ns() - t
            counts[4] += 1
            return found
        return _delete(self, key)

    @property
    def metrics(self) -> DataMetrics:
        sets, gets, misses, deletes, timed = self._counts
        return DataMetrics(sets, gets, misses, deletes, timed, self._timed_ns)


class _FullyMeteredWorkflowData(_MeteredWorkflowData):
    """``metrics=True``: every operation is timed, so no sampling tick to keep."""

    __slots__ = ()

    def set(self, key: str, value: Any) -> None:
        t = _ns()
        _set(self, key, value)
        self._timed_ns += _ns() - t
        self._counts[0] += 1

    def get(self, key: str, default: Any = None) -> Any:
        t = _ns()
        v = _get(self, key, MISSING)
        self._timed_ns += _ns() - t
        counts = self._counts
        counts[1] += 1
        if v is MISSING:
            counts[2] += 1
            return default
        return v

    def delete(self, key: str) -> bool:
        t = _ns()
        found = _delete(self, key)
        self._timed_ns += _ns() - t
        self._counts[3] += 1
        return found

    @property
    def metrics(self) -> DataMetrics:
        sets, gets, misses, deletes, _ = self._counts
        return DataMetrics(sets, gets, misses, deletes, sets + gets + deletes, self._timed_ns)
