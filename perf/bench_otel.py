"""OpenTelemetry's cost per node (issue 16's figures).

pyperf harness: ``python perf/bench_otel.py [--quick] [pyperf options]``. One run of
10,000 no-op async nodes (random DAG) on a ``flowrt.Runtime`` kept open, per node:

- ``otel/noop-10000/absent``: as without the ``otel`` extra (the OpenTelemetry API made
  unimportable in the worker process: flowrt takes the path of an ``ImportError``);
- ``otel/noop-10000/no_sdk``: the API installed, no SDK configured (the API's default
  proxy providers). Target: at most 1.03x ``absent``;
- ``otel/noop-10000/sdk_spans``: the SDK's ``TracerProvider`` with a
  ``SimpleSpanProcessor`` and an exporter that drops the spans: the cost of a span per
  node (made, filled, ended, handed to the exporter);
- ``otel/noop-10000/sdk_metrics``: the SDK's ``MeterProvider`` (a reader that is never
  collected): the cost of the node counter and duration histogram per node.

Without the SDK (``pip install opentelemetry-sdk``) it prints a note and measures the
first one only.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import anyio
from _common import Harness, build_workflow, clock, noop
from graphs import random_dag

import flowrt
from flowrt._engine import telemetry

NODES = 10_000


@functools.cache
def noops() -> flowrt.Workflow:
    wf = build_workflow(random_dag(NODES), noop, "noops")
    wf.compile()
    return wf


def providers(mode: str) -> dict[str, Any]:
    """The runtime's providers in ``mode`` (the global ones stay the API's defaults)."""
    if mode == "absent":
        sys.modules["opentelemetry"] = None  # type: ignore[assignment]
        telemetry._api = None  # looked for again: an ImportError now
        return {}
    if mode == "no_sdk":
        return {}
    if mode == "sdk_spans":
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            SimpleSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class Drop(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        tp = TracerProvider()
        tp.add_span_processor(SimpleSpanProcessor(Drop()))
        return {"tracer_provider": tp}
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    return {"meter_provider": MeterProvider(metric_readers=[InMemoryMetricReader()])}


def time_runs(loops: int, mode: str) -> float:
    wf = noops()
    options = providers(mode)

    async def main() -> float:
        total = 0.0
        async with flowrt.Runtime(**options) as rt:
            assert (rt._shared.telemetry is None) == (mode in ("absent", "no_sdk"))
            for _ in range(loops):
                t0 = clock()
                result = await rt.run(wf)
                total += clock() - t0
                assert result.ok
        return total

    return anyio.run(main)


def main() -> None:
    h = Harness(__doc__.splitlines()[0])
    try:
        import opentelemetry.sdk  # noqa: F401

        modes = ("absent", "no_sdk", "sdk_spans", "sdk_metrics")
    except ImportError:
        print("note: the OpenTelemetry SDK is not installed (pip install opentelemetry-sdk);"
              " only the run without it is measured")
        modes = ("absent",)
    for mode in modes:
        h.bench(f"otel/noop-10000/{mode}", functools.partial(time_runs, mode=mode),
                inner_loops=NODES)
    h.summary("10,000 no-op nodes, per node", [
        ("without the otel extra", "otel/noop-10000/absent", None),
        ("otel extra, no SDK configured", "otel/noop-10000/no_sdk", "otel/noop-10000/absent"),
        ("SDK spans, no-op exporter", "otel/noop-10000/sdk_spans", "otel/noop-10000/absent"),
        ("SDK metrics", "otel/noop-10000/sdk_metrics", "otel/noop-10000/absent"),
    ], unit="us", note="target: no SDK at most 1.03x without the extra")
    base = h.median("otel/noop-10000/absent")
    for mode in ("sdk_spans", "sdk_metrics"):
        per = h.median(f"otel/noop-10000/{mode}")
        if per is not None and base is not None and not h.worker:
            print(f"   cost per node, {mode}: {(per - base) * 1e6:.2f} us")


if __name__ == "__main__":
    main()
