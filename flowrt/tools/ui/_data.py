"""What the dashboard reads from a store: runs filtered and counted, one run with its
child runs, the holders of leases. Plain functions over the :class:`~flowrt.durable.Store`
protocol (any store: SQLite, memory, PostgreSQL), called from worker threads.

Every value comes from ``to_dict()`` data (``RunRecord.to_dict``, ``StoredRun.to_dict``)
and is read with the type checks of :mod:`flowrt.tools._view`: a store is a file anyone
with access may have written (docs/decisions/009-what-tools-show.md).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import attrs

from ...durable import Store, StoredRun
from ...durable._store import UNDONE, rolled_back
from .._view import RunView

__all__ = ["PAGE_SIZE", "SINCE", "STATES", "UNDONE", "BadRequest", "Children", "RunFilter",
           "RunsCache", "Snapshot", "child_runs", "holders", "parent_of", "rolled_back",
           "state_of"]

#: runs per page of the runs list
PAGE_SIZE = 100
#: the states the runs list filters on: a stored status, or "interrupted" (stored as
#: running, but nobody runs it any more)
STATES = ("queued", "running", "interrupted", "waiting", "succeeded", "failed", "cancelled",
          "dead_letter")
#: the "started within" choices: name -> (label, seconds)
SINCE: dict[str, tuple[str, float]] = {
    "1h": ("the last hour", 3600.0),
    "24h": ("the last 24 hours", 86400.0),
    "7d": ("the last 7 days", 7 * 86400.0),
    "30d": ("the last 30 days", 30 * 86400.0),
}


class BadRequest(ValueError):
    """A query parameter that makes no sense (the message says which, for the page)."""


def state_of(run: Mapping[str, Any]) -> str:
    """What the dashboard shows of a run's status (a ``to_dict()``): ``"interrupted"``
    for a run stored as running that nobody runs any more, else the stored status."""
    if run.get("interrupted") is True:
        return "interrupted"
    return str(run.get("status", ""))


def _created(run: Mapping[str, Any]) -> float:
    value = run.get("created")
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return 0.0


def _local_time(text: str, name: str) -> float:
    """``2026-11-26T19:53`` (an ``<input type="datetime-local">``) in this machine's
    local time, the time zone every timestamp of the dashboard is shown in."""
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise BadRequest(f"{name}={text!r} is not a date and time such as "
                         "2026-11-26T19:53") from None


@attrs.frozen
class RunFilter:
    """Which runs the runs list shows (the page's query string): ``workflow``,
    ``state`` (one of :data:`STATES`), started ``since`` (a :data:`SINCE` key) or between
    ``start`` and ``end`` (``datetime-local`` texts), a run id containing ``text``,
    ``top`` (only runs that are no sub-workflow or map item of another stored run), and
    the ``page`` (from 1)."""

    workflow: str = ""
    state: str = ""
    since: str = ""
    start: str = ""
    end: str = ""
    text: str = ""
    top: bool = False
    page: int = 1

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> RunFilter:
        """The filter of a query string.

        Raises:
            BadRequest: a parameter that is not one of the choices (named, with them).
        """
        state = query.get("status", "")
        if state and state not in STATES:
            raise BadRequest(f"status={state!r} is none of {', '.join(STATES)}")
        since = query.get("since", "")
        if since and since not in SINCE:
            raise BadRequest(f"since={since!r} is none of {', '.join(SINCE)}")
        start, end = query.get("from", ""), query.get("to", "")
        for name, value in (("from", start), ("to", end)):
            if value:
                _local_time(value, name)
        page_text = query.get("page", "1") or "1"
        try:
            page = int(page_text)
        except ValueError:
            raise BadRequest(f"page={page_text!r} is not a page number") from None
        if page < 1:
            raise BadRequest(f"page={page_text!r} is not a page number (they start at 1)")
        return cls(query.get("workflow", ""), state, since, start, end, query.get("q", ""),
                   query.get("top", "") not in ("", "0"), page)

    def params(self, **changes: Any) -> dict[str, str]:
        """The query parameters of this filter (with ``changes``), empty ones left out."""
        f = attrs.evolve(self, **changes)
        params = {"workflow": f.workflow, "status": f.state, "since": f.since,
                  "from": f.start, "to": f.end, "q": f.text, "top": "1" if f.top else "",
                  "page": str(f.page) if f.page != 1 else ""}
        return {k: v for k, v in params.items() if v}

    def query(self, **changes: Any) -> str:
        """The query string of this filter (with ``changes``), ``""`` when empty."""
        params = self.params(**changes)
        return "?" + urlencode(params) if params else ""

    @property
    def active(self) -> bool:
        """Whether anything is filtered."""
        return bool(self.params(page=1))

    def matches(self, run: Mapping[str, Any], now: float, ids: frozenset[str],
                with_state: bool = True) -> bool:
        """Whether ``run`` (a ``RunRecord.to_dict()``) passes the filter (its state too,
        unless ``with_state`` is False: the counts of each state)."""
        if self.workflow and run.get("workflow") != self.workflow:
            return False
        if with_state and self.state and state_of(run) != self.state:
            return False
        created = _created(run)
        if self.since and created < now - SINCE[self.since][1]:
            return False
        if self.start and created < _local_time(self.start, "from"):
            return False
        if self.end and created >= _local_time(self.end, "to"):
            return False
        run_id = str(run.get("run_id", ""))
        if self.text and self.text not in run_id:
            return False
        return not (self.top and parent_of(run_id, ids) is not None)


def parent_of(run_id: str, ids: Iterable[str] | frozenset[str]) -> str | None:
    """The stored run that ``run_id`` is a sub-workflow or map item of: the longest
    ``/``-separated prefix of it that is a run in ``ids`` (``"order/ship/3"`` ->
    ``"order"`` when only that is stored), or None."""
    if "/" not in run_id:
        return None
    known = ids if isinstance(ids, frozenset) else frozenset(ids)
    head = run_id
    while "/" in head:
        head = head.rsplit("/", 1)[0]
        if head in known:
            return head
    return None


@attrs.frozen
class Snapshot:
    """Every run of the store as ``RunRecord.to_dict()`` data, newest first, read at
    ``taken`` (wall-clock seconds) in ``cost`` seconds."""

    runs: tuple[dict[str, Any], ...]
    taken: float
    cost: float
    ids: frozenset[str] = attrs.field(eq=False)

    @classmethod
    def read(cls, store: Store) -> Snapshot:
        """Read every run of ``store`` (raises what ``store.runs()`` raises)."""
        t0 = time.perf_counter()
        now = time.time()
        runs = [r.to_dict(now) for r in store.runs()]
        runs.sort(key=_created, reverse=True)
        return cls(tuple(runs), now, time.perf_counter() - t0,
                   frozenset(str(r.get("run_id", "")) for r in runs))

    def workflows(self) -> list[str]:
        """The names of the workflows that have runs, sorted."""
        return sorted({str(r.get("workflow", "")) for r in self.runs})

    def select(self, flt: RunFilter) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """The runs that pass ``flt`` (newest first), and how many runs of each state pass
        it but for their state (the counts beside the state filter)."""
        chosen: list[dict[str, Any]] = []
        counts: dict[str, int] = {}
        now = self.taken
        for run in self.runs:
            if not flt.matches(run, now, self.ids, with_state=False):
                continue
            state = state_of(run)
            counts[state] = counts.get(state, 0) + 1
            if not flt.state or state == flt.state:
                chosen.append(run)
        return chosen, counts


class RunsCache:
    """The latest :class:`Snapshot` of a store, read again when asked for one older than
    ``max_age`` seconds: however many pages and browsers look, the store is read at most
    about once per ``max_age`` (reading 10,000 runs from SQLite takes ~0.2 s here).

    Thread-safe: one thread reads while the others wait for its snapshot.
    """

    def __init__(self, store: Store, max_age: float = 1.0) -> None:
        self.store = store
        self.max_age = max_age
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()

    def get(self) -> Snapshot:
        """A snapshot at most ``max_age`` old (raises what ``store.runs()`` raises)."""
        snap = self._snapshot
        if snap is not None and time.time() - snap.taken < self._age(snap):
            return snap
        with self._lock:
            snap = self._snapshot
            if snap is None or time.time() - snap.taken >= self._age(snap):
                snap = self._snapshot = Snapshot.read(self.store)
            return snap

    def _age(self, snap: Snapshot) -> float:
        # A store that is slow to read is read less often: at most a fifth of the time.
        return max(self.max_age, 5 * snap.cost)

    def forget(self) -> None:
        """Read the store again at the next :meth:`get` (after an action changed it)."""
        self._snapshot = None


@attrs.frozen
class Children:
    """The runs of the store that belong to a run's nodes: ``by_node[name]`` lists
    ``(rest of the id, RunRecord.to_dict())`` for the sub-workflow runs ``run/name``
    and map items ``run/name/i`` of node ``name``, in id order."""

    by_node: dict[str, list[tuple[str, dict[str, Any]]]]

    @property
    def count(self) -> int:
        """How many child runs there are."""
        return sum(len(v) for v in self.by_node.values())


def child_runs(run_id: str, nodes: Iterable[str], snapshot: Snapshot) -> Children:
    """The child runs of ``run_id`` in ``snapshot``, by the node of ``nodes`` they
    belong to (a node name may itself contain ``/``: the longest one that fits wins)."""
    prefix = run_id + "/"
    names = sorted(nodes, key=len, reverse=True)
    by_node: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for run in snapshot.runs:
        rid = str(run.get("run_id", ""))
        if not rid.startswith(prefix):
            continue
        rest = rid[len(prefix):]
        for name in names:
            if rest == name or rest.startswith(name + "/"):
                by_node.setdefault(name, []).append((rest[len(name):].lstrip("/"), run))
                break
    for runs in by_node.values():
        runs.sort(key=lambda item: (_item_order(item[0]), item[0]))
    return Children(by_node)


def _item_order(rest: str) -> int:
    head = rest.split("/", 1)[0]
    return int(head) if head.isdigit() else -1


@attrs.frozen
class Holder:
    """A process that holds leases on runs: ``host``, ``pid``, the runs it holds
    (``RunRecord.to_dict()``, oldest first), the earliest end of its leases, and whether
    it is gone (every run it holds is interrupted)."""

    host: str
    pid: int
    runs: tuple[dict[str, Any], ...]
    lease_expires: float | None
    gone: bool


def holders(snapshot: Snapshot) -> list[Holder]:
    """The processes holding the leases of the store's running runs (workers, and
    programs running durable runs), by host and process id."""
    by: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for run in snapshot.runs:
        if run.get("status") != "running":
            continue
        view = RunView.from_dict(run)
        owner = view.owner if view.owner is not None else ("", 0)
        by.setdefault(owner, []).append(run)
    out = []
    for (host, pid), runs in sorted(by.items()):
        runs.sort(key=_created)
        leases = [RunView.from_dict(r).lease_expires for r in runs]
        known = [t for t in leases if t is not None]
        out.append(Holder(host, pid, tuple(runs), min(known) if known else None,
                          all(r.get("interrupted") is True for r in runs)))
    return out


def load(store: Store, run_id: str) -> StoredRun | None:
    """``store.load(run_id)`` (raises what it raises)."""
    return store.load(run_id)
