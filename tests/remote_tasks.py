"""Functions run in other processes by the executor tests (importable by workers)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import flowrt


def pid(*_: object) -> int:
    return os.getpid()


def square(x: int) -> int:
    return x * x


def add(a: int, b: int) -> int:
    return a + b


def big(n: int) -> bytes:
    return b"x" * n


def size(blob: bytes) -> int:
    return len(blob)


def fail_with_key_error() -> None:
    raise KeyError("no such customer")


def flaky(marker: str, failures: int) -> str:
    """Fails the first ``failures`` calls (counted in a file: workers are processes)."""
    path = Path(marker)
    calls = int(path.read_text()) if path.exists() else 0
    path.write_text(str(calls + 1))
    if calls < failures:
        raise ConnectionError(f"call {calls + 1} fails")
    return f"ok after {calls + 1}"


def sleep_then(seconds: float, marker: str | None = None) -> str:
    if marker:
        Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)
    return "slept"


def burn(ms: float) -> int:
    """About ``ms`` milliseconds of pure-Python CPU work."""
    end = time.perf_counter() + ms / 1000
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def logged_square(i: int, log: str, seconds: float = 0.3) -> int:
    """Append this node's name to ``log``, work a while, return i * i."""
    with open(log, "a") as f:
        f.write(f"sq{i}\n")
    time.sleep(seconds)
    return i * i


def context_info(value: object, ctx: flowrt.Context) -> tuple[object, ...]:
    """What a remote node sees of its context (no data: it does not travel)."""
    size = len(value) if isinstance(value, bytes | str) else value
    return (ctx.run_id, ctx.node, ctx.attempt, ctx.data is None, size)


def span_ids(*_: object) -> tuple[int, int]:
    """The trace and span id current in this worker (the node's, carried with the call)."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return context.trace_id, context.span_id


def user_span_parent(*_: object) -> tuple[int, int | None]:
    """Open a span with this worker's own SDK: its trace id and parent span id."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("worker").start_as_current_span("in the worker"):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.context is not None
    return span.context.trace_id, span.parent.span_id if span.parent else None
