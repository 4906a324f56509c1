"""The store's work queue, signals, waits and schedules: the protocol of
docs/decisions/013-queue.md, checked on every store.

Part of the store conformance suite (with tests/test_store_conformance.py): each test
runs on every store of the ``store_kit`` fixture (tests/conftest.py: MemoryStore,
SQLiteStore, PostgresStore), so a new store is checked by adding its kit there.
"""

from __future__ import annotations

import os
import time
from typing import Any

import attrs
import pytest
from stores import StoreKit

import flowrt
from flowrt import MemoryStore
from flowrt.durable import Lease, NodeRecord, RunRecord, ScheduleRecord, SignalRecord

WAITS = {"approve": "approval", "ping": "signal", "nap": "timer"}


@pytest.fixture
def make_store(store_kit: StoreKit) -> Any:
    """make(lease_ttl) -> a store of the kit's kind, on the same data as the others."""

    def make(lease_ttl: float = 60.0) -> Any:
        return store_kit.make(lease_ttl=lease_ttl)

    return make


@pytest.fixture
def store(make_store: Any) -> Any:
    return make_store()


def queued(run_id: str, due: float = 0.0, *, workflow: str = "wf", fingerprint: str = "fp",
           queue: str = "default", created: float = 1.0) -> RunRecord:
    structure = {"a": [], "nap": ["a"], "approve": ["a"], "ping": ["a"]}
    return RunRecord(run_id, workflow, fingerprint, structure, b"{}",
                     "queued", "json", created, created, queue=queue, due=due,
                     waits=dict(WAITS))


def start(stored: Any) -> RunRecord:
    """A decide() that starts the stored run as it is."""
    return attrs.evolve(stored.record, status="running", started=time.time())


def lease(token: str, host: str | None = None, pid: int | None = None) -> Lease:
    return Lease(host or "here", os.getpid() if pid is None else pid, token)


WORKFLOWS = {"wf": {"fp"}}


def dying_holder(make_store: Any, store: Any, lease_ttl: float) -> Any:
    """A store object for a holder that will die: for SQLite or PostgreSQL another one on
    the same data (its writer renews the leases it holds, so it must stop: close it), for
    a store that lives in one process the store itself."""
    return store if isinstance(store, MemoryStore) else make_store(lease_ttl)


def die(holder: Any, store: Any) -> None:
    """The holder's process dies: nothing renews its leases any more."""
    if holder is not store:
        holder._active.clear()  # as after a SIGKILL: no final status, no renewal
        holder.close()


def take(store: Any, token: str = "w", now: float = 100.0, **kw: Any) -> Any:
    return store.claim_next(lease(token), start, now=now,
                            workflows=kw.pop("workflows", WORKFLOWS), **kw)


# -- submitting and taking ------------------------------------------------------------------


def test_a_submitted_run_is_queued_once_and_taken_once(store: Any) -> None:
    assert store.submit(queued("r1", due=10.0))
    assert not store.submit(queued("r1", due=5.0))  # the id exists: nothing changes
    record = store.get_run("r1")
    assert record.status == "queued" and record.due == 10.0 and record.queue == "default"
    assert record.waits == WAITS and record.fence == 0 and record.owner is None
    assert take(store, now=9.0) is None  # not due yet
    stored, claim = take(store, now=10.0)
    assert stored.record.status == "queued" and claim.fence == 1
    assert take(store, now=10.0) is None  # held: nobody else takes it
    record = store.get_run("r1")
    assert record.status == "running" and record.due is None and record.resumes == 0
    store.write(claim, [NodeRecord("a", "succeeded", 1, b"1")], None)
    store.finish(claim, "succeeded", 11.0)
    store.flush()
    record = store.get_run("r1")
    assert record.status == "succeeded" and record.owner is None and record.finished == 11.0


def test_runs_are_taken_oldest_due_first_and_only_by_matching_workers(store: Any) -> None:
    store.submit(queued("late", due=3.0))
    store.submit(queued("early", due=1.0))
    store.submit(queued("other-version", due=0.5, fingerprint="fp2"))
    store.submit(queued("other-workflow", due=0.5, workflow="etl"))
    store.submit(queued("other-queue", due=0.5, queue="gpu"))
    order = []
    while (taken := take(store, now=5.0)) is not None:
        order.append(taken[0].record.run_id)
    assert order == ["early", "late"]
    assert take(store, now=5.0, workflows={"wf": {"fp2"}})[0].record.run_id == "other-version"
    assert take(store, now=5.0, workflows={"etl": {"fp"}})[0].record.run_id == "other-workflow"
    assert take(store, now=5.0, queues=["gpu"])[0].record.run_id == "other-queue"
    assert take(store, now=5.0, workflows={}) is None


def test_a_run_taken_by_one_worker_is_not_taken_by_another(make_store: Any) -> None:
    """Two store objects (for SQLite and PostgreSQL, two connections: two workers) share
    one queue."""
    first = make_store()
    second = first if isinstance(first, MemoryStore) else make_store()
    for k in range(20):
        first.submit(queued(f"r{k}", due=float(k)))
    taken: list[str] = []
    for k in range(20):
        got = take(first if k % 2 else second, token=f"t{k}", now=100.0)
        taken.append(got[0].record.run_id)
    assert sorted(taken) == sorted(f"r{k}" for k in range(20))
    assert take(first, now=100.0) is None and take(second, now=100.0) is None


def test_decide_refusing_dead_letters_the_run(store: Any) -> None:
    store.submit(queued("bad", due=1.0))
    store.submit(queued("good", due=2.0))

    def refuse(stored: Any) -> RunRecord:
        raise flowrt.StoreError("its inputs are damaged")

    with pytest.raises(flowrt.StoreError, match="damaged"):
        store.claim_next(lease("w"), refuse, now=5.0, workflows=WORKFLOWS)
    record = store.get_run("bad")
    assert record.status == "dead_letter" and "damaged" in record.error
    assert record.owner is None and record.fence == 0
    assert take(store, now=5.0)[0].record.run_id == "good"


# -- holders that die --------------------------------------------------------------------


def test_a_dead_workers_run_is_taken_over_and_dead_lettered_after_max_recoveries(
        make_store: Any) -> None:
    store = make_store(lease_ttl=0.3)
    store.submit(queued("r", due=0.0))
    gone = Lease("elsewhere", 1, "dead-0")  # another host: stale once its lease runs out
    holder = dying_holder(make_store, store, 0.3)
    stored, claim = holder.claim_next(gone, start, now=1.0, workflows=WORKFLOWS)
    holder.write(claim, [NodeRecord("a", "succeeded", 1, b"1")], None)
    holder.flush()
    die(holder, store)
    for deaths in (1, 2):
        assert take(store, token="early", now=1.0) is None  # the lease is still live
        time.sleep(0.4)
        holder = dying_holder(make_store, store, 0.3)
        stored, claim = holder.claim_next(Lease("elsewhere", 1, f"dead-{deaths}"), start,
                                          now=1.0, workflows=WORKFLOWS, max_recoveries=3)
        die(holder, store)
        assert stored.nodes["a"].status == "succeeded"  # what the dead worker wrote
        record = store.get_run("r")
        assert record.recoveries == deaths and record.resumes == deaths
    time.sleep(0.4)
    assert store.claim_next(lease("w"), start, now=1.0, workflows=WORKFLOWS,
                            max_recoveries=3) is None
    record = store.get_run("r")
    assert record.status == "dead_letter" and record.recoveries == 3
    assert "died 3 times" in record.error and "max_recoveries=3" in record.error
    store.write(claim, [NodeRecord("late", "succeeded", 1, b"1")], None)  # fenced out
    store.flush()
    assert claim.lost and "late" not in store.load("r").nodes


def test_a_run_handed_back_to_the_queue_is_not_a_recovery(store: Any) -> None:
    store.submit(queued("r", due=0.0))
    _, claim = take(store, now=1.0)
    store.finish(claim, "queued", 2.0)
    store.flush()
    record = store.get_run("r")
    assert record.status == "queued" and record.due == 2.0 and record.owner is None
    _stored, claim = take(store, now=2.0)
    assert store.get_run("r").recoveries == 0 and claim.fence == 2


# -- parking and signals -------------------------------------------------------------------


def _park(store: Any, run_id: str, waiting: list[NodeRecord], now: float = 10.0) -> Any:
    store.submit(queued(run_id, due=0.0))
    _, claim = take(store, now=now)
    store.write(claim, [NodeRecord("a", "succeeded", 1, b"1"), *waiting], None)
    store.finish(claim, "waiting", now)
    store.flush()
    return claim


def test_a_parked_run_wakes_at_its_earliest_due_time(store: Any) -> None:
    _park(store, "r", [NodeRecord("nap", "waiting", 1, started=10.0, due=70.0),
                       NodeRecord("approve", "waiting", 1, started=10.0, due=50.0)])
    record = store.get_run("r")
    assert record.status == "waiting" and record.due == 50.0 and record.owner is None
    assert record.finished is None and record.queue == "default"
    stored = store.load("r")
    assert [(w.node, w.kind, w.due, w.signalled) for w in stored.waits()] == [
        ("nap", "timer", 70.0, False), ("approve", "approval", 50.0, False)]
    assert stored.to_dict()["waiting_for"][0]["node"] == "nap"
    assert stored.to_dict()["nodes"]["nap"]["wait"] == "timer"
    assert take(store, now=49.0) is None
    stored, _claim = take(store, now=50.0)
    assert stored.nodes["nap"].due == 70.0 and store.get_run("r").resumes == 1


def test_a_wait_records_due_time_is_kept_in_any_status(store: Any) -> None:
    """A wait node's due time goes with its record whatever the status: a cancelled
    timer resumed later waits for the time left (flowrt.durable's StoreWaiter)."""
    store.submit(queued("r", due=0.0))
    _, claim = take(store, now=10.0)
    store.write(claim, [NodeRecord("nap", "waiting", 1, started=10.0, due=70.0)], None)
    store.write(claim, [NodeRecord("nap", "cancelled", 1, None, None, None, 10.0, 12.0, 0,
                                   70.0)], None)
    store.finish(claim, "cancelled", 12.0)
    store.flush()
    rec = store.load("r").nodes["nap"]
    assert (rec.status, rec.due, rec.fence) == ("cancelled", 70.0, claim.fence)


def test_a_store_that_watches_tells_of_every_signal(store: Any) -> None:
    """A store with ``watch`` (PostgreSQL: LISTEN/NOTIFY) calls its watchers for a
    signal to a running run too: a node waiting for it in that run's process looks at
    once instead of at its next poll."""
    watch = getattr(store, "watch", None)
    if watch is None:
        pytest.skip("this store has no watch(): waiting nodes poll it")
    import threading

    told = threading.Event()
    store.submit(queued("r", due=0.0))
    take(store, now=10.0)  # running, not parked
    unwatch = watch(told.set)
    try:
        time.sleep(0.3)  # the listener is up (it also calls once when it starts)
        told.clear()
        assert store.add_signal(SignalRecord("r", "ping", b"1", 20.0, "s1"))
        assert told.wait(10.0)
    finally:
        unwatch()


def test_a_signal_wakes_the_run_parked_for_it(store: Any) -> None:
    _park(store, "r", [NodeRecord("approve", "waiting", 1, started=10.0)])
    assert store.get_run("r").due is None  # no timeout: only a signal wakes it
    assert store.add_signal(SignalRecord("r", "approve", b'{"approved": true}', 20.0, "m1"))
    assert store.get_run("r").due == 20.0
    stored, _ = take(store, now=20.0)
    assert stored.signal("approve").payload == b'{"approved": true}'
    assert stored.waits()[0].signalled


def test_a_signal_sent_before_its_node_waits_is_kept_and_wakes_the_park(store: Any) -> None:
    store.submit(queued("r", due=0.0))
    assert store.add_signal(SignalRecord("r", "ping", b"1", 5.0))  # queued: kept
    _, claim = take(store, now=6.0)
    assert store.add_signal(SignalRecord("r", "approve", b"2", 7.0))  # running: kept
    store.write(claim, [NodeRecord("approve", "waiting", 1, started=8.0, due=99.0)], None)
    store.finish(claim, "waiting", 9.0)
    store.flush()
    assert store.get_run("r").due == 9.0  # its signal is there: due at once
    assert [s.name for s in store.signals("r")] == ["ping", "approve"]


def test_a_signal_id_is_stored_once_and_the_first_payload_wins(store: Any) -> None:
    store.submit(queued("r"))
    assert store.add_signal(SignalRecord("r", "ping", b"1", 1.0, "id-1"))
    assert not store.add_signal(SignalRecord("r", "ping", b"2", 2.0, "id-1"))
    assert store.add_signal(SignalRecord("r", "ping", b"3", 3.0))  # no id: no dedupe
    assert store.add_signal(SignalRecord("r", "ping", b"4", 4.0))
    signals = store.signals("r")
    assert [s.payload for s in signals] == [b"1", b"3", b"4"]
    assert signals[0].seq < signals[1].seq < signals[2].seq
    assert store.load("r").signal("ping").payload == b"1"


def test_bad_signals_are_refused_with_the_culprit_named(store: Any) -> None:
    store.submit(queued("order-17"))
    with pytest.raises(flowrt.RunNotFound, match=r"no run 'order-71'.*'order-17'"):
        store.add_signal(SignalRecord("order-71", "ping", b"1", 1.0))
    with pytest.raises(flowrt.SignalRefused, match=r"no signal 'aprove'.*'approve'"):
        store.add_signal(SignalRecord("order-17", "aprove", b"1", 1.0))
    with pytest.raises(flowrt.SignalRefused, match=r"'nap'.*timer"):
        store.add_signal(SignalRecord("order-17", "nap", b"1", 1.0))
    assert store.signals("order-17") == []
    _, claim = take(store, now=1.0)
    store.finish(claim, "succeeded", 2.0)
    store.flush()
    with pytest.raises(flowrt.SignalRefused, match="has succeeded"):
        store.add_signal(SignalRecord("order-17", "ping", b"1", 3.0))


# -- cancel and resume through the store ------------------------------------------------


def test_cancel_through_the_store(store: Any) -> None:
    store.submit(queued("q"))
    assert store.cancel("q", 5.0).status == "queued"
    assert store.get_run("q").status == "cancelled" and take(store, now=9.0) is None
    _park(store, "w", [NodeRecord("nap", "waiting", 1, due=20.0)])
    store.cancel("w", 11.0)
    assert store.get_run("w").status == "cancelled" and store.get_run("w").due is None
    assert store.cancel("w", 12.0).status == "cancelled"  # a final run: left as it is
    with pytest.raises(flowrt.RunNotFound):
        store.cancel("nope", 1.0)


def test_cancelling_a_running_run_fences_its_holder_out(store: Any) -> None:
    store.submit(queued("r"))
    _, claim = take(store, now=1.0)
    store.cancel("r", 2.0)
    store.write(claim, [NodeRecord("a", "succeeded", 1, b"1")], None)
    store.finish(claim, "succeeded", 3.0)
    store.flush()
    assert isinstance(claim.error, flowrt.RunCancelled)
    assert not store.renew(claim)
    record = store.get_run("r")
    assert record.status == "cancelled" and record.fence == 2 and "a" not in store.load("r").nodes


def test_wake_resumes_through_the_queue(make_store: Any) -> None:
    # a lease of 0.3 s: the live holder must stay live on a loaded machine
    store = make_store(lease_ttl=0.3)
    _park(store, "w", [NodeRecord("nap", "waiting", 1, due=500.0)])
    store.wake("w", 20.0)
    assert store.get_run("w").due == 20.0 and store.get_run("w").status == "waiting"
    _stored, claim = take(store, now=20.0)
    store.finish(claim, "failed", 21.0)
    store.flush()
    assert store.wake("w", 30.0).status == "failed"
    record = store.get_run("w")
    assert record.status == "queued" and record.due == 30.0 and record.finished is None
    _, claim = take(store, now=30.0)
    with pytest.raises(flowrt.RunLeased):  # a live holder: not taken from it
        _live_wake(store) if isinstance(store, MemoryStore) else store.wake("w", 31.0)
    store.finish(claim, "succeeded", 32.0)
    store.flush()
    assert store.wake("w", 33.0).status == "succeeded"
    assert store.get_run("w").status == "succeeded"  # nothing to resume
    store.submit(queued("dead"))
    holder = dying_holder(make_store, store, 0.3)
    _, gone = holder.claim_next(Lease("elsewhere", 1, "x"), start, now=1.0,
                                workflows=WORKFLOWS)
    die(holder, store)
    time.sleep(0.35)
    store.wake("dead", 40.0)
    record = store.get_run("dead")
    assert record.status == "queued" and record.fence == gone.fence + 1


def _live_wake(store: Any) -> None:
    # MemoryStore: the claim above is this process's, so it is live
    store.wake("w", 31.0)


# -- schedules -------------------------------------------------------------------------------


def schedule(**kw: Any) -> ScheduleRecord:
    fields: dict[str, Any] = dict(name="nightly", workflow="wf", inputs=b"{}",
                                  serializer="json", next_due=100.0, cron="0 2 * * *",
                                  timezone="Europe/Riga", created=1.0)
    return ScheduleRecord(**{**fields, **kw})


def test_a_schedule_declared_again_keeps_its_place(store: Any) -> None:
    kept = store.put_schedule(schedule())
    assert kept.next_due == 100.0
    assert store.put_schedule(schedule(next_due=500.0, created=9.0)).next_due == 100.0
    changed = store.put_schedule(schedule(cron="0 3 * * *", next_due=600.0, created=9.0))
    assert changed.next_due == 600.0 and changed.created == 1.0
    store.put_schedule(schedule(name="hourly", every=3600.0, cron=None))
    assert [s.name for s in store.schedules()] == ["hourly", "nightly"]
    assert store.schedules()[1].cron == "0 3 * * *" and store.schedules()[0].every == 3600.0
    assert store.delete_schedule("hourly") and not store.delete_schedule("hourly")


def test_each_slot_is_fired_once(make_store: Any) -> None:
    first = make_store()
    second = first if isinstance(first, MemoryStore) else make_store()
    first.put_schedule(schedule(next_due=100.0))
    slot = [queued("sched:nightly:1970-01-01T00:01:40Z", due=100.0)]
    assert first.fire_schedule("nightly", 100.0, slot, 200.0, "1970-01-01T00:01:40Z") == [
        slot[0].run_id]
    assert second.fire_schedule("nightly", 100.0, slot, 200.0, "x") is None  # fired already
    assert second.schedules()[0].next_due == 200.0
    assert second.schedules()[0].last_slot == "1970-01-01T00:01:40Z"
    # the cursor moved, the run exists: firing the same slot again creates nothing
    assert second.fire_schedule("nightly", 200.0, slot, 300.0, "y") == []
    assert first.fire_schedule("gone", 100.0, slot, 200.0, "z") is None
    assert [r.run_id for r in first.runs()] == [slot[0].run_id]


# -- the store-level controls (what the CLI and the dashboard call) -------------------------


def test_controls_check_payloads_and_dedupe(store: Any) -> None:
    from flowrt.durable import control

    store.submit(queued("r"))
    with pytest.raises(flowrt.SignalRefused, match="'approved' true or false"):
        control.send_signal(store, "r", "approve", {"ok": True})
    assert control.approve(store, "r", "approve", by="ann", comment="fine", signal_id="m1")
    assert not control.reject(store, "r", "approve", by="bob", signal_id="m1")
    assert control.send_signal(store, "r", "ping", [1, 2])
    with pytest.raises(flowrt.SerializationError, match="signal 'ping'"):
        control.send_signal(store, "r", "ping", object())
    with pytest.raises(flowrt.RunNotFound, match="did you mean 'r'"):
        control.send_signal(store, "rr", "ping", 1)
    payloads = [store.serializer.loads(s.payload) for s in store.signals("r")]
    assert payloads == [{"approved": True, "by": "ann", "comment": "fine"}, [1, 2]]
    assert control.cancel(store, "r").status == "queued"
    assert control.resume(store, "r").status == "cancelled"
    assert store.get_run("r").status == "queued"
