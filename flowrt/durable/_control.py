"""What people do to runs with a store alone: signal, approve, reject, cancel, resume.

The command line (``flowrt signal``, ``approve``, ``reject``, ``cancel``, ``resume``),
the dashboard and :class:`flowrt.Runtime` all call these, so that a run is controlled
the same way from everywhere. None of them needs the workflow's code or a running
worker: they change the store, and whoever runs the run -- a worker, or the process
holding it -- does the rest (docs/decisions/013-queue.md).

>>> import flowrt
>>> from flowrt.durable import control
>>> store = flowrt.MemoryStore()
>>> control.cancel(store, "nope")
Traceback (most recent call last):
...
flowrt.errors.RunNotFound: no run 'nope' in the store
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import SerializationError
from ..workflow._waits import approval_payload
from ._store import (
    CANCELLED,
    DEAD_LETTER,
    FAILED,
    RunRecord,
    SignalRecord,
    Store,
    not_found,
)

__all__ = ["approval_payload", "approve", "cancel", "reject", "resume", "send_signal"]


def send_signal(store: Store, run_id: str, name: str, payload: Any = None, *,
                signal_id: str | None = None, now: float | None = None) -> bool:
    """Send signal ``name`` with ``payload`` to run ``run_id``; True when stored, False
    when ``signal_id`` was sent to that run before (nothing changes: the first payload
    wins).

    The run's node ``name`` takes the payload as its output when it waits (now, or when
    it gets there: a signal sent early is kept). An approval node's payload must be a
    mapping whose ``"approved"`` is True or False (:func:`approve`, :func:`reject`).

    Args:
        store: the store that keeps the run.
        run_id: the run.
        name: the signal's name: the name of its node.
        payload: what the node outputs (stored with the store's serializer).
        signal_id: dedupes: a signal id sent to the run again is not stored again.
        now: the time it is sent (default: ``time.time()``).

    Raises:
        RunNotFound: the store has no such run (the message names a near run id).
        SignalRefused: the run has no signal or approval node ``name`` (the message
            names the near match), has succeeded, or an approval's payload says
            neither approved nor rejected.
        SerializationError: the payload cannot be stored.
    """
    record = store.get_run(run_id)
    if record is None:
        raise not_found(run_id, (r.run_id for r in store.runs()),
                        str(getattr(store, "path", "the store")))
    if record.waits.get(name) == "approval":
        approval_payload(payload, name)
    try:
        blob = store.serializer.dumps(payload)
    except SerializationError as error:
        raise SerializationError(f"the payload of signal {name!r} cannot be stored: "
                                 f"{error}") from None
    sent = time.time() if now is None else now
    return store.add_signal(SignalRecord(run_id, name, blob, sent, signal_id))


def approve(store: Store, run_id: str, name: str, *, by: str, comment: str | None = None,
            signal_id: str | None = None, now: float | None = None) -> bool:
    """Approve approval node ``name`` of run ``run_id`` as ``by``: :func:`send_signal`
    with payload ``{"approved": True, "by": by, "comment": comment}``; the node succeeds
    with that payload as its output. Raises what :func:`send_signal` raises."""
    return send_signal(store, run_id, name, {"approved": True, "by": by, "comment": comment},
                       signal_id=signal_id, now=now)


def reject(store: Store, run_id: str, name: str, *, by: str, comment: str | None = None,
           signal_id: str | None = None, now: float | None = None) -> bool:
    """Reject approval node ``name`` of run ``run_id`` as ``by``: the node fails with
    :class:`~flowrt.Rejected` (its dependents are skipped as for any failure). Raises
    what :func:`send_signal` raises."""
    return send_signal(store, run_id, name,
                       {"approved": False, "by": by, "comment": comment},
                       signal_id=signal_id, now=now)


def cancel(store: Store, run_id: str, now: float | None = None) -> RunRecord:
    """Cancel run ``run_id``; return its record as it was before (a run already
    finished is left as it is: compare the status).

    A queued or parked run is cancelled at once; a running one too, and its holder --
    a worker, or the process that runs it -- is fenced out: it stops at its next
    checkpoint or lease renewal. A cancelled run can be resumed (:func:`resume`).

    Raises:
        RunNotFound: the store has no such run.
    """
    return store.cancel(run_id, time.time() if now is None else now)


def resume(store: Store, run_id: str, now: float | None = None) -> RunRecord:
    """Resume run ``run_id`` through the work queue; return its record as it was before.

    A parked run is woken (a worker takes it: what it waits for is checked again, and
    it parks again if nothing came); a failed, cancelled or dead-lettered run, or one
    whose process died, is queued again and a worker runs what is left. A succeeded run
    is left as it is. A run rolled back to the end (its compensations ran) is over and
    is refused; one whose rollback was cut short is resumed and finishes its rollback.

    Raises:
        RunNotFound: the store has no such run (the message names a near run id).
        RunLeased: a live process runs it now.
        RunRolledBack: the run was rolled back to the end: resuming it would run
            nothing, and nothing is changed (start a new run).
    """
    record = store.get_run(run_id)
    if record is not None and record.status in (FAILED, CANCELLED, DEAD_LETTER):
        # Only an ended run can have been rolled back to the end: its records are read
        # for those alone. (A run read as running whose rollback ends before the wake
        # below is queued again and runs nothing, as before this check: harmless.)
        stored = store.load(run_id)
        if stored is not None:
            stored.refuse_resume()
    return store.wake(run_id, time.time() if now is None else now)
