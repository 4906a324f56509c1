"""OpenTelemetry: spans and their parentage, metrics and log correlation, with the SDK's
in-memory exporter and metric reader; through threads, a process pool and a real Dask
LocalCluster; on both backends.

Every runtime here gets its providers with ``Runtime(tracer_provider=...,
meter_provider=...)``: the global providers can be set once per process, so the tests
of the global ones run in subprocesses.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog

import flowrt

pytest.importorskip("opentelemetry.sdk")
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import remote_tasks  # noqa: E402
from subproc import run_program  # noqa: E402

pytestmark = pytest.mark.anyio


class Traces:
    """A tracer provider whose finished spans are kept in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("test")

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def node(self, node: str) -> ReadableSpan:
        (span,) = [s for s in self.named("flowrt.node")
                   if s.attributes and s.attributes["flowrt.node"] == node]
        return span

    def run(self) -> ReadableSpan:
        (span,) = self.named("flowrt.run")
        return span


@pytest.fixture
def traces() -> Traces:
    return Traces()


def ids(span: ReadableSpan) -> tuple[int, int]:
    assert span.context is not None
    return span.context.trace_id, span.context.span_id


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def current_ids() -> tuple[int, int]:
    context = trace.get_current_span().get_span_context()
    return context.trace_id, context.span_id


# -- spans --------------------------------------------------------------------------


async def test_run_and_node_spans_nest_under_the_callers_span(traces: Traces) -> None:
    wf = flowrt.Workflow("orders")

    @wf.node
    async def fetch() -> tuple[int, int]:
        await anyio.sleep(0)  # really suspends: runs in a runner of its own
        with traces.tracer.start_as_current_span("user span in async node"):
            pass
        return current_ids()

    @wf.node
    def price(fetch: Any) -> tuple[int, int]:  # a worker thread
        with traces.tracer.start_as_current_span("user span in thread"):
            pass
        return current_ids()

    @wf.node
    async def total(price: Any) -> int:
        return 1

    async with flowrt.Runtime(tracer_provider=traces.provider) as rt:
        with traces.tracer.start_as_current_span("request") as request:
            result = await rt.run(wf, run_id="r-1")
    assert result.ok
    run = traces.run()
    assert parent_id(run) == request.get_span_context().span_id
    assert run.attributes == {"flowrt.workflow": "orders", "flowrt.run_id": "r-1",
                              "flowrt.nodes": 3, "flowrt.status": "succeeded"}
    assert run.status.status_code is StatusCode.OK
    for name in ("fetch", "price", "total"):
        span = traces.node(name)
        assert parent_id(span) == ids(run)[1]
        assert span.attributes is not None
        assert span.attributes["flowrt.node"] == name
        assert span.attributes["flowrt.attempts"] == 1
        assert span.attributes["flowrt.status"] == "succeeded"
        assert span.status.status_code is StatusCode.OK
    # the node's code runs with its node span current, and the user's spans nest in it
    assert result["fetch"] == ids(traces.node("fetch"))
    assert result["price"] == ids(traces.node("price"))
    (in_async,) = traces.named("user span in async node")
    (in_thread,) = traces.named("user span in thread")
    assert parent_id(in_async) == ids(traces.node("fetch"))[1]
    assert parent_id(in_thread) == ids(traces.node("price"))[1]


async def test_a_run_started_outside_any_span_is_a_root(traces: Traces) -> None:
    wf = flowrt.Workflow("w")
    wf.add("a", lambda: 1)
    async with flowrt.Runtime(tracer_provider=traces.provider) as rt:
        await rt.run(wf)
    assert traces.run().parent is None


async def test_retries_are_events_of_the_node_span(traces: Traces) -> None:
    wf = flowrt.Workflow("w")
    calls = []

    @wf.node(retry=flowrt.Retry(attempts=3, delay=0))
    async def flaky() -> str:
        calls.append(current_ids())
        if len(calls) < 3:
            raise ConnectionError(f"try {len(calls)}")
        return "ok"

    async with flowrt.Runtime(tracer_provider=traces.provider) as rt:
        result = await rt.run(wf)
    assert result.ok
    span = traces.node("flaky")
    assert span.attributes is not None and span.attributes["flowrt.attempts"] == 3
    retries = [e for e in span.events if e.name == "flowrt.retry"]
    assert [(e.attributes or {}).get("flowrt.attempt") for e in retries] == [1, 2]
    assert (retries[0].attributes or {})["exception.type"] == "ConnectionError"
    assert (retries[0].attributes or {})["exception.message"] == "try 1"
    assert set(calls) == {ids(span)}  # every attempt ran inside the one node span
    assert span.status.status_code is StatusCode.OK


async def test_a_failure_records_the_exception_and_sets_error(traces: Traces) -> None:
    wf = flowrt.Workflow("w")

    @wf.node
    async def charge() -> None:
        raise ValueError("card declined")

    @wf.node
    async def ship(charge: Any) -> None: ...

    async with flowrt.Runtime(tracer_provider=traces.provider) as rt:
        result = await rt.run(wf)
    assert result.status is flowrt.RunStatus.FAILED
    span = traces.node("charge")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "ValueError: card declined"
    (exception,) = [e for e in span.events if e.name == "exception"]
    assert exception.attributes is not None
    assert exception.attributes["exception.type"] == "ValueError"
    assert exception.attributes["exception.message"] == "card declined"
    assert not [s for s in traces.named("flowrt.node")
                if s.attributes and s.attributes["flowrt.node"] == "ship"]  # never ran
    run = traces.run()
    assert run.status.status_code is StatusCode.ERROR
    assert run.status.description == "failed: charge"
    assert run.attributes is not None and run.attributes["flowrt.status"] == "failed"


async def test_a_run_timeout_ends_every_span_cancelled(traces: Traces) -> None:
    wf = flowrt.Workflow("w")

    @wf.node
    async def slow() -> None:
        await anyio.sleep(30)

    @wf.node
    def slow_sync() -> None:
        import time
        time.sleep(0.3)

    async with flowrt.Runtime(tracer_provider=traces.provider) as rt:
        result = await rt.run(wf, timeout=0.1)
    assert result.status is flowrt.RunStatus.CANCELLED
    for name in ("slow", "slow_sync"):
        span = traces.node(name)
        assert span.end_time is not None
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "cancelled"
        assert span.attributes is not None and span.attributes["flowrt.status"] == "cancelled"
    run = traces.run()
    assert run.attributes is not None and run.attributes["flowrt.status"] == "cancelled"
    assert run.status.status_code is StatusCode.ERROR


async def test_a_caller_cancelled_from_outside_ends_every_span(traces: Traces) -> None:
    wf = flowrt.Workflow("w")

    @wf.node
    async def slow() -> None:
        await anyio.sleep(30)

    async with flowrt.Runtime(tracer_provider=traces.provider) as rt:
        with anyio.move_on_after(0.1):
            await rt.run(wf)
        # the caller's context is left as it was: no flowrt span current here
        assert not trace.get_current_span().get_span_context().is_valid
    span = traces.node("slow")
    assert span.status.description == "cancelled"
    run = traces.run()
    assert run.end_time is not None
    assert run.attributes is not None and run.attributes["flowrt.status"] == "cancelled"


async def test_fail_fast_cancels_and_ends_the_other_spans(traces: Traces) -> None:
    wf = flowrt.Workflow("w")

    @wf.node
    async def bad() -> None:
        await anyio.sleep(0.05)
        raise RuntimeError("boom")

    @wf.node
    async def slow() -> None:
        await anyio.sleep(30)

    async with flowrt.Runtime(tracer_provider=traces.provider) as rt:
        result = await rt.run(wf, fail_fast=True)
    assert result.status is flowrt.RunStatus.FAILED
    assert traces.node("bad").status.description == "RuntimeError: boom"
    assert traces.node("slow").status.description == "cancelled"
    assert traces.run().status.status_code is StatusCode.ERROR


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_every_started_node_span_ends_when_cancelled(backend: str) -> None:
    # A span processor counts the spans started and ended: after 100 cancelled runs
    # (timeouts and outer scopes at random points) they match.
    out = run_program("""
        import random, anyio, flowrt
        from opentelemetry.sdk.trace import TracerProvider, SpanProcessor

        class Count(SpanProcessor):
            started = ended = 0
            bad = []
            def on_start(self, span, parent_context=None):
                Count.started += 1
            def on_end(self, span):
                Count.ended += 1
                if span.status.status_code.name == "UNSET" or span.attributes[
                        "flowrt.status"] not in ("succeeded", "failed", "cancelled"):
                    Count.bad.append((span.name, span.status, dict(span.attributes)))

        provider = TracerProvider()
        provider.add_span_processor(Count())
        wf = flowrt.Workflow("w")

        @wf.node(retry=flowrt.Retry(attempts=3, delay=0.001, jitter=0))
        async def a():
            await anyio.sleep(random.random() * 0.003)
            if random.random() < 0.5:
                raise ValueError("flaky")

        @wf.node
        def b(a):
            return 1

        @wf.node(limit="one")
        async def c(a):
            await anyio.sleep(random.random() * 0.003)

        @wf.node(limit="one")
        async def d(a):
            await anyio.sleep(random.random() * 0.003)

        async def main():
            async with flowrt.Runtime(tracer_provider=provider, limits={"one": 1}) as rt:
                async with anyio.create_task_group() as tg:
                    for trial in range(100):
                        delay = random.random() * 0.008
                        if trial % 2:
                            tg.start_soon(lambda: rt.run(wf, timeout=delay))
                        else:
                            async def cancelled():
                                with anyio.move_on_after(delay):
                                    await rt.run(wf)
                            tg.start_soon(cancelled)
                        await anyio.sleep(0.001)
        anyio.run(main, backend=BACKEND)
        assert Count.started == Count.ended, (Count.started, Count.ended)
        assert not Count.bad, Count.bad[:3]
        print("ok", Count.started)
    """, backend=backend, timeout=120)
    assert out.startswith("ok")


# -- other processes ------------------------------------------------------------------


async def test_the_span_context_crosses_into_a_process_pool(traces: Traces) -> None:
    wf = flowrt.Workflow("w")
    wf.add("ids", remote_tasks.span_ids, executor="process")
    wf.add("user", remote_tasks.user_span_parent, executor="process")
    async with (flowrt.ProcessExecutor(max_workers=1) as pool,
                flowrt.Runtime(tracer_provider=traces.provider, executor=pool) as rt):
        result = await rt.run(wf)
    assert result.ok, result.errors
    assert result["ids"] == ids(traces.node("ids"))
    # a span the worker opens with its own SDK is a child of the node's span
    assert result["user"] == ids(traces.node("user"))


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.upload_file(str(HERE / "remote_tasks.py"))
        yield client


async def test_the_span_context_crosses_into_dask_workers(traces: Traces,
                                                          dask_client: Any) -> None:
    wf = flowrt.Workflow("w")
    wf.add("ids", remote_tasks.span_ids)
    wf.add("user", remote_tasks.user_span_parent)
    executor = flowrt.DaskExecutor(dask_client)
    async with flowrt.Runtime(tracer_provider=traces.provider, executor=executor) as rt:
        result = await rt.run(wf)
    assert result.ok, result.errors
    assert result["ids"] == ids(traces.node("ids"))
    assert result["user"] == ids(traces.node("user"))
    assert parent_id(traces.node("ids")) == ids(traces.run())[1]


async def test_untraced_process_calls_are_not_wrapped() -> None:
    # no provider: the callable goes to the pool as it is (nothing extra to pickle)
    wf = flowrt.Workflow("w")
    wf.add("ids", remote_tasks.span_ids, executor="process")
    async with flowrt.Runtime() as rt:
        assert rt._shared.telemetry is None
        result = await rt.run(wf)
    assert not trace.SpanContext(*result["ids"], is_remote=False).is_valid


# -- metrics ----------------------------------------------------------------------------


def metric_points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    points: dict[str, list[Any]] = {}
    if data is None:
        return points
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    return points


def by(points: list[Any], *keys: str) -> dict[tuple[Any, ...], Any]:
    return {tuple((p.attributes or {}).get(k) for k in keys): p for p in points}


async def test_metrics_count_runs_and_nodes_and_time_nodes(tmp_path: Path) -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    wf = flowrt.Workflow("shop")

    @wf.node
    async def a() -> int:
        return 1

    @wf.node
    async def b(a: int) -> None:
        raise ValueError("no")

    @wf.node
    async def c(b: Any) -> None: ...

    async with flowrt.Runtime(meter_provider=meters) as rt:
        assert rt._shared.telemetry is not None
        assert rt._shared.telemetry.tracer is None  # metrics only: no spans made
        await rt.run(wf)
        await rt.run(wf)
    points = metric_points(reader)
    runs = by(points["flowrt.runs"], "flowrt.workflow", "flowrt.status")
    assert runs[("shop", "failed")].value == 2
    nodes = by(points["flowrt.nodes"], "flowrt.status")
    assert nodes[("succeeded",)].value == 2
    assert nodes[("failed",)].value == 2
    assert nodes[("skipped",)].value == 2
    durations = by(points["flowrt.node.duration"], "flowrt.node")
    assert durations[("a",)].count == 2
    assert durations[("b",)].count == 2
    assert ("c",) not in durations  # skipped: it never ran
    assert by(points["flowrt.runs.active"], "flowrt.workflow")[("shop",)].value == 0


async def test_bypassed_nodes_are_counted_and_have_no_span(traces: Traces) -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    wf = flowrt.Workflow("route")

    @wf.branch
    def route() -> str:
        return "left"

    @wf.node(after=[route])
    async def left() -> str:
        return "l"

    @wf.node(after=[route])
    async def right() -> str:
        return "r"

    async with flowrt.Runtime(tracer_provider=traces.provider, meter_provider=meters) as rt:
        assert (await rt.run(wf)).ok
    nodes = by(metric_points(reader)["flowrt.nodes"], "flowrt.status")
    assert nodes[("succeeded",)].value == 2 and nodes[("bypassed",)].value == 1
    assert sorted(s.attributes["flowrt.node"] for s in traces.named("flowrt.node")
                  if s.attributes) == ["left", "route"]


async def test_limit_usage_and_queue_depth_are_observed(tmp_path: Path) -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    wf = flowrt.Workflow("w")
    inside = anyio.Event()
    leave = anyio.Event()

    @wf.node(limit="api")
    async def call() -> None:
        inside.set()
        await leave.wait()

    async with flowrt.Runtime(meter_provider=meters, limits={"api": 3},
                              store=str(tmp_path / "runs.db")) as rt:
        await rt.submit(wf, queue="emails")
        await rt.submit(wf, queue="emails")
        await rt.submit(wf)
        async with anyio.create_task_group() as tg:
            tg.start_soon(rt.run, wf)
            await inside.wait()
            points = metric_points(reader)
            leave.set()
    usage = by(points["flowrt.limit.usage"], "flowrt.limit")
    assert usage[("api",)].value == 1
    assert by(points["flowrt.limit.capacity"], "flowrt.limit")[("api",)].value == 3
    depth = by(points["flowrt.queue.depth"], "flowrt.queue")
    assert depth[("emails",)].value == 2
    assert depth[("default",)].value == 1
    assert by(points["flowrt.runs.active"], "flowrt.workflow")[("w",)].value == 1
    # a closed runtime is observed no more
    assert "flowrt.limit.usage" not in metric_points(reader)


# -- logs -------------------------------------------------------------------------------


async def test_ctx_log_records_carry_the_node_spans_ids(traces: Traces,
                                                       caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    structlog.reset_defaults()
    wf = flowrt.Workflow("w")

    @wf.node
    async def a(ctx: flowrt.Context) -> None:
        ctx.log.info("charging")

    @wf.node
    def b(ctx: flowrt.Context) -> None:  # a worker thread
        ctx.log.info("shipping")

    with caplog.at_level(logging.INFO, logger="flowrt"):
        async with flowrt.Runtime(tracer_provider=traces.provider) as rt:
            await rt.run(wf)
        async with flowrt.Runtime() as rt:  # no tracing: no ids
            await rt.run(wf)
    charging = [r for r in caplog.records if r.getMessage() == "charging"]
    shipping = [r for r in caplog.records if r.getMessage() == "shipping"]
    trace_id, span_id = ids(traces.node("a"))
    assert charging[0].trace_id == format(trace_id, "032x")  # type: ignore[attr-defined]
    assert charging[0].span_id == format(span_id, "016x")  # type: ignore[attr-defined]
    assert shipping[0].span_id == format(ids(traces.node("b"))[1], "016x")  # type: ignore[attr-defined]
    assert not hasattr(charging[1], "trace_id")
    assert not hasattr(shipping[1], "span_id")


# -- switched on once, when a runtime opens ---------------------------------------------


async def test_no_provider_means_no_telemetry_object() -> None:
    # the tests never set the global providers: the API's proxies are in place
    wf = flowrt.Workflow("w")
    wf.add("a", lambda: 1)
    async with flowrt.Runtime() as rt:
        assert rt._shared.telemetry is None
        assert (await rt.run(wf)).ok


async def test_a_no_op_provider_is_off() -> None:
    async with flowrt.Runtime(tracer_provider=trace.NoOpTracerProvider()) as rt:
        assert rt._shared.telemetry is None


def test_the_global_providers_are_used_and_the_runtimes_own_override_them() -> None:
    out = run_program("""
        import anyio, flowrt
        from opentelemetry import trace, metrics
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        def traced():
            exporter = InMemorySpanExporter()
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            return provider, exporter

        wf = flowrt.Workflow("w")
        wf.add("a", lambda: 1)

        async def main():
            async with flowrt.Runtime() as rt:
                assert rt._shared.telemetry is None  # nothing configured yet
            global_tp, global_spans = traced()
            trace.set_tracer_provider(global_tp)
            global_reader = InMemoryMetricReader()
            metrics.set_meter_provider(MeterProvider(metric_readers=[global_reader]))
            async with flowrt.Runtime() as rt:
                await rt.run(wf)
            await wf.run()  # a private runtime: the global providers too
            assert len([s for s in global_spans.get_finished_spans()
                        if s.name == "flowrt.run"]) == 2
            own_tp, own_spans = traced()
            own_reader = InMemoryMetricReader()
            own_mp = MeterProvider(metric_readers=[own_reader])
            async with flowrt.Runtime(tracer_provider=own_tp, meter_provider=own_mp) as rt:
                await rt.run(wf)
            assert len([s for s in global_spans.get_finished_spans()
                        if s.name == "flowrt.run"]) == 2
            assert len([s for s in own_spans.get_finished_spans()
                        if s.name == "flowrt.run"]) == 1
            def runs(reader):
                data = reader.get_metrics_data()
                return sum(p.value for r in data.resource_metrics for s in r.scope_metrics
                           for m in s.metrics if m.name == "flowrt.runs"
                           for p in m.data.data_points)
            assert runs(global_reader) == 2, runs(global_reader)
            assert runs(own_reader) == 1
        anyio.run(main, backend=BACKEND)
        print("ok")
    """, timeout=60)
    assert out.strip() == "ok"


def test_without_the_api_runs_work_and_providers_are_refused() -> None:
    out = run_program("""
        import sys
        sys.modules["opentelemetry"] = None  # as if the otel extra were not installed
        import anyio, flowrt

        wf = flowrt.Workflow("w")
        wf.add("a", lambda: 1)

        async def main():
            async with flowrt.Runtime() as rt:
                assert rt._shared.telemetry is None
                assert (await rt.run(wf)).ok
            try:
                async with flowrt.Runtime(tracer_provider=object()):
                    pass
            except RuntimeError as error:
                print(error)
        anyio.run(main, backend=BACKEND)
    """, timeout=60)
    assert "pip install 'flowrt[otel]'" in out


# -- durable runs: the stored trace -----------------------------------------------------


async def test_a_store_of_schema_3_is_migrated_and_its_runs_resume_traced(
        traces: Traces, tmp_path: Path) -> None:
    import shutil
    import sqlite3

    from flowrt.durable import SQLiteStore

    sys.path.insert(0, str(HERE / "data"))
    from make_store_v3_otel import build  # the workflow that wrote it

    db = tmp_path / "v3.db"
    shutil.copyfile(HERE / "data" / "store-v3-otel.db", db)
    wf = build(fail_b=False)
    with SQLiteStore(db) as store:
        assert {r.run_id: (r.status, r.trace) for r in store.runs()} == {
            "half": ("failed", None), "queued": ("queued", None)}
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                            ).fetchone() == (str(flowrt.durable._sqlite.SCHEMA_VERSION),)
    finally:
        conn.close()
    async with flowrt.Runtime(store=str(db), tracer_provider=traces.provider,
                              workflows=[wf]) as rt:
        result = await rt.run(wf, run_id="half")
        assert result.ok and result["b"] == 2 and result.nodes["a"].restored
        assert await rt.serve(until_idle=True) == 1
        assert rt.store is not None
        assert rt.store.get_run("queued").status == "succeeded"  # type: ignore[union-attr]
        assert rt.store.get_run("half").trace is None  # type: ignore[union-attr]
    assert all(not s.links for s in traces.named("flowrt.run"))  # nothing to link to


async def test_a_submitted_run_links_to_the_submitters_span(traces: Traces,
                                                           tmp_path: Path) -> None:
    wf = flowrt.Workflow("mail")
    wf.add("send", lambda: "sent")
    async with flowrt.Runtime(store=str(tmp_path / "q.db"), tracer_provider=traces.provider,
                              workflows=[wf]) as rt:
        with traces.tracer.start_as_current_span("request") as request:
            await rt.submit(wf, run_id="m-1")
        assert await rt.serve(until_idle=True) == 1
    run = traces.run()
    assert run.parent is None  # the worker's run is a trace of its own...
    (link,) = run.links  # ...linked to the request that submitted it
    assert link.context.span_id == request.get_span_context().span_id
    assert parent_id(traces.node("send")) == ids(run)[1]
