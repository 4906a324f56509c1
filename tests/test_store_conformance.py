"""The store conformance suite: what every store promises, run against each of them.

``store_kit`` (tests/conftest.py) is MemoryStore, SQLiteStore and PostgresStore in
turn; ``shared_kit`` the stores several processes share (SQLite, PostgreSQL), for the
tests with real processes. A new store passes this file by adding a kit to
tests/stores.py and a parameter to those fixtures.

First the protocol itself (claim / write / finish / renew / flush, reading and tidying;
docs/decisions/012-fencing.md), then durable runs through the runtime, then processes
that race for one run, are paused past their lease, or are killed with SIGKILL.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import functools
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import attrs
import pydantic
import pytest
from stores import StoreKit
from worker_kit import start_worker, starts

import flowrt
from flowrt import RunStatus, Status
from flowrt.durable import ItemRecord, Lease, NodeRecord, RunRecord
from flowrt.durable._store import LISTED, Opening

HERE = Path(__file__).parent
import durable_worker  # noqa: E402
import lease_worker  # noqa: E402


def _record(run_id: str, workflow: str = "wf", created: float = 1.0) -> RunRecord:
    return RunRecord(run_id, workflow, "fp", {"a": [], "b": ["a"]}, b"{}", "running", "json",
                     created, created)


def _lease(token: str, host: str = "here") -> Lease:
    return Lease(host, os.getpid(), token)


# -- the protocol ------------------------------------------------------------------------


def test_a_claim_creates_the_run_and_the_next_claim_restarts_it(any_store: Any) -> None:
    store = any_store
    seen: list[Any] = []
    stored, first = store.claim("r", _lease("one"), lambda s: seen.append(s) or _record("r"))
    assert stored is None and seen == [None]
    assert first is not None and first.fence == 1 and first.error is None
    record = store.get_run("r")
    assert record.status == "running" and record.fence == 1 and record.resumes == 0
    assert record.owner == _lease("one") and record.lease_expires > time.time()
    assert record.structure == {"a": [], "b": ["a"]} and record.inputs == b"{}"
    store.write(first, [NodeRecord("a", "succeeded", 1, b"[1, 2]", None, None, 1.5, 1.75)],
                b'{"k": 1}')
    store.finish(first, "failed", 2.0)
    store.flush()
    record = store.get_run("r")
    assert (record.status, record.finished, record.owner, record.lease_expires) == (
        "failed", 2.0, None, None)
    stored, second = store.claim("r", _lease("two"), lambda s: _record("r"))
    assert stored.record.status == "failed" and stored.data == b'{"k": 1}'
    assert stored.nodes["a"] == NodeRecord("a", "succeeded", 1, b"[1, 2]", None, None, 1.5,
                                           1.75, 1)
    assert second.fence == 2
    record = store.get_run("r")
    assert (record.status, record.resumes, record.fence, record.finished) == (
        "running", 1, 2, None)
    assert record.created == 1.0  # the first start is kept
    assert store.load("r").restored("a")


def test_a_stale_claim_can_write_nothing(any_store: Any) -> None:
    """Writes, renewals and the final status of a claim whose fence is no longer the
    run's are refused, and the claim says it is lost."""
    store = any_store
    lease1 = _lease("one")
    _, first = store.claim("r", lease1, lambda stored: _record("r"))
    assert first is not None and first.fence == 1
    store.write(first, [NodeRecord("a", "succeeded", 1, b"1")], None)
    store.finish(first, "failed", 2.0)
    store.flush()
    seen: list[Any] = []
    _, second = store.claim("r", _lease("two"),
                            lambda stored: seen.append(stored) or _record("r"))
    assert second is not None and second.fence == 2
    assert seen[0].nodes["a"].fence == 1 and seen[0].record.status == "failed"
    store.write(first, [NodeRecord("a", "failed", 9)], b"[]")
    store.finish(first, "cancelled", 3.0)
    store.flush()
    assert first.lost and isinstance(first.error, flowrt.LeaseLost)
    assert "process" in str(first.error)  # names the holder
    assert not store.renew(first)
    assert store.renew(second) and second.error is None
    stored = store.load("r")
    assert stored.nodes["a"].attempts == 1 and stored.record.status == "running"
    assert stored.record.fence == 2 and stored.restored("a") and stored.data is None
    store.finish(second, "succeeded", 4.0)
    store.flush()
    record = store.get_run("r")
    assert record.status == "succeeded" and record.owner is None


def test_an_opening_starts_a_new_run_and_decide_sees_only_what_is_stored(any_store: Any
                                                                        ) -> None:
    """A decide that says beforehand what it makes of a new run (``Opening.fresh``, as
    the runtime's does): a store may start the run from it without a look, and decide
    is asked with None only while the run is not stored."""
    store = any_store
    seen: list[Any] = []

    def decide(stored: Any) -> RunRecord:
        seen.append(stored)
        return _record("r")

    _, first = store.claim("r", _lease("one"), Opening(decide, _record("r")))
    assert first is not None and first.fence == 1 and seen in ([], [None])
    assert store.get_run("r").owner == _lease("one")
    store.finish(first, "failed", 2.0)
    store.flush()
    seen.clear()
    stored, second = store.claim("r", _lease("two"), Opening(decide, _record("r")))
    assert second is not None and second.fence == 2
    assert len(seen) == 1 and stored is seen[0] and seen[0].record.status == "failed"


def test_claim_writes_nothing_when_decide_refuses(any_store: Any) -> None:
    store = any_store
    _, claim = store.claim("r", _lease("one"), lambda s: _record("r"))
    store.finish(claim, "failed", 2.0)
    store.flush()
    before = store.get_run("r")

    def refuse(stored: Any) -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        store.claim("r", _lease("two"), refuse)
    stored, none = store.claim("r", _lease("three"), lambda s: None)
    assert none is None and stored.record == before
    assert store.get_run("r") == before  # no lease taken, no fence used
    with pytest.raises(ValueError, match="no"):
        store.claim("new", _lease("four"), refuse)
    assert store.get_run("new") is None and store.load("new") is None


def test_a_live_holder_is_refused_and_an_expired_one_taken_over(store_kit: StoreKit) -> None:
    other = store_kit.make(lease_ttl=0.3)  # the other process's store
    elsewhere = Lease("another-host", 4242, "theirs")  # a process this host cannot check
    _, theirs = other.claim("r", elsewhere, lambda s: _record("r"))
    store = store_kit.make(lease_ttl=0.3)
    with pytest.raises(flowrt.RunLeased, match="process 4242 on another-host") as info:
        store.claim("r", _lease("mine"), lambda s: _record("r"))
    assert not isinstance(info.value, flowrt.LeaseLost)
    assert store.get_run("r").fence == 1  # the refusal wrote nothing
    if other is not store:
        other.close()  # it stops renewing the lease
    time.sleep(0.5)  # their lease runs out: nobody renews it
    assert store.get_run("r").is_interrupted()
    _, mine = store.claim("r", _lease("mine"), lambda s: _record("r"))
    assert mine.fence == 2
    store.write(theirs, [NodeRecord("late", "succeeded", 1, b"1")], None)
    store.flush()
    assert theirs.lost and "late" not in store.load("r").nodes


def test_records_are_kept_as_written(any_store: Any) -> None:
    """Upserts by node name, blobs byte for byte (empty, large, not UTF-8), text with
    any character, None kept as None; a data snapshot stays until another replaces it."""
    store = any_store
    _, claim = store.claim("r", _lease("one"), lambda s: _record("r"))
    big = os.urandom(300_000)
    store.write(claim, [NodeRecord("a", "failed", 1, None, "ValueError: é \U0001f600",
                                   "Traceback ...\n  line 1", 1.0, 2.0),
                        NodeRecord("empty", "succeeded", 1, b""),
                        NodeRecord("big", "succeeded", 2, big),
                        NodeRecord("ünï", "skipped", 0)], b"\x00\xff")
    store.write(claim, [NodeRecord("a", "succeeded", 2, b"\xff\xfe", None, None, 1.0, 3.0)],
                None)
    store.flush()
    stored = store.load("r")
    assert stored.nodes["a"] == NodeRecord("a", "succeeded", 2, b"\xff\xfe", None, None, 1.0,
                                           3.0, 1)
    assert stored.nodes["empty"].output == b"" and stored.nodes["big"].output == big
    assert stored.nodes["ünï"].output is None and stored.nodes["ünï"].started is None
    assert stored.data == b"\x00\xff"
    store.write(claim, [NodeRecord("b", "failed", 1, None, "E: x", "tb")], b"{}")
    store.finish(claim, "failed", 5.0)
    store.flush()
    stored = store.load("r")
    assert stored.data == b"{}" and stored.nodes["b"].traceback == "tb"
    assert set(stored.nodes) == {"a", "empty", "big", "ünï", "b"}


def test_item_records_are_kept_as_written_and_the_last_of_an_item_wins(
        any_store: Any) -> None:
    """Item records of mapped nodes (SQLite packs a node's records of one commit into one
    row: docs/decisions/029-item-batches.md): every field kept, blobs byte for byte,
    None as None; a later record of an item -- in the same write, a later write, or a
    later commit -- replaces the earlier one; nodes apart; delete removes them."""
    store = any_store
    _, claim = store.claim("r", _lease("one"), lambda s: _record("r"))
    big = os.urandom(100_000)
    first = [ItemRecord("m", LISTED, "listed", 5),
             ItemRecord("m", 0, "succeeded", 1, b"0", None, None, 1.0, 1.5),
             ItemRecord("m", 1, "failed", 2, None, "ValueError: é \U0001f600", "tb\n1",
                        1.25, None),
             ItemRecord("m", 2, "succeeded", 1, b"", None, None, None, None),
             ItemRecord("m", 3, "succeeded", 1, big, None, None, 2.0, 3.0),
             ItemRecord("ünï", 7, "cancelled", 0),
             ItemRecord("m", 0, "cached", 1, b"\xff\x00", None, None, 1.0, 1.75)]
    store.write(claim, [], None, first)
    store.write(claim, [], None, [ItemRecord("m", 1, "succeeded", 3, b"1", None, None, 1.25,
                                             4.0)])
    store.flush()
    store.write(claim, [], None, [ItemRecord("m", 3, "compensated", 1, big, None, None, 2.0,
                                             3.0),
                                  ItemRecord("m", 4, "skipped", 0)])
    store.flush()
    stored = store.load("r")
    assert stored.items == {
        "m": {LISTED: ItemRecord("m", LISTED, "listed", 5),
              0: ItemRecord("m", 0, "cached", 1, b"\xff\x00", None, None, 1.0, 1.75),
              1: ItemRecord("m", 1, "succeeded", 3, b"1", None, None, 1.25, 4.0),
              2: ItemRecord("m", 2, "succeeded", 1, b"", None, None, None, None),
              3: ItemRecord("m", 3, "compensated", 1, big, None, None, 2.0, 3.0),
              4: ItemRecord("m", 4, "skipped", 0)},
        "ünï": {7: ItemRecord("ünï", 7, "cancelled", 0)}}
    assert stored.item_counts("m") == {"cached": 1, "succeeded": 2, "compensated": 1,
                                       "skipped": 1}
    store.write(claim, [], None, [ItemRecord("m", 1, "failed", 4, None, "E: x", None, None,
                                             5.0)])
    store.finish(claim, "failed", 5.0)
    store.flush()
    assert store.load("r").items["m"][1] == ItemRecord("m", 1, "failed", 4, None, "E: x",
                                                        None, None, 5.0)
    # a later claim's records replace those of an earlier one
    _, again = store.claim("r", _lease("two"), lambda s: _record("r"))
    store.write(again, [], None, [ItemRecord("m", 1, "succeeded", 5, b"11")])
    store.flush()
    assert store.load("r").items["m"][1] == ItemRecord("m", 1, "succeeded", 5, b"11")
    assert store.delete("r") and store.load("r") is None
    store.claim("r", _lease("three"), lambda s: _record("r"))
    store.flush()
    assert store.load("r").items == {}


def test_listing_deleting_and_pruning(any_store: Any) -> None:
    store = any_store
    for k in range(5):
        _, claim = store.claim(f"r{k}", _lease(f"t{k}"),
                               lambda s, k=k: _record(f"r{k}", "even" if k % 2 == 0 else "odd",
                                                      created=time.time() + k * 0.001))
        store.write(claim, [NodeRecord("a", "succeeded", 1, b"1")], None)
        if k != 4:
            store.finish(claim, "succeeded" if k else "failed", time.time())
    store.flush()
    assert [r.run_id for r in store.runs()] == [f"r{k}" for k in range(5)]
    assert [r.run_id for r in store.runs(workflow="even")] == ["r0", "r2", "r4"]
    assert [r.run_id for r in store.runs(status="succeeded")] == ["r1", "r2", "r3"]
    assert [r.run_id for r in store.runs(workflow="odd", status="failed")] == []
    assert store.get_run("nope") is None and store.load("nope") is None
    assert store.delete("r0") and not store.delete("r0")
    assert store.load("r0") is None and store.get_run("r0") is None
    assert store.prune(keep=1) == 2  # r1, r2 (r3 is the newest; r4 is running)
    assert [r.run_id for r in store.runs()] == ["r3", "r4"]
    assert store.prune(older_than=3600) == 0
    assert store.prune(older_than=0) == 1
    assert [r.run_id for r in store.runs()] == ["r4"]  # running runs are never pruned


def test_renewing_extends_the_lease(store_kit: StoreKit) -> None:
    store = store_kit.make(lease_ttl=30.0)
    _, claim = store.claim("r", _lease("one"), lambda s: _record("r"))
    before = store.get_run("r").lease_expires
    time.sleep(0.05)
    assert store.renew(claim)
    after = store.get_run("r").lease_expires
    assert after > before and abs(after - (time.time() + 30.0)) < 5.0
    assert claim.valid_until > time.monotonic() + 25.0


def test_what_one_store_flushed_another_reads(store_kit: StoreKit) -> None:
    writer = store_kit.make()
    _, claim = writer.claim("r", _lease("one"), lambda s: _record("r"))
    writer.write(claim, [NodeRecord("a", "succeeded", 1, b"1")], b"{}")
    writer.flush()
    reader = store_kit.make()
    assert reader.load("r").nodes["a"].output == b"1"
    with pytest.raises(flowrt.RunLeased):  # the writer is alive and holds it
        reader.claim("r", _lease("two"), lambda s: _record("r"))
    writer.finish(claim, "failed", 2.0)
    writer.flush()
    _, taken = reader.claim("r", _lease("two"), lambda s: _record("r"))
    assert taken.fence == 2


# -- item 7 of issue 11: no code from a store -----------------------------------------------


class _Marker:
    """Unpickling this runs ``open(path, "w")``: the file appearing is the proof."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def test_a_pickle_in_a_json_store_is_never_loaded(store_kit: StoreKit, tmp_path: Path
                                                   ) -> None:
    marker = tmp_path / "PWNED"
    payload = pickle.dumps(_Marker(marker))
    store = store_kit.make()
    record = attrs.evolve(_record("r"), serializer="pickle", inputs=payload)
    _, claim = store.claim("r", _lease("one"), lambda s: record)
    store.write(claim, [NodeRecord("a", "succeeded", 1, payload)], payload)
    store.finish(claim, "failed", 2.0)
    store.flush()
    stored = store.load("r")
    with pytest.raises(flowrt.StoreError, match=r"pickle.*serializer='pickle'"):
        stored.outputs()
    with pytest.raises(flowrt.StoreError, match="pickle"):
        stored.inputs()
    assert stored.to_dict()["inputs"] is None
    wf = flowrt.Workflow("wf")
    wf.add("a", lambda: 1)
    wf.add("b", lambda a: a, deps=["a"])
    with pytest.raises(flowrt.StoreError, match="pickle"):
        wf.run_sync(store=store, run_id="r", resume="force")
    assert not marker.exists()
    assert store.get_run("r").fence == 1  # refused before the claim


class Box:
    """No JSON for this: only a pickle keeps it."""

    def __init__(self, v: int) -> None:
        self.v = v


def test_pickle_serializer_is_opt_in(store_kit: StoreKit) -> None:
    broken = [True]
    wf = flowrt.Workflow("pickled")
    wf.add("box", lambda: Box(3))

    def bad(box: Box) -> int:
        if broken[0]:
            raise RuntimeError("not yet")
        return box.v

    wf.add("bad", bad)
    json_store = store_kit.make()
    assert isinstance(wf.run_sync(store=json_store, run_id="j").errors["box"],
                      flowrt.SerializationError)
    store = store_kit.make(serializer="pickle")
    first = wf.run_sync(store=store, run_id="p")
    assert first.status is RunStatus.FAILED and first.nodes["box"].status is Status.SUCCEEDED
    broken[0] = False
    again = wf.run_sync(store=store, run_id="p")
    assert again.ok and again["bad"] == 3 and again.nodes["box"].restored
    if store_kit.shared:
        with pytest.raises(flowrt.StoreError, match="serializer='pickle'"):
            wf.run_sync(store=store_kit.make(), run_id="p")


# -- durable runs through the runtime ---------------------------------------------------------


def test_resume_after_failure_runs_only_the_failed_part(any_store: Any) -> None:
    calls: list[str] = []
    broken = True
    wf = flowrt.Workflow("fix")

    @wf.node
    def load() -> list[int]:
        calls.append("load")
        return [1, 2, 3]

    @wf.node
    def other() -> str:
        calls.append("other")
        return "independent"

    @wf.node
    def transform(load: list[int]) -> list[int]:
        calls.append("transform")
        if broken:
            raise ValueError("bad transform")
        return [x * 2 for x in load]

    @wf.node
    def save(transform: list[int]) -> int:
        calls.append("save")
        return sum(transform)

    first = wf.run_sync(store=any_store, run_id="etl-1")
    assert first.status is RunStatus.FAILED
    assert first.nodes["save"].status is Status.SKIPPED
    stored = any_store.load("etl-1")
    assert stored.nodes["transform"].error == "ValueError: bad transform"
    assert "bad transform" in stored.nodes["transform"].traceback
    broken = False
    calls.clear()
    second = wf.run_sync(store=any_store, run_id="etl-1")
    assert second.ok and second["save"] == 12
    assert sorted(calls) == ["save", "transform"]
    assert second.nodes["load"].attempts == 1 and second.nodes["load"].restored
    calls.clear()
    third = wf.run_sync(store=any_store, run_id="etl-1")  # finished: nothing runs
    assert third.ok and third["save"] == 12 and calls == []
    assert third.nodes["transform"].status is Status.SUCCEEDED
    assert any_store.get_run("etl-1").resumes == 1


# -- traces (OpenTelemetry: docs/observability.md) ------------------------------------


def test_a_runs_trace_is_stored_once_and_kept(any_store: Any) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    _, claim = any_store.claim("t", _lease("one"),
                               lambda old: attrs.evolve(_record("t"), trace=traceparent))
    assert any_store.get_run("t").trace == traceparent
    any_store.finish(claim, "failed", 2.0)
    any_store.flush()
    # a later start (whatever its own record says) keeps the first start's trace
    any_store.claim("t", _lease("two"), lambda old: _record("t"))
    assert any_store.get_run("t").trace == traceparent
    assert any_store.get_run("t").resumes == 1
    queued = attrs.evolve(_record("q"), status="queued", queue="default", due=1.0,
                          trace=traceparent)
    assert any_store.submit(queued)
    assert any_store.get_run("q").trace == traceparent
    _, claim = any_store.claim("untraced", _lease("three"), lambda old: _record("untraced"))
    assert any_store.get_run("untraced").trace is None


def test_a_resumed_run_links_to_the_trace_of_its_first_start(any_store: Any) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    broken = True
    wf = flowrt.Workflow("traced")
    wf.add("a", lambda: 1)

    @wf.node
    def b(a: int) -> int:
        if broken:
            raise ValueError("not yet")
        return a + 1

    async def run(request: str) -> flowrt.RunResult:
        async with flowrt.Runtime(store=any_store, tracer_provider=provider) as rt:
            with provider.get_tracer("app").start_as_current_span(request):
                return await rt.run(wf, run_id="t-1")

    assert anyio.run(run, "first request").status is RunStatus.FAILED
    broken = False
    assert anyio.run(run, "second request").ok
    assert anyio.run(run, "third request").ok  # succeeded before: read back, nothing runs
    spans = exporter.get_finished_spans()
    first, second, third = [s for s in spans if s.name == "flowrt.run"]
    request_ids = {s.name: s.context.trace_id for s in spans if s.name.endswith("request")}
    assert first.context.trace_id == request_ids["first request"]
    assert second.context.trace_id == request_ids["second request"]  # the caller's trace
    assert not first.links
    (link,) = second.links
    assert (link.context.trace_id, link.context.span_id) == (
        first.context.trace_id, first.context.span_id)
    assert [s.attributes["flowrt.node"] for s in spans if s.name == "flowrt.node"
            and s.context.trace_id == second.context.trace_id] == ["b"]  # a was restored
    assert third.attributes["flowrt.replayed"] is True
    assert third.attributes["flowrt.status"] == "succeeded"
    record = any_store.get_run("t-1")
    assert record.trace.startswith(f"00-{first.context.trace_id:032x}-"
                                   f"{first.context.span_id:016x}-")


def _two_step(extra: bool = False) -> flowrt.Workflow:
    wf = flowrt.Workflow("shape")
    wf.add("a", lambda: 1)
    wf.add("b", lambda a: a + 1, deps=["a"])
    if extra:
        wf.add("c", lambda b: b + 1, deps=["b"])
    return wf


def test_changed_structure_is_refused_unless_forced(any_store: Any) -> None:
    wf = _two_step()
    wf.add("boom", lambda: 1 / 0)
    assert not wf.run_sync(store=any_store, run_id="r").ok
    changed = _two_step(extra=True)
    with pytest.raises(flowrt.WorkflowChanged, match=r"added 'c'.*removed 'boom'") as info:
        changed.run_sync(store=any_store, run_id="r")
    assert info.value.added == ["c"] and info.value.removed == ["boom"]
    result = changed.run_sync(store=any_store, run_id="r", resume="force")
    assert result.ok and result["c"] == 3


def test_a_resume_refused_for_other_inputs_names_only_the_keys_that_differ(
        any_store: Any) -> None:
    wf = flowrt.Workflow("inputs")
    wf.add("a", lambda day, region, token: day, retries=0)
    wf.add("b", lambda a: 1 / 0, deps=["a"])
    given = {"day": "2024-05-01", "region": "eu", "token": "s3cret"}
    wf.run_sync(given, store=any_store, run_id="r")
    with pytest.raises(ValueError, match=r"other inputs \(different: 'day'\)") as info:
        wf.run_sync({**given, "day": "2024-05-02"}, store=any_store, run_id="r")
    text = str(info.value)
    assert "region" not in text and "token" not in text and "s3cret" not in text
    assert "2024" not in text  # no values either
    with pytest.raises(ValueError, match="not given now: 'token'"):
        wf.run_sync({"day": "2024-05-01", "region": "eu"}, store=any_store, run_id="r")
    assert wf.run_sync(store=any_store, run_id="r")["a"] == "2024-05-01"  # the stored ones


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_an_output_json_cannot_hold_fails_that_node_only(any_store: Any, backend: str) -> None:
    fixed = [False]
    wf = flowrt.Workflow("odd")

    class Opaque:
        pass

    @wf.node(retries=3)
    def obj() -> object:
        return "plain" if fixed[0] else Opaque()

    @wf.node
    def name() -> str:
        raw = os.fsdecode(b"caf\xe9")  # a lone surrogate
        return raw.encode("utf-8", "surrogateescape").decode("latin-1") if fixed[0] else raw

    @wf.node
    def huge() -> int | str:
        return hex(10**5000) if fixed[0] else 10**5000  # hex has no digit limit

    @wf.node
    def opens() -> str:
        if not fixed[0]:  # an error message that holds a lone surrogate and a NUL
            raise FileNotFoundError(2, "No such\x00file", os.fsdecode(b"caf\xe9.txt"))
        return "opened"

    @wf.node
    def fine() -> dict[str, Any]:
        return {"ok": (1, 2)}

    @wf.node
    def after(name: str) -> int:
        return len(name)

    first = wf.run_sync(store=any_store, run_id="r", backend=backend)
    assert first.status is flowrt.RunStatus.FAILED
    for node, match in (("name", "lone surrogate"), ("huge", "4300"), ("obj", "Opaque")):
        error = first.errors[node]
        assert isinstance(error, flowrt.SerializationError), error
        assert f"node {node!r}" in str(error) and match in str(error)
    assert "pickle" in str(first.errors["obj"])
    assert first.nodes["obj"].attempts == 1  # not retried: it would fail the same way
    assert first.nodes["after"].status is Status.SKIPPED
    assert first["fine"] == {"ok": (1, 2)}
    stored = any_store.load("r")
    assert stored.record.status == "failed"
    assert stored.nodes["opens"].error is not None
    assert "caf\\udce9" in stored.nodes["opens"].error
    again = wf.run_sync(store=any_store, run_id="r", backend=backend)  # resumes normally
    assert again.status is flowrt.RunStatus.FAILED and set(again.errors) == {
        "name", "huge", "opens", "obj"}
    assert again.nodes["fine"].restored
    fixed[0] = True
    done = wf.run_sync(store=any_store, run_id="r", backend=backend)
    assert done.ok and done["after"] == 4 and done["opens"] == "opened"


def test_unstorable_data_fails_only_the_node_that_set_it(any_store: Any) -> None:
    wf = flowrt.Workflow("bad-data")

    @wf.node
    def setter(ctx: flowrt.Context) -> None:
        ctx.data.set("handle", object())

    @wf.node
    def later(setter: None) -> str:
        return "fine"

    @wf.node
    async def independent() -> str:
        await anyio.sleep(0.05)
        return "fine too"

    result = wf.run_sync(store=any_store)
    error = result.errors["setter"]
    assert "key 'handle'" in str(error) and "object" in str(error)
    assert set(result.errors) == {"setter"}
    assert result["independent"] == "fine too"


def test_workflow_data_is_restored_on_resume(any_store: Any) -> None:
    wf = flowrt.Workflow("pages")
    broken = [True]

    @wf.node
    def crawl(ctx: flowrt.Context) -> int:
        ctx.data.set("cursor", ("page", 41))
        return 41

    @wf.node
    def index(crawl: int, ctx: flowrt.Context) -> str:
        if broken[0]:
            raise ConnectionError("index down")
        return f"{crawl} up to {ctx.data['cursor']}"

    assert not wf.run_sync(store=any_store, run_id="p").ok
    broken[0] = False
    assert wf.run_sync(store=any_store, run_id="p")["index"] == "41 up to ('page', 41)"


def test_resume_with_trigger_rules_after_restore(any_store: Any) -> None:
    wf = flowrt.Workflow("refund")
    wf.add("charge", lambda: "paid")
    fail = [True]

    def ship(charge: str) -> str:
        if fail[0]:
            raise RuntimeError("no courier")
        return "shipped"

    wf.add("ship", ship, deps=["charge"])
    wf.add("refund", lambda: "refunded", after=["charge"], trigger="one_failed")
    first = wf.run_sync(store=any_store, run_id="t")
    assert first.nodes["refund"].status is Status.SKIPPED
    fail[0] = False
    second = wf.run_sync(store=any_store, run_id="t")
    assert second.ok and second.nodes["refund"].status is Status.SKIPPED


def test_an_error_before_the_run_starts_gives_the_lease_back(any_store: Any) -> None:
    wf = flowrt.Workflow("lease")
    wf.add("a", lambda x: x)

    async def main() -> None:
        async with flowrt.Runtime(store=any_store) as rt:
            with pytest.raises(ValueError, match="name of a node"):
                await rt.run(wf, {"x": 1, "a": 2}, run_id="r")
            with pytest.raises(ValueError, match="limit 'db'"):
                await rt.run(wf, {"x": 1}, run_id="r", limits={"db": 0})
            result = await rt.run(wf, {"x": 1}, run_id="r")
            assert result["a"] == 1

    anyio.run(main)


@pytest.mark.anyio
async def test_cancelled_run_stays_resumable(any_store: Any) -> None:
    wf = flowrt.Workflow("cancel")
    calls: list[str] = []

    @wf.node
    async def quick() -> int:
        calls.append("quick")
        return 1

    @wf.node
    async def slow(quick: int) -> int:
        calls.append("slow")
        await anyio.sleep(0.3)
        return quick + 1

    with anyio.move_on_after(0.1):
        await wf.run(store=any_store, run_id="c")
    run = any_store.get_run("c")
    assert run is not None and run.status == "cancelled" and run.owner is None
    assert any_store.load("c").nodes["slow"].status == "cancelled"
    result = await wf.run(store=any_store, run_id="c")
    assert result["slow"] == 2 and calls == ["quick", "slow", "slow"]


@pytest.mark.anyio
async def test_concurrent_runs_share_one_store(any_store: Any) -> None:
    wf = flowrt.Workflow("many")

    @wf.node
    async def a(k: int) -> int:
        await anyio.sleep(0.001)
        return k

    @wf.node
    async def b(a: int) -> int:
        await anyio.sleep(0.001)
        return a * 2

    results = {}
    async with flowrt.Runtime(store=any_store) as rt, anyio.create_task_group() as tg:
        for k in range(12):

            async def one(k: int = k) -> None:
                results[k] = await rt.run(wf, {"k": k}, run_id=f"run-{k}")

            tg.start_soon(one)
    assert all(results[k]["b"] == 2 * k for k in range(12))
    assert len(any_store.runs()) == 12
    assert all(r.status == "succeeded" for r in any_store.runs(workflow="many"))


@pytest.mark.anyio
async def test_same_run_twice_in_one_process_is_refused(any_store: Any) -> None:
    wf = flowrt.Workflow("twice")

    @wf.node
    async def slow() -> int:
        await anyio.sleep(0.2)
        return 1

    async with flowrt.Runtime(store=any_store) as rt, anyio.create_task_group() as tg:
        tg.start_soon(functools.partial(rt.run, wf, run_id="same"))
        await anyio.sleep(0.05)
        with pytest.raises(flowrt.RunLeased):
            await rt.run(wf, run_id="same")


def test_resuming_with_the_same_dataclass_inputs(any_store: Any) -> None:
    @dataclasses.dataclass
    class Order:
        id: str
        qty: int

    wf = flowrt.Workflow("dc")
    fail = [True]

    def check(order: Order) -> int:
        if fail[0]:
            raise RuntimeError("not yet")
        return order.qty

    wf.add("check", check)
    assert not wf.run_sync({"order": Order("A", 3)}, store=any_store, run_id="r").ok
    fail[0] = False
    result = wf.run_sync({"order": Order("A", 3)}, store=any_store, run_id="r")
    assert result["check"] == 3  # the caller's object, not the stored dict


# -- typed outputs come back typed (issue 11, item 15) ------------------------------------------


@dataclasses.dataclass
class Item:
    sku: str
    qty: int


@dataclasses.dataclass(frozen=True)
class Order:
    id: str
    items: list[Item]
    gift: Item | None = None
    total: int = dataclasses.field(init=False, default=0)


@attrs.define
class Quote:
    price: float
    _note: str = ""


class Point(NamedTuple):
    x: int
    item: Item


class Color(enum.IntEnum):
    RED = 1


@dataclasses.dataclass
class Tree:
    value: int
    kids: list[Tree]


class Customer(pydantic.BaseModel):
    name: str
    orders: list[Item]


def typed_workflow(fail: list[bool]) -> flowrt.Workflow:
    wf = flowrt.Workflow("typed")

    @wf.node
    def order(code: Item) -> Order:
        made = Order("A1", [Item(code.sku, 2)], Item("gift", 1))
        object.__setattr__(made, "total", 3)
        return made

    @wf.node
    def quote() -> Quote:
        return Quote(9.5, "cheap")

    @wf.node
    def customer() -> Customer:
        return Customer(name="ada", orders=[Item("x", 1)])

    @wf.node
    def many() -> dict[str, list[Quote]]:
        return {"q": [Quote(1.0)]}

    @wf.node
    def point() -> tuple[Point, Color | None]:
        return Point(1, Item("p", 1)), Color.RED

    @wf.node
    def tree() -> Tree:
        return Tree(1, [Tree(2, [])])

    @wf.node
    def check(order: Order, quote: Quote, customer: Customer, many: dict[str, list[Quote]],
              point: tuple[Point, Color], tree: Tree, code: Item) -> str:
        if fail[0]:
            raise RuntimeError("not yet")
        assert isinstance(order.items[0], Item) and isinstance(order.gift, Item)
        assert order.total == 3
        assert isinstance(quote, Quote) and quote._note == "cheap"
        assert isinstance(customer, Customer) and isinstance(customer.orders[0], Item)
        assert isinstance(many["q"][0], Quote)
        assert isinstance(point[0], Point) and isinstance(point[0].item, Item)
        assert point[1] is Color.RED
        assert isinstance(tree.kids[0], Tree)
        assert isinstance(code, Item)
        return "typed"

    return wf


def test_typed_outputs_come_back_typed_after_a_resume(any_store: Any) -> None:
    fail = [True]
    first = typed_workflow(fail).run_sync({"code": Item("sku-1", 0)}, store=any_store,
                                          run_id="t")
    assert set(first.errors) == {"check"}
    fail[0] = False
    second = typed_workflow(fail).run_sync(store=any_store, run_id="t")  # inputs read back
    assert second.ok and second["check"] == "typed"
    assert second.nodes["order"].restored and not second.nodes["check"].restored
    assert isinstance(second["order"], Order)
    third = typed_workflow(fail).run_sync(store=any_store, run_id="t")  # a replay: typed too
    assert third.ok and isinstance(third["customer"], Customer)
    assert all(node.restored for node in third.nodes.values())


def test_result_and_store_tell_restored_nodes_from_nodes_run_again(any_store: Any) -> None:
    broken = [True]
    wf = flowrt.Workflow("flaky")
    wf.add("a", lambda: {"rows": [1, 2]})

    def b(a: dict[str, Any]) -> int:
        if broken[0]:
            raise RuntimeError("b is broken")
        return len(a["rows"])

    wf.add("b", b)
    wf.run_sync(store=any_store, run_id="r")
    broken[0] = False
    result = wf.run_sync(store=any_store, run_id="r")
    assert result.nodes["a"].restored and not result.nodes["b"].restored
    stored = any_store.load("r")
    assert stored is not None and stored.record.resumes == 1
    assert stored.restored("a") and not stored.restored("b")
    assert not wf.run_sync(store=any_store, run_id="fresh").nodes["a"].restored


# -- a holder that lost its run stops ----------------------------------------------------------


@pytest.mark.anyio
async def test_renewal_that_updates_nothing_stops_the_run(shared_kit: StoreKit) -> None:
    """Another process takes the run over while no node ends: the lease renewal finds
    the fence changed, and the run stops at once (not when its 5 s node ends)."""
    wf = flowrt.Workflow("long")

    @wf.node
    async def quick() -> int:
        return 1

    @wf.node
    async def slow(quick: int) -> int:
        await anyio.sleep(5)
        return quick

    async def take_over() -> None:
        await anyio.sleep(0.3)
        await anyio.to_thread.run_sync(shared_kit.take_over, "r")

    store = shared_kit.make(lease_ttl=0.3)  # renewed every 0.1 s
    started = time.monotonic()
    async with flowrt.Runtime(store=store) as rt, anyio.create_task_group() as tg:
        tg.start_soon(take_over)
        with pytest.raises(flowrt.LeaseLost, match="process 1 on elsewhere"):
            await rt.run(wf, run_id="r")
    assert time.monotonic() - started < 3.0  # not the 5 s of the node
    stored = shared_kit.make().load("r")
    assert stored is not None
    assert stored.record.status == "running"  # the holder's "cancelled" was refused
    assert set(stored.nodes) == {"quick"}


# -- processes ---------------------------------------------------------------------------------
#
# One owner per run, for real (issue 11, item 6; docs/decisions/012-fencing.md): before
# claims read and leased in one transaction, two processes starting or resuming one run
# id at the same moment both ran every node in about 30% of the trials, and a holder
# paused past ``lease_ttl`` kept writing after another process had taken over.


def _spawn(*args: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(HERE / "lease_worker.py"), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _events(log: Path) -> list[tuple[str, str, str, int, float]]:
    """(event, run id, node, pid, time) for every line of a worker log."""
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        event, run_id, node, pid, when = line.split()
        out.append((event, run_id, node, int(pid), float(when)))
    return out


def _wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting")
        time.sleep(0.01)


TRIALS = 60  # per kind; before the fix (decision 012) ~30% of the trials ran nodes twice


@pytest.mark.parametrize("kind", ["start", "resume"])
def test_two_processes_racing_for_one_run_id_run_each_node_once(
        shared_kit: StoreKit, tmp_path: Path, kind: str) -> None:
    log = tmp_path / "log"
    nodes = ["n0", "n1", "n2", "n3", "b"]
    expected = dict.fromkeys(nodes, 1)
    store = shared_kit.make()  # created before the race (racing to create: elsewhere)
    if kind == "resume":  # runs that failed at n2: n0, n1 and b succeeded
        wf = lease_worker.build(str(tmp_path / "setup.log"), 4, 0.0, fail_at="n2")
        for k in range(TRIALS):
            assert not wf.run_sync(store=store, run_id=f"resume-{k}").ok
        expected = {"n0": 0, "n1": 0, "b": 0, "n2": 1, "n3": 1}
    store.close()
    t0 = time.time() + 2.5  # both processes are up by then
    racers = [_spawn("race", shared_kit.spec, log, backend, kind, TRIALS, t0, 0.05, seed)
              for backend, seed in (("asyncio", 1), ("trio", 2))]
    outcomes: dict[int, list[str]] = collections.defaultdict(list)
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
        for line in out.splitlines():
            k, what = line.split(" ", 1)
            outcomes[int(k)].append(what)
    runs: collections.Counter[tuple[str, str]] = collections.Counter(
        (run_id, node) for event, run_id, node, _, _ in _events(log) if event == "start")
    doubles = {key: c for key, c in runs.items() if c > 1}
    assert not doubles, f"nodes run more than once: {doubles}"
    for k in range(TRIALS):
        got = {node: runs[(f"{kind}-{k}", node)] for node in nodes}
        assert got == expected, (k, got, outcomes[k])
        assert len(outcomes[k]) == 2
    refused = sum(what == "leased" for whats in outcomes.values() for what in whats)
    replayed = sum(what == "ran 0" for whats in outcomes.values() for what in whats)
    print(f"{shared_kit.kind} {kind}: {TRIALS} trials, 0 double executions; the second "
          f"process was refused {refused} times and replayed the finished run {replayed} "
          "times")


def test_a_paused_holder_is_fenced_out_and_stops(shared_kit: StoreKit, tmp_path: Path) -> None:
    """SIGSTOP the holder past lease_ttl, let another process take the run over, SIGCONT
    the first: its late writes are refused, it stops without starting another node, and
    only the second reports succeeded."""
    log = tmp_path / "log"
    ttl = 1.0
    shared_kit.make().close()  # the store exists before either process opens it
    holder = _spawn("run", shared_kit.spec, "r", log, "asyncio", ttl, 6, 0.4)
    try:
        _wait_for(lambda: any(e[0] == "start" and e[2] == "n1" for e in _events(log)))
        time.sleep(0.1)
        while True:  # paused while holding a lock a claim needs, it would block everyone
            holder.send_signal(signal.SIGSTOP)
            if shared_kit.unlocked("r"):
                break
            holder.send_signal(signal.SIGCONT)
            time.sleep(0.01)
        stopped_at = time.time()
        time.sleep(ttl + 0.5)  # its lease runs out
        taker = _spawn("run", shared_kit.spec, "r", log, "trio", ttl, 6, 0.4)
        _wait_for(lambda: any(e[0] == "start" and e[3] == taker.pid for e in _events(log)))
        time.sleep(0.1)
        resumed_at = time.time()
        holder.send_signal(signal.SIGCONT)
        out_h, err_h = holder.communicate(timeout=30)
        out_t, err_t = taker.communicate(timeout=60)
    finally:
        if holder.poll() is None:
            holder.send_signal(signal.SIGCONT)
            holder.kill()
    assert holder.returncode == 3, (out_h, err_h)
    assert taker.returncode == 0 and out_t.strip() == "succeeded", (out_t, err_t)
    noticed = float(out_h.split()[1]) - resumed_at
    events = _events(log)
    late_starts = [e for e in events if e[3] == holder.pid and e[0] == "start"
                   and e[4] > stopped_at]
    assert not late_starts, late_starts  # it started nothing after it was resumed
    late_ends = {e[2] for e in events if e[3] == holder.pid and e[0] == "end"
                 and e[4] > stopped_at}
    stored = shared_kit.make().load("r")
    record = stored.record
    # not the holder's "cancelled"
    assert (record.status, record.fence, record.owner) == ("succeeded", 2, None)
    # what the holder finished after the takeover was recorded by the taker, not by it
    assert all(stored.nodes[node].fence == 2 for node in late_ends), (late_ends, stored)
    assert set(stored.nodes) == {f"n{i}" for i in range(6)} | {"b"}
    print(f"{shared_kit.kind}: the fenced-out holder noticed and stopped "
          f"{noticed * 1000:.0f} ms after SIGCONT")


@pytest.mark.parametrize("seed", range(6))
def test_sigkill_at_random_points_then_resume(shared_kit: StoreKit, tmp_path: Path,
                                              seed: int) -> None:
    """A node the store recorded as succeeded never runs again; the resumed run is
    complete and right, its WorkflowData too."""
    rng = random.Random(seed)
    log = tmp_path / "starts.log"
    backend = "trio" if seed % 2 else "asyncio"
    shared_kit.make().close()  # the store exists: the kill lands in the run, not its setup
    proc = start_worker("durable_worker.py", shared_kit.spec, "crash", log, backend)
    # wait until it has started some nodes, then kill it at a random moment
    deadline = time.monotonic() + 30
    while len(starts(log)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.15))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode in (-signal.SIGKILL, 0)
    reader = shared_kit.make()
    stored = reader.load("crash")
    done_before = {n for n, r in stored.nodes.items() if r.status == "succeeded"} \
        if stored else set()

    rerun = start_worker("durable_worker.py", shared_kit.spec, "crash", log, backend)
    _out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err.decode()
    # nothing the store had recorded as succeeded started again
    assert not done_before & set(starts(log, rerun.pid))
    stored = reader.load("crash")
    assert stored is not None and stored.record.status == "succeeded"
    assert stored.outputs() == durable_worker.expected()
    data = reader.serializer.loads(stored.data) if stored.data else {}
    assert {k for k in data if k.startswith("seen-")} == {
        f"seen-n{i}" for i in range(0, 40, 7)}


def test_processes_share_one_store(shared_kit: StoreKit, tmp_path: Path) -> None:
    log = tmp_path / "log"
    shared_kit.make().close()
    procs = [start_worker("durable_worker.py", shared_kit.spec, f"proc-{k}", log)
             for k in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
    store = shared_kit.make()
    for k in range(3):
        stored = store.load(f"proc-{k}")
        assert stored is not None and stored.outputs() == durable_worker.expected()


def test_second_process_on_the_same_run_is_refused(shared_kit: StoreKit, tmp_path: Path
                                                   ) -> None:
    log = tmp_path / "log"
    shared_kit.make().close()
    proc = start_worker("durable_worker.py", shared_kit.spec, "shared", log)
    store = shared_kit.make()
    try:
        deadline = time.monotonic() + 30
        while not starts(log) and time.monotonic() < deadline:
            time.sleep(0.005)
        with pytest.raises(flowrt.RunLeased, match=f"process {proc.pid}"):
            durable_worker.build(str(log)).run_sync(store=store, run_id="shared")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # its holder is dead: the run can be resumed here
    result = durable_worker.build(str(log)).run_sync(store=store, run_id="shared")
    assert result.ok and dict(result.outputs) == durable_worker.expected()


def test_a_live_holder_is_shown_and_a_dead_one_is_interrupted(shared_kit: StoreKit,
                                                              tmp_path: Path) -> None:
    """RunRecord says who holds a running run and until when, and tells a live run from
    one whose process is gone (what ``runs`` and ``show`` display)."""
    log = tmp_path / "log"
    shared_kit.make().close()
    proc = _spawn("run", shared_kit.spec, "r", log, "asyncio", 60, 3, 5.0)
    store = shared_kit.make()
    try:
        _wait_for(lambda: bool(_events(log)))
        record = store.get_run("r")
        assert record is not None and record.status == "running"
        assert record.owner is not None and record.owner.pid == proc.pid
        assert record.lease_expires is not None and record.lease_expires > time.time()
        assert not record.is_interrupted()
    finally:
        proc.kill()
        proc.wait()
    record = store.get_run("r")
    assert record is not None and record.status == "running" and record.is_interrupted()
    # had the process lived on another host: trusted until its lease runs out
    elsewhere = attrs.evolve(record, owner=Lease("another-host", proc.pid, "t"),
                             lease_expires=time.time() + 30)
    assert not elsewhere.is_interrupted()
    assert elsewhere.is_interrupted(now=time.time() + 31)
