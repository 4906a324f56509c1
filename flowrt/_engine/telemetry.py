"""OpenTelemetry traces and metrics of runs (the ``otel`` extra: ``opentelemetry-api``).

Whether a runtime traces is decided once, when it opens (:func:`open_telemetry`), the
way structlog picks its fast path when a logger is made: with the API not installed,
or installed with neither a tracer provider nor a meter provider configured (the API's
default proxies), a runtime has no :class:`Telemetry` and its runs do no OpenTelemetry
work at all (docs/decisions/022-otel-switch.md). Otherwise each run gets a
:class:`RunTelemetry`, which the supervisor calls with the run's events:

- a ``flowrt.run`` span, a child of the span current where the run was started (and
  linked to the trace of the run's first start when a durable run is resumed);
- a ``flowrt.node`` span per node that runs, from its first attempt to its end: the
  node's code runs with it as the current span (in the event loop, in worker threads,
  and, carried as a W3C ``traceparent`` with the call, in worker processes and on
  Dask); retries are ``flowrt.retry`` events; a failure records the exception and
  sets the ERROR status;
- the metrics ``flowrt.runs`` and ``flowrt.nodes`` (by status), ``flowrt.node.duration``,
  ``flowrt.runs.active``, ``flowrt.limit.usage`` / ``flowrt.limit.capacity`` and
  ``flowrt.queue.depth`` (observed when the SDK collects).
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .._types import EventKind, RunStatus

if TYPE_CHECKING:
    from ..durable import Store
    from .shared import Shared
    from .state import RunState
    from .supervisor import Supervisor

__all__ = ["Carried", "RunSpan", "RunTelemetry", "Telemetry", "open_telemetry"]

#: the ``opentelemetry`` modules once looked for: None (not yet), False (not installed)
_api: Any = None

_STATUS_OF = {EventKind.SUCCEEDED: "succeeded", EventKind.FAILED: "failed",
              EventKind.CANCELLED: "cancelled", EventKind.SKIPPED: "skipped",
              EventKind.BYPASSED: "bypassed"}
#: the final events of a node that ran (skipped and bypassed ones never did)
_RAN = frozenset({EventKind.SUCCEEDED, EventKind.FAILED, EventKind.CANCELLED})


class _Api:
    """The parts of the ``opentelemetry`` API that flowrt calls, imported once."""

    def __init__(self) -> None:
        from opentelemetry import context, metrics, trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.trace = trace
        self.metrics = metrics
        self.attach = context.attach
        self.detach = context.detach
        self.set_span_in_context = trace.set_span_in_context
        self.Link = trace.Link
        self.StatusCode = trace.StatusCode
        self.Status = trace.Status
        self.propagator = TraceContextTextMapPropagator()
        # A provider nobody configured: the API's proxies (and explicit no-ops).
        self.no_tracer = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
        no_meter: list[type] = [metrics.NoOpMeterProvider]
        try:  # the API's global proxy is private: an API that moved it loses only this
            from opentelemetry.metrics._internal import _ProxyMeterProvider

            no_meter.append(_ProxyMeterProvider)
        except ImportError:  # pragma: no cover
            pass
        self.no_meter = tuple(no_meter)


@functools.cache
def _version() -> str | None:
    """flowrt's version, for the instrumentation scope."""
    import importlib.metadata

    try:
        return importlib.metadata.version("flowrt")
    except importlib.metadata.PackageNotFoundError:
        return None


def _load_api() -> _Api | None:
    global _api
    if _api is None:
        try:
            _api = _Api()
        except ImportError:
            _api = False
    return _api or None


def open_telemetry(tracer_provider: Any, meter_provider: Any, shared: Shared,
                   store: Store | None) -> Telemetry | None:
    """The telemetry of a runtime opening now, or None when it has nothing to report to.

    ``tracer_provider`` / ``meter_provider``: the runtime's own (None: the global ones).
    None when the API is not installed or neither provider is a real one.
    """
    api = _load_api()
    if api is None:
        if tracer_provider is not None or meter_provider is not None:
            raise RuntimeError("tracer_provider= and meter_provider= need the 'otel' extra: "
                               "pip install 'flowrt[otel]'")
        return None
    tp = tracer_provider if tracer_provider is not None else api.trace.get_tracer_provider()
    mp = meter_provider if meter_provider is not None else api.metrics.get_meter_provider()
    tracing = not isinstance(tp, api.no_tracer)
    metering = not isinstance(mp, api.no_meter)
    if not (tracing or metering):
        return None
    return Telemetry(api, tp if tracing else None, mp if metering else None, shared, store)


class _Instruments:
    """The metric instruments of one meter provider (made once: an SDK keeps the first
    instrument of a name), and the runtimes whose limits and queues they observe."""

    def __init__(self, api: _Api, provider: Any) -> None:
        meter = provider.get_meter("flowrt", _version())
        self.runs = meter.create_counter(
            "flowrt.runs", unit="{run}", description="Runs ended, by workflow and status")
        self.nodes = meter.create_counter(
            "flowrt.nodes", unit="{node}", description="Nodes ended, by workflow and status")
        self.duration = meter.create_histogram(
            "flowrt.node.duration", unit="s",
            description="Node durations, first attempt's start to the end, by workflow and node")
        self.active = meter.create_up_down_counter(
            "flowrt.runs.active", unit="{run}", description="Runs going on, by workflow")
        #: the open runtimes' telemetry, read by the observable gauges' callbacks
        self.live: weakref.WeakSet[Telemetry] = weakref.WeakSet()
        self.lock = threading.Lock()  # callbacks run in the SDK's collecting thread
        meter.create_observable_gauge(
            "flowrt.limit.usage", callbacks=[self._limit_usage], unit="{slot}",
            description="Slots of a runtime's named limits (and max_concurrency) in use")
        meter.create_observable_gauge(
            "flowrt.limit.capacity", callbacks=[self._limit_capacity], unit="{slot}",
            description="Capacity of a runtime's named limits (and max_concurrency)")
        meter.create_observable_gauge(
            "flowrt.queue.depth", callbacks=[self._queue_depth], unit="{run}",
            description="Runs queued in a runtime's store, by queue")
        self._observation = api.metrics.Observation

    def _live(self) -> list[Telemetry]:
        with self.lock:
            return list(self.live)

    def _limits(self, read: Callable[[Any], int]) -> Iterator[Any]:
        totals: dict[str, int] = {}
        for telemetry in self._live():
            shared = telemetry.shared
            limits = list(shared.limits.values())
            if shared.cap is not None:
                limits.append(shared.cap)
            for limit in limits:
                totals[limit.name] = totals.get(limit.name, 0) + read(limit)
        for name, value in totals.items():
            yield self._observation(value, {"flowrt.limit": name})

    def _limit_usage(self, options: Any) -> Iterable[Any]:
        return list(self._limits(lambda limit: limit.in_use))

    def _limit_capacity(self, options: Any) -> Iterable[Any]:
        return list(self._limits(lambda limit: limit.capacity))

    def _queue_depth(self, options: Any) -> Iterable[Any]:
        stores = {id(t.store): t.store for t in self._live() if t.store is not None}
        depth: dict[str, int] = {}
        for store in stores.values():
            try:
                queued = store.runs(status="queued")
            except Exception:  # a store closing or unreachable now: nothing to say
                continue
            for record in queued:
                queue = record.queue or "default"
                depth[queue] = depth.get(queue, 0) + 1
        return [self._observation(n, {"flowrt.queue": q}) for q, n in depth.items()]


#: per meter provider, its instruments
_instruments: weakref.WeakKeyDictionary[Any, _Instruments] = weakref.WeakKeyDictionary()
_instruments_lock = threading.Lock()


class Telemetry:
    """A runtime's tracer and instruments (made by :func:`open_telemetry`)."""

    __slots__ = ("__weakref__", "api", "instruments", "shared", "store", "tracer")

    def __init__(self, api: _Api, tracer_provider: Any, meter_provider: Any, shared: Shared,
                 store: Store | None) -> None:
        self.api = api
        self.shared = shared
        self.store = store
        self.tracer = (tracer_provider.get_tracer("flowrt", _version())
                       if tracer_provider is not None else None)
        self.instruments: _Instruments | None = None
        if meter_provider is not None:
            with _instruments_lock:
                instruments = _instruments.get(meter_provider)
                if instruments is None:
                    instruments = _instruments[meter_provider] = _Instruments(
                        api, meter_provider)
            with instruments.lock:
                instruments.live.add(self)
            self.instruments = instruments

    def close(self) -> None:
        """The runtime closed: its limits and store are observed no more."""
        if self.instruments is not None:
            with self.instruments.lock:
                self.instruments.live.discard(self)

    def for_run(self, state: RunState) -> RunTelemetry:
        """The telemetry of one run."""
        return RunTelemetry(self, state)

    def open_run_span(self, workflow: str, run_id: str, nodes: int) -> RunSpan | None:
        """A run's span, opened before its run is built (a durable run opens it before
        it claims the run, to store its ``traceparent`` with it); None when not tracing.
        The run takes it over (:meth:`flowrt._engine.run.Run.trace`); if it never does,
        :meth:`RunSpan.abandon` ends it."""
        if self.tracer is None:
            return None
        span = self.tracer.start_span("flowrt.run", attributes={
            "flowrt.workflow": workflow, "flowrt.run_id": run_id, "flowrt.nodes": nodes})
        return RunSpan(self.api, span)

    def current_traceparent(self) -> str | None:
        """The W3C ``traceparent`` of the span current here, or None (not tracing, or no
        span)."""
        if self.tracer is None:
            return None
        carrier: dict[str, str] = {}
        self.api.propagator.inject(carrier)
        return carrier.get("traceparent")


class RunSpan:
    """A ``flowrt.run`` span opened before its run (see :meth:`Telemetry.open_run_span`)."""

    __slots__ = ("api", "context", "span", "taken")

    def __init__(self, api: _Api, span: Any) -> None:
        self.api = api
        self.span = span
        self.context = api.set_span_in_context(span)
        self.taken = False

    @property
    def traceparent(self) -> str | None:
        """The span's W3C ``traceparent``."""
        carrier: dict[str, str] = {}
        self.api.propagator.inject(carrier, self.context)
        return carrier.get("traceparent")

    def abandon(self, status: str, error: BaseException | None = None) -> None:
        """No run took the span over: end it with ``status`` ("succeeded": a run that
        had succeeded before and was read back from its store; else why nothing ran)."""
        if self.taken:
            return
        self.taken = True
        api = self.api
        span = self.span
        span.set_attribute("flowrt.status", status)
        if status == "succeeded":
            span.set_attribute("flowrt.replayed", True)
            span.set_status(api.StatusCode.OK)
        else:
            if error is not None and isinstance(error, Exception):
                span.record_exception(error)
            span.set_status(api.Status(api.StatusCode.ERROR, status))
        span.end()


class RunTelemetry:
    """One run's spans and metrics; the supervisor calls :meth:`event` with its events
    (only when a runtime has telemetry: see the module docs)."""

    __slots__ = ("_api", "_attrs", "_counts", "_ins", "_opened", "_status_attrs", "contexts",
                 "link", "run_context", "run_span", "spans", "state", "tracer")

    def __init__(self, telemetry: Telemetry, state: RunState) -> None:
        self._api = telemetry.api
        self.tracer = telemetry.tracer
        self._ins = telemetry.instruments
        self.state = state
        n = len(state.plan)
        #: per node, its span (None until its first attempt) and the context that has
        #: it as the current span (what the node's code runs in)
        self.spans: list[Any] = [None] * n if self.tracer is not None else []
        self.contexts: list[Any] = [None] * n if self.tracer is not None else []
        self.run_span: Any = None
        self.run_context: Any = None
        self._opened: RunSpan | None = None
        #: nodes ended in this run, by status, not added to ``flowrt.nodes`` yet
        self._counts: dict[str, int] = {}
        #: a durable run's first trace (its stored ``traceparent``): the run span links it
        self.link: str | None = None
        workflow = state.plan.workflow
        self._attrs = {"flowrt.workflow": workflow}
        self._status_attrs = {status: {"flowrt.workflow": workflow, "flowrt.status": status}
                              for status in (*_STATUS_OF.values(), *map(str, RunStatus))}

    # -- the run --------------------------------------------------------------------

    def adopt(self, opened: RunSpan | None, link: str | None) -> None:
        """Before the run starts: take over its span ``opened`` (if any), and link its
        span to the trace ``link`` (a durable run's first start) unless that is it."""
        if opened is not None:
            self._opened = opened
            self.run_span = opened.span
            self.run_context = opened.context
            if link == opened.traceparent:
                link = None
        self.link = link

    def run_started(self) -> Any:
        """The run starts, in the caller's context: open its span (unless adopted) and
        make it current there. Returns the token :meth:`run_ended` takes."""
        if self._ins is not None:
            self._ins.active.add(1, self._attrs)
        if self.tracer is None:
            return None
        if self._opened is not None:
            self._opened.taken = True  # run_ended ends it now
        api = self._api
        state = self.state
        linked = None
        if self.link is not None:
            linked = api.trace.get_current_span(
                api.propagator.extract({"traceparent": self.link})).get_span_context()
            if not linked.is_valid:
                linked = None
        link_attrs = {"flowrt.link": "first_start"}
        if self.run_span is None:
            self.run_span = self.tracer.start_span(
                "flowrt.run",
                links=[api.Link(linked, link_attrs)] if linked is not None else None,
                attributes={"flowrt.workflow": state.plan.workflow,
                            "flowrt.run_id": state.run_id, "flowrt.nodes": len(state.plan)})
            self.run_context = api.set_span_in_context(self.run_span)
        elif linked is not None:
            self.run_span.add_link(linked, link_attrs)
        return api.attach(self.run_context)

    def run_ended(self, token: Any, status: RunStatus | None, error: BaseException | None
                  ) -> None:
        """The run is over with ``status`` (None: its caller was cancelled, or it raised
        ``error``): end its span, count it."""
        if self._ins is not None:
            self._ins.active.add(-1, self._attrs)
            self._ins.runs.add(1, self._status_attrs[str(status or RunStatus.CANCELLED)])
            for node_status, count in self._counts.items():
                self._ins.nodes.add(count, self._status_attrs[node_status])
            self._counts.clear()
        span = self.run_span
        if span is None:
            return
        api = self._api
        if token is not None:
            api.detach(token)  # never raises: the API logs a detach out of order
        if status is None:
            if error is not None and not isinstance(error, Exception):
                status = RunStatus.CANCELLED
            elif error is not None:
                span.record_exception(error)
        label = str(status) if status is not None else "error"
        span.set_attribute("flowrt.status", label)
        if status is RunStatus.SUCCEEDED:
            span.set_status(api.StatusCode.OK)
        elif status is RunStatus.WAITING:
            pass  # parked, not over: its next start (linked to this trace) will tell
        else:
            failed = [self.state.plan.names[i] for i in sorted(self.state.errors)][:10]
            description = label + (f": {', '.join(failed)}" if failed else "")
            span.set_status(api.Status(api.StatusCode.ERROR, description))
        span.end()

    # -- its nodes ------------------------------------------------------------------

    def event(self, sup: Supervisor, kind: EventKind, node: int,
              error: BaseException | None) -> None:
        """What the supervisor reports of ``node``: start, retry or end its span."""
        if node < 0:
            return
        spans = self.spans
        if self.tracer is not None:
            if kind is EventKind.STARTED:
                if spans[node] is None:
                    self._start_node(node)
                return
            span = spans[node]
            if span is not None:
                if kind is EventKind.RETRYING:
                    span.add_event("flowrt.retry", _error_attrs(sup.attempts[node], error))
                    return
                if kind in _STATUS_OF:
                    self._end_node(span, kind, node, sup.attempts[node], error)
        status = _STATUS_OF.get(kind)
        if status is not None and self._ins is not None:
            # counted here, added to flowrt.nodes when the run ends: one SDK call per
            # status per run instead of one per node (perf/bench_otel.py)
            self._counts[status] = self._counts.get(status, 0) + 1
            state = self.state
            if state.timed[node] and state.attempts[node] and kind in _RAN:
                seconds = state.finished[node] - state.started[node]
                if seconds >= 0:
                    self._ins.duration.record(seconds, {
                        "flowrt.workflow": state.plan.workflow,
                        "flowrt.node": state.plan.names[node]})

    def _start_node(self, node: int) -> None:
        api = self._api
        state = self.state
        parent = self.run_context
        tracer: Any = self.tracer
        # The node's name only: the workflow and run id are its parent's (each attribute
        # costs the SDK a validation per span; measured in perf/bench_otel.py).
        span = tracer.start_span("flowrt.node", context=parent,
                                 attributes={"flowrt.node": state.plan.names[node]})
        self.spans[node] = span
        self.contexts[node] = api.set_span_in_context(span, parent)

    def _end_node(self, span: Any, kind: EventKind, node: int, attempts: int,
                  error: BaseException | None) -> None:
        api = self._api
        self.spans[node] = None
        self.contexts[node] = None
        span.set_attributes({"flowrt.attempts": attempts, "flowrt.status": _STATUS_OF[kind]})
        if kind is EventKind.SUCCEEDED:
            span.set_status(api.StatusCode.OK)
        elif kind is EventKind.FAILED:
            if error is not None:
                span.record_exception(error)
                span.set_status(api.Status(api.StatusCode.ERROR,
                                           f"{type(error).__name__}: {error}"))
            else:
                span.set_status(api.Status(api.StatusCode.ERROR, "failed"))
        else:  # cancelled: the node did not finish
            span.set_status(api.Status(api.StatusCode.ERROR, "cancelled"))
        span.end()

    def enter_node(self, node: int) -> None:
        """Make ``node``'s span current (called in the node's own context copy)."""
        ctx = self.contexts[node] if self.contexts else None
        if ctx is not None:
            self._api.attach(ctx)  # the context copy is thrown away with the attempt

    def carry(self, node: int, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` with ``node``'s span context, for a call in another process."""
        ctx = self.contexts[node] if self.contexts else None
        if ctx is None:
            return fn
        carrier: dict[str, str] = {}
        self._api.propagator.inject(carrier, ctx)
        return Carried(fn, carrier)


def _error_attrs(attempt: int, error: BaseException | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {"flowrt.attempt": attempt}
    if error is not None:
        attrs["exception.type"] = type(error).__qualname__
        attrs["exception.message"] = str(error)
    return attrs


class Carried:
    """A sync node's callable with its span's W3C trace context, for another process.

    Called there (a process pool's worker, a Dask worker), it makes that context
    current while ``fn`` runs, so that spans ``fn`` opens (with that process's own
    tracer provider) are children of the node's span, and log records can name it.
    Without the ``opentelemetry`` API in that process, it just calls ``fn``.
    """

    __slots__ = ("carrier", "fn")

    def __init__(self, fn: Callable[..., Any], carrier: dict[str, str]) -> None:
        self.fn = fn
        self.carrier = carrier

    @property
    def __name__(self) -> str:  # Dask names its task keys after the callable
        return str(getattr(self.fn, "__name__", "node"))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        api = _load_api()
        if api is None:
            return self.fn(*args, **kwargs)
        token = api.attach(api.propagator.extract(self.carrier))
        try:
            return self.fn(*args, **kwargs)
        finally:
            api.detach(token)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Carried, (self.fn, self.carrier))

    def __repr__(self) -> str:
        return f"<Carried {self.fn!r} {self.carrier.get('traceparent')}>"
