"""``MemoryStore``: the in-process store, and the reference for the :class:`Store` contract.

Nothing it keeps survives the process: tests, and resuming a run within one process
(``store=":memory:"``). The contract it implements is the protocol's, in
:mod:`flowrt.durable._store`; the SQL stores keep the same rules in their transactions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence

import attrs

from ..errors import RunLeased, describe_error
from ._serialize import Serializer, get_serializer
from ._store import (
    DEAD_LETTER,
    DEFAULT_QUEUE,
    QUEUED,
    RUNNING,
    WAITING,
    Claim,
    Decide,
    ItemRecord,
    Lease,
    NodeRecord,
    RunRecord,
    ScheduleRecord,
    SignalRecord,
    StoredRun,
    cancelled,
    dead_letter_reason,
    holder_gone,
    lost_claim_error,
    not_found,
    park_due,
    prune,
    refuse_live_holder,
    refuse_signal,
    restarted,
    with_fence,
    woken,
)

__all__ = ["MemoryStore"]


class MemoryStore:
    """A store that lives in this process: nothing survives it.

    The reference for the contract:

    - ``claim(run_id, lease, decide)`` reads the run, refuses it with
      :class:`~flowrt.RunLeased` when a live holder has it, calls ``decide(stored run
      or None)``, and -- when that returns a record -- creates or restarts the run with
      it under ``lease`` and the next fencing token, all atomically (nothing is written
      when ``decide`` raises or returns None). It returns ``(stored run, Claim or
      None)``.
    - ``write(claim, nodes, data)`` upserts node records and the data snapshot;
      ``finish(claim, status, finished)`` sets the final status (or parks the run, or
      hands it back to its queue) and gives the lease back; ``renew(claim)`` extends
      the lease now. Each of them first checks, in the same atomic step, that
      ``claim.fence`` is still the run's: if not, nothing is written and the claim
      fails with :class:`~flowrt.LeaseLost`.
    - the work queue: ``submit``, ``claim_next``, ``add_signal`` / ``signals``,
      ``cancel``, ``wake``; schedules: ``put_schedule``, ``delete_schedule``,
      ``schedules``, ``fire_schedule`` (see :class:`Store`).
    - ``load`` / ``runs`` / ``delete`` / ``prune`` read and tidy.

    In one process a lease never expires (there is no other process to take over).

    Args:
        serializer: ``"json"`` (the default), ``"pickle"`` (trusted use only) or a
            serializer object.
        lease_ttl: seconds a lease lasts without renewal.

    Raises:
        ValueError: an unknown serializer name.
    """

    def __init__(self, serializer: str | Serializer = "json", lease_ttl: float = 60.0) -> None:
        self.serializer = get_serializer(serializer)
        self.lease_ttl = lease_ttl
        self._runs: dict[str, RunRecord] = {}
        self._nodes: dict[str, dict[str, NodeRecord]] = {}
        self._items: dict[str, dict[str, dict[int, ItemRecord]]] = {}
        self._data: dict[str, bytes | None] = {}
        self._signals: dict[str, list[SignalRecord]] = {}
        self._seq = 0
        self._schedules: dict[str, ScheduleRecord] = {}
        self._lock = threading.RLock()
        # -- cached node outputs --
        #: key -> (output, serializer name, expiry time or None)
        self._cache: dict[str, tuple[bytes, str, float | None]] = {}

    def get_run(self, run_id: str) -> RunRecord | None:
        return self._runs.get(run_id)

    def _stored(self, run_id: str) -> StoredRun:
        items = {node: dict(records)
                 for node, records in self._items.get(run_id, {}).items()}
        return StoredRun(self._runs[run_id], dict(self._nodes.get(run_id, {})),
                         self._data.get(run_id), self.serializer,
                         tuple(self._signals.get(run_id, ())), items)

    def _take(self, old: RunRecord | None, run_id: str, lease: Lease, now: float,
              decide: Decide, recoveries: int | None = None
              ) -> tuple[StoredRun | None, Claim | None]:
        """Decide and claim (called with the lock held)."""
        stored = None if old is None else self._stored(run_id)
        record = decide(stored)
        if record is None:
            return stored, None
        expires = now + self.lease_ttl
        if old is None:
            record = attrs.evolve(record, owner=lease, lease_expires=expires, fence=1,
                                  resumes=0)
            self._nodes[run_id] = {}
            self._data[run_id] = None
        else:
            record = restarted(old, record, lease, expires)
            if recoveries is not None:
                record = attrs.evolve(record, recoveries=recoveries)
        self._runs[run_id] = record
        return stored, Claim(run_id, lease, record.fence, float("inf"))

    def claim(self, run_id: str, lease: Lease, decide: Decide
              ) -> tuple[StoredRun | None, Claim | None]:
        with self._lock:
            now = time.time()
            old = self._runs.get(run_id)
            if old is not None:
                refuse_live_holder(old, lease, now, same_process_is_live=True)
            return self._take(old, run_id, lease, now, decide)

    def _holds(self, claim: Claim) -> bool:
        """Whether ``claim`` is the run's latest (called with the lock held)."""
        run = self._runs.get(claim.run_id)
        if run is not None and run.fence == claim.fence:
            return True
        if claim.error is None:
            claim.fail(lost_claim_error(claim.run_id, run))
        return False

    def write(self, claim: Claim, nodes: Sequence[NodeRecord], data: bytes | None,
              items: Sequence[ItemRecord] = ()) -> None:
        with self._lock:
            if not self._holds(claim):
                return
            table = self._nodes.setdefault(claim.run_id, {})
            fence = claim.fence
            for r in nodes:
                table[r[0]] = with_fence(r, fence)
            if items:
                by_node = self._items.setdefault(claim.run_id, {})
                for item in items:
                    by_node.setdefault(item.node, {})[item.item] = item
            if data is not None:
                self._data[claim.run_id] = data

    def finish(self, claim: Claim, status: str, finished: float) -> None:
        with self._lock:
            if not self._holds(claim):
                return
            run_id = claim.run_id
            run = self._runs[run_id]
            if status == WAITING:
                due = park_due(self._nodes.get(run_id, {}), run.waits,
                               self._signals.get(run_id, ()), finished)
                run = attrs.evolve(run, status=WAITING, due=due,
                                   queue=run.queue or DEFAULT_QUEUE, recoveries=0)
            elif status == QUEUED:
                run = attrs.evolve(run, status=QUEUED, due=finished,
                                   queue=run.queue or DEFAULT_QUEUE)
            else:
                run = attrs.evolve(run, status=status, finished=finished, due=None)
            self._runs[run_id] = attrs.evolve(run, owner=None, lease_expires=None)

    def renew(self, claim: Claim) -> bool:
        with self._lock:
            if not self._holds(claim):
                return False
            run = self._runs[claim.run_id]
            self._runs[claim.run_id] = attrs.evolve(
                run, lease_expires=time.time() + self.lease_ttl)
            return True

    def flush(self) -> None:
        pass

    def load(self, run_id: str) -> StoredRun | None:
        with self._lock:
            return self._stored(run_id) if run_id in self._runs else None

    def runs(self, workflow: str | None = None, status: str | None = None) -> list[RunRecord]:
        found = [r for r in self._runs.values()
                 if (workflow is None or r.workflow == workflow)
                 and (status is None or r.status == status)]
        return sorted(found, key=lambda r: r.created)

    def delete(self, run_id: str) -> bool:
        with self._lock:
            self._nodes.pop(run_id, None)
            self._items.pop(run_id, None)
            self._data.pop(run_id, None)
            self._signals.pop(run_id, None)
            return self._runs.pop(run_id, None) is not None

    def prune(self, *, older_than: float | None = None, keep: int | None = None,
              statuses: Iterable[str] = ("succeeded", "failed", "cancelled")) -> int:
        return prune(self, older_than, keep, statuses)

    # -- the work queue -------------------------------------------------------------

    def submit(self, record: RunRecord) -> bool:
        with self._lock:
            if record.run_id in self._runs:
                return False
            self._runs[record.run_id] = record
            self._nodes[record.run_id] = {}
            self._data[record.run_id] = None
            return True

    def claim_next(self, lease: Lease, decide: Decide, *, now: float,
                   workflows: Mapping[str, Collection[str]],
                   queues: Collection[str] = (DEFAULT_QUEUE,),
                   max_recoveries: int = 5) -> tuple[StoredRun, Claim] | None:
        with self._lock:
            wall = time.time()
            candidates = sorted(
                (r for r in self._runs.values()
                 if r.queue in queues and r.fingerprint in workflows.get(r.workflow, ())
                 and ((r.status in (QUEUED, WAITING) and r.due is not None and r.due <= now)
                      or r.status == RUNNING)),
                key=lambda r: (r.status == RUNNING, r.due or 0.0, r.created))
            for old in candidates:
                recoveries = None
                if old.status == RUNNING:
                    if not holder_gone(old, wall, same_process_is_live=True):
                        continue
                    deaths = old.recoveries + 1
                    if deaths >= max_recoveries:
                        self._runs[old.run_id] = attrs.evolve(
                            old, status=DEAD_LETTER, finished=wall, owner=None,
                            lease_expires=None, fence=old.fence + 1, recoveries=deaths,
                            error=dead_letter_reason(deaths, max_recoveries))
                        continue
                    recoveries = deaths
                try:
                    stored, claim = self._take(old, old.run_id, lease, wall, decide,
                                               recoveries)
                except Exception as error:
                    self._runs[old.run_id] = attrs.evolve(
                        old, status=DEAD_LETTER, finished=wall, due=None,
                        error=describe_error(error))
                    raise
                if claim is None or stored is None:  # decide left it be: it succeeded
                    continue
                return stored, claim
            return None

    def add_signal(self, signal: SignalRecord) -> bool:
        with self._lock:
            run = self._runs.get(signal.run_id)
            if run is None:
                raise not_found(signal.run_id, self._runs, "the store")
            refuse_signal(run, signal.name)
            kept = self._signals.setdefault(signal.run_id, [])
            if signal.signal_id is not None and any(
                    s.signal_id == signal.signal_id for s in kept):
                return False
            self._seq += 1
            kept.append(signal._replace(seq=self._seq))
            waiting = self._nodes.get(signal.run_id, {}).get(signal.name)
            if run.status == WAITING and waiting is not None and waiting.status == WAITING:
                due = signal.sent if run.due is None else min(run.due, signal.sent)
                self._runs[signal.run_id] = attrs.evolve(run, due=due)
            return True

    def signals(self, run_id: str) -> list[SignalRecord]:
        with self._lock:
            return list(self._signals.get(run_id, ()))

    def cancel(self, run_id: str, now: float) -> RunRecord:
        with self._lock:
            old = self._runs.get(run_id)
            if old is None:
                raise not_found(run_id, self._runs, "the store")
            self._runs[run_id] = cancelled(old, now)
            return old

    def wake(self, run_id: str, now: float) -> RunRecord:
        with self._lock:
            old = self._runs.get(run_id)
            if old is None:
                raise not_found(run_id, self._runs, "the store")
            if old.status == RUNNING and not holder_gone(old, time.time(),
                                                          same_process_is_live=True):
                assert old.owner is not None
                raise RunLeased(run_id, old.owner.describe())
            self._runs[run_id] = woken(old, now)
            return old

    # -- schedules ------------------------------------------------------------------

    def put_schedule(self, schedule: ScheduleRecord) -> ScheduleRecord:
        with self._lock:
            old = self._schedules.get(schedule.name)
            if old is not None and old.same_spec(schedule):
                return old
            if old is not None:
                schedule = attrs.evolve(schedule, created=old.created)
            self._schedules[schedule.name] = schedule
            return schedule

    def delete_schedule(self, name: str) -> bool:
        with self._lock:
            return self._schedules.pop(name, None) is not None

    def schedules(self) -> list[ScheduleRecord]:
        with self._lock:
            return sorted(self._schedules.values(), key=lambda s: s.name)

    def fire_schedule(self, name: str, due: float, runs: list[RunRecord], next_due: float,
                      last_slot: str) -> list[str] | None:
        with self._lock:
            schedule = self._schedules.get(name)
            if schedule is None or schedule.next_due != due:
                return None
            created = [r.run_id for r in runs if self.submit(r)]
            self._schedules[name] = attrs.evolve(schedule, next_due=next_due,
                                                 last_slot=last_slot)
            return created

    # -- cached node outputs --

    def get_cached(self, key: str, now: float) -> tuple[bytes, str] | None:
        entry = self._cache.get(key)
        if entry is None or (entry[2] is not None and now >= entry[2]):
            return None
        return entry[0], entry[1]

    def put_cached(self, key: str, value: bytes, serializer: str, created: float,
                   expires: float | None) -> None:
        with self._lock:
            self._cache[key] = (value, serializer, expires)

    def clear_cache(self) -> int:
        with self._lock:
            n = len(self._cache)
            self._cache.clear()
            return n

    def prune_cache(self, now: float) -> int:
        with self._lock:
            expired = [k for k, (_, _, expires) in self._cache.items()
                       if expires is not None and now >= expires]
            for key in expired:
                del self._cache[key]
            return len(expired)

    def close(self) -> None:
        pass
