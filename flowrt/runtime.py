"""``Runtime``: what several runs share -- limits, worker threads, executors, store.

``wf.run(...)`` makes a private runtime for the one run. A service that runs many
workflows keeps one runtime open and starts every run through it, so that a limit of
``{"payments": 2}`` holds across all the runs at once::

    async with flowrt.Runtime(limits={"payments": 2}) as rt:
        async with anyio.create_task_group() as tg:
            for order in orders:
                tg.start_soon(rt.run, checkout, {"order_id": order})
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Mapping, Sequence
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final, TypedDict, Unpack

import anyio
import anyio.to_thread
import attrs

from . import _backends
from ._clock import SYSTEM_CLOCK, Clock
from ._engine.cache import MemoryCache, NodeCache, check_cached_inputs
from ._engine.events import normalize_hooks
from ._engine.limits import Limit
from ._engine.result import RunResult
from ._engine.run import RunSettings, prepare_run
from ._engine.shared import ActiveRun, LimitUsage, Shared
from ._engine.telemetry import open_telemetry
from ._engine.waits import deliver
from ._schedule import check_spec, schedule_record
from ._types import Executor, ExecutorChoice, Hook
from ._worker import Registry, new_queued_record
from ._worker import serve as serve_queue
from .data import WorkflowData
from .durable import open_store
from .durable._cache import StoreCache
from .durable._run import durable_run
from .errors import RunNotFound, SerializationError
from .workflow import Plan
from .workflow._subworkflow import CHILD_RUNNER

if TYPE_CHECKING:
    from datetime import timedelta

    from .durable import RunRecord, ScheduleRecord, Store
    from .workflow import Workflow

__all__ = ["RunOptions", "Runtime", "run", "run_sync"]


class RunOptions(TypedDict, total=False):
    """The options of one run: what ``Runtime.run``, ``Workflow.run`` and ``run_sync`` take.

    ``run_id``: the run's id (a new one by default); with a store, an id the store knows
    resumes that run. ``max_concurrency``: nodes of this run running at once.
    ``limits``: capacities of named limits for this run; a name the runtime also limits
    gets this run's own limit instead of the shared one. ``fail_fast``: cancel
    everything at the first node failure. ``timeout``: seconds after which the run is
    cancelled and returned with status CANCELLED. ``data``: the
    :class:`~flowrt.WorkflowData` to use (reused across runs, it allocates nothing new).
    ``executor``: where sync nodes run by default (``"thread"``, ``"process"``,
    ``"loop"`` or an executor object). ``on_event``: a hook or hooks called with every
    :class:`~flowrt.Event`. ``resume``: ``"force"`` resumes a stored run whose workflow
    changed. ``metrics``: time every node (True), none (False) or a sampled share.
    ``strict_inputs``: refuse run inputs that no node takes (True, the default: they are
    usually typos) or store them in the run's data for nodes to read (False).
    ``park``: with a store, return as soon as every node left waits for a signal or a
    timer, with status WAITING (a signal, the due timer or ``rt.resume`` continues the
    run in a worker; running it again with its ``run_id`` continues it here).
    ``compensate``: when the run fails, is cancelled or times out, undo its succeeded
    nodes with their ``compensate=`` functions (True, the default; docs/compensation.md).
    ``resources``: objects a parameter of their name receives (clients, pools), added to
    the runtime's (a name in both: this run's); never stored, never in a cache key
    (docs/resources.md). ``refresh``: cached nodes run again and replace their cache
    entries (docs/caching.md).
    """

    run_id: str | None
    max_concurrency: int | None
    limits: Mapping[str, int] | None
    fail_fast: bool
    timeout: float | None
    data: WorkflowData | None
    executor: ExecutorChoice
    on_event: Hook | Sequence[Hook] | None
    resume: str | None
    metrics: bool | float | None
    strict_inputs: bool
    park: bool
    compensate: bool
    # -- resources and caching --
    resources: Mapping[str, Any] | None
    refresh: bool


#: the names RunOptions takes
RUN_OPTIONS = frozenset(RunOptions.__annotations__)


def new_run_id() -> str:
    """A new random run id: the hex of a version-4 UUID, what ``uuid.uuid4().hex`` gives.

    Made from the random bytes directly: building the ``UUID`` object took 4.0 us of a
    small run's 45 (0.8 us this way; ``python -m timeit``, 2026-12-02).
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    return raw.hex()


def check_run_options(options: Mapping[str, Any]) -> None:
    """Refuse an option that is no run option, naming the near match for a typo."""
    for name in options:
        if name not in RUN_OPTIONS:
            near = difflib.get_close_matches(name, RUN_OPTIONS, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise TypeError(f"run() got an unexpected keyword argument {name!r}{hint}")


def _check_limits(limits: object) -> None:
    """Refuse ``limits=`` that is no mapping of limit names to capacities."""
    if limits is None:
        return
    if not isinstance(limits, Mapping):
        raise TypeError("limits= takes a mapping of limit name to capacity, such as "
                        f"{{'api': 3}}, got {limits!r}")
    for name in limits:
        if not isinstance(name, str):
            raise TypeError(f"limits= takes limit names as str keys, got {name!r}")


#: ``Runtime.resources`` of a runtime given none (no dict per throwaway runtime)
_NO_RESOURCES: Final[Mapping[str, Any]] = MappingProxyType({})


def _check_resources(resources: object, where: str) -> dict[str, Any]:
    """``resources=`` as a dict; refuse what is no mapping of names to objects."""
    if resources is None:
        return {}
    if not isinstance(resources, Mapping):
        raise TypeError(f"{where} resources= takes a mapping of parameter name to object, "
                        f"such as {{'http': client}}, got {resources!r}")
    for name in resources:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"{where} resources= takes parameter names as keys, "
                             f"got {name!r}")
    return dict(resources)


def _check_executor(executor: object) -> None:
    if executor is None or executor in ("thread", "loop", "process"):
        return
    if isinstance(executor, str) or not isinstance(executor, Executor):
        raise ValueError(f"executor must be 'thread', 'loop', 'process' or an executor object "
                         f"(with an async run method), got {executor!r}")


class Runtime:
    """Shared resources for runs; use as ``async with Runtime(...) as rt``.

    Args:
        max_concurrency: caps the nodes running at once across every run of this
            runtime.
        limits: maps a limit name to its capacity, shared by every run.
        store: where runs are kept, so that they can be resumed (a path means
            SQLite); a store object stays yours to close.
        executor: where sync nodes run by default (``"thread"``, ``"process"``,
            ``"loop"`` or an executor object).
        threads: caps the worker threads for sync nodes (40 by default).
        metrics: True (time every node), False, or a sampling rate.
        workflows: the workflows this runtime runs from the store's queue (as a worker:
            :meth:`serve`), and whose runs :meth:`resume` continues here; a workflow
            given to :meth:`submit` or :meth:`schedule` is added to them.
        clock: where workflow time is read -- timers, signal timeouts, schedules, when
            queued runs are due (default: the system clock;
            :class:`flowrt.testing.FakeClock` in tests).
        max_recoveries: a run whose workers died this many times while running it ends
            ``"dead_letter"`` instead of being taken over again (5).
        shutdown_grace: seconds the runs still going on when the ``async with`` block
            ends get to finish before they are stopped (below); None waits for them.
        on_event: a hook or hooks called with every :class:`~flowrt.Event` of every
            run of this runtime (before the run's own ``on_event`` hooks).
        resources: objects a node parameter of their name receives in every run
            (an HTTP client, a database pool); never stored or fingerprinted, so
            durable runs can use them (docs/resources.md).
        tracer_provider: the OpenTelemetry tracer provider of this runtime's spans
            (default: the global one); needs the ``otel`` extra (docs/observability.md).
        meter_provider: the OpenTelemetry meter provider of its metrics (default: the
            global one).

    Raises:
        TypeError: ``limits`` is not a mapping of names to capacities, or a
            ``workflows`` entry is not a Workflow.
        ValueError: a bad capacity, ``executor``, ``max_recoveries`` or
            ``shutdown_grace``, or two ``workflows`` of one name, or a resource name
            that is no identifier.
        TypeError: ``on_event`` that is no callable or callables, ``resources`` that
            is no mapping.
        RuntimeError: (when the block starts) ``tracer_provider`` or ``meter_provider``
            given without the ``otel`` extra installed.

    Tracing is switched on or off when the block starts, once: with a tracer provider
    (given, or configured globally by an OpenTelemetry SDK) each run has a ``flowrt.run``
    span and each node a ``flowrt.node`` span; with a meter provider it reports metrics;
    with neither (or without the ``otel`` extra) runs do no OpenTelemetry work at all.

    Leaving the ``async with`` block shuts the runtime down: ``run`` refuses new runs
    (``RuntimeError``); runs still going on get ``shutdown_grace`` seconds to finish (0
    by default; None waits for them however long they take), then they are stopped as
    a run timeout stops a run (their nodes end CANCELLED and each ``run`` call returns a
    :class:`~flowrt.RunResult` with status CANCELLED, recorded so in the store; a run a
    worker took from the queue goes back to it); the block ends when they have, and
    only then are the store and executors closed.

    Executors the runtime makes from a name (``"process"``...) are its own and closed with
    it; an executor object you pass stays yours to close (``async with`` it).

    >>> import anyio
    >>> import flowrt
    >>> wf = flowrt.Workflow("w")
    >>> wf.add("a", lambda: 1, limit="api")
    >>> async def main():
    ...     async with Runtime(limits={"api": 2}) as rt:
    ...         return (await rt.run(wf))["a"]
    >>> anyio.run(main)
    1
    """

    def __init__(
        self,
        *,
        max_concurrency: int | None = None,
        limits: Mapping[str, int] | None = None,
        store: Store | str | None = None,
        executor: ExecutorChoice = None,
        threads: int = 40,
        metrics: bool | float = True,
        workflows: Sequence[Workflow] = (),
        clock: Clock | None = None,
        max_recoveries: int = 5,
        shutdown_grace: float | None = 0.0,
        on_event: Hook | Sequence[Hook] | None = None,
        resources: Mapping[str, Any] | None = None,
        tracer_provider: Any = None,
        meter_provider: Any = None,
    ) -> None:
        _check_executor(executor)
        #: hooks called with every event of every run of this runtime
        self.hooks = normalize_hooks(on_event)
        #: the resources every run of this runtime gets (docs/resources.md)
        self.resources: Mapping[str, Any] = (
            _check_resources(resources, "Runtime()") if resources is not None else _NO_RESOURCES)
        _check_limits(limits)
        if not isinstance(max_recoveries, int) or isinstance(max_recoveries, bool) or (
                max_recoveries < 1):
            raise ValueError(f"max_recoveries must be an int >= 1, got {max_recoveries!r}")
        if shutdown_grace is not None and (
            not isinstance(shutdown_grace, int | float) or isinstance(shutdown_grace, bool)
            or not shutdown_grace >= 0
        ):
            raise ValueError(f"shutdown_grace must be seconds >= 0 or None, "
                             f"got {shutdown_grace!r}")
        #: the workflows this runtime runs from the queue (made on first use: most
        #: runtimes never serve one, and a throwaway runtime is made per Workflow.run)
        self._registry: Registry | None = Registry(workflows) if workflows else None
        self.clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self.max_recoveries = max_recoveries
        #: set to wake this runtime's worker loop early (a run ended, a signal came)
        self._worker_wakeup: anyio.Event | None = None
        self._shared = Shared(max_concurrency=max_concurrency, limits=limits, threads=threads,
                              clock=self.clock)
        self._store_arg = store
        self.store: Store | None = None
        self.executor = executor
        self.threads = threads
        self.metrics = metrics
        self.shutdown_grace = shutdown_grace
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self._open = False
        self._closed = False
        #: cached node outputs when there is no store (docs/caching.md); made on use
        self._memory_cache: MemoryCache | None = None

    def _workflows(self) -> Registry:
        """The workflows this runtime runs from the queue (see ``workflows=``)."""
        if self._registry is None:
            self._registry = Registry()
        return self._registry

    @property
    def _limits(self) -> dict[str, Limit]:
        """The shared limits, by name."""
        return self._shared.limits

    async def __aenter__(self) -> Runtime:
        if self._open:
            raise RuntimeError("this Runtime is already open")
        self._shared.threads = self.threads
        self._shared.open()
        if self._store_arg is not None:
            self.store = open_store(self._store_arg)
        try:
            self._shared.telemetry = open_telemetry(self.tracer_provider, self.meter_provider,
                                                    self._shared, self.store)
        except BaseException:
            if self.store is not None and self.store is not self._store_arg:
                self.store.close()
            self.store = None
            raise
        self._open = True
        self._closed = False
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._open = False  # run() refuses new runs from here on
        self._closed = True
        self._poke()  # a worker loop (serve) stops taking runs and returns
        shared = self._shared
        try:
            if shared.busy and self.shutdown_grace != 0:
                with anyio.move_on_after(self.shutdown_grace):
                    await shared.wait_idle()
        finally:
            # Even when the block was left by a cancellation: the runs must record how
            # they ended before the store closes under them.
            if shared.busy:
                with anyio.CancelScope(shield=True):
                    shared.stop_runs()
                    await shared.wait_idle()
            await shared.aclose()  # shielded too
            if shared.telemetry is not None:
                shared.telemetry.close()
                shared.telemetry = None
            if self.store is not None and self.store is not self._store_arg:
                self.store.close()  # a store this runtime opened from a path
            self.store = None

    async def run(self, workflow: Workflow | Plan, inputs: Mapping[str, Any] | None = None,
                  **options: Unpack[RunOptions]) -> RunResult:
        """Run ``workflow`` once and return its :class:`~flowrt.RunResult`.

        Args:
            workflow: a :class:`~flowrt.Workflow` or its compiled plan.
            inputs: values of the run inputs (parameters that are no node), by name.
            options: :class:`RunOptions` (the same for ``Workflow.run`` and
                ``run_sync``).

        Raises:
            RuntimeError: the runtime is not open (``async with`` it first), or closed.
            MissingInputError: a required input is missing.
            UnknownInputError: an input that no node takes (unless
                ``strict_inputs=False``).
            TypeError: an unknown option (naming the near match), or ``limits`` or
                ``resources`` that is not a mapping.
            CacheKeyError: an input of a cached node cannot be hashed (naming the node
                and the parameter).
            ValueError: a bad option value, or an input named like a node.

        All of these are raised before any node runs. Cancelling the caller cancels
        every running node and the cancellation propagates; the nodes end CANCELLED.
        A run still going on when the runtime's block ends is stopped (see the class)
        and returns a result with status CANCELLED.
        """
        if not self._open:
            if self._closed:
                raise RuntimeError("this Runtime is closed: its 'async with' block has ended")
            raise RuntimeError("use the Runtime as 'async with Runtime(...) as rt' first")
        check_run_options(options)
        plan = workflow if isinstance(workflow, Plan) else workflow.compile()
        if inputs and options.get("strict_inputs", True):
            plan.check_unknown_inputs(inputs)
        if inputs and plan.cached is not None:
            check_cached_inputs(plan, inputs)  # before a store records anything
        max_concurrency = options.get("max_concurrency")
        if max_concurrency is not None and (
            not isinstance(max_concurrency, int) or max_concurrency < 1
        ):
            raise ValueError(f"max_concurrency must be an int >= 1, got {max_concurrency!r}")
        timeout = options.get("timeout")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        hooks = self.hooks + normalize_hooks(options.get("on_event"))
        resources = self.resources
        if options.get("resources") is not None:
            resources = {**resources, **_check_resources(options.get("resources"), "run()")}
        limits = options.get("limits")
        _check_limits(limits)
        for name, capacity in (limits or {}).items():
            Limit(name, capacity)  # raises ValueError for a bad capacity, before anything
        executor = options.get("executor")
        _check_executor(executor)
        data = options.get("data")
        resume = options.get("resume")
        metrics = options.get("metrics")
        run_id = options.get("run_id") or new_run_id()
        park = options.get("park", False)
        if park and self.store is None:
            raise ValueError("park=True needs a store (Runtime(store='runs.db')): a parked "
                             "run is continued from the store")
        settings = RunSettings(
            max_concurrency=max_concurrency, limits=limits,
            fail_fast=options.get("fail_fast", False), timeout=timeout, hooks=hooks,
            executor=executor if executor is not None else self.executor,
            metrics=self.metrics if metrics is None else metrics, park=bool(park),
            compensate=bool(options.get("compensate", True)),
            resources=resources or None, cache=self._cache_for(plan),
            refresh=bool(options.get("refresh", False)),
        )
        if resume is not None and self.store is None:
            raise ValueError("resume= needs a store (store='runs.db' or a Store object)")
        with self._run_block(settings, plan):
            if self.store is not None:
                return await durable_run(self.store, self._shared, plan, run_id, inputs, data,
                                         settings, resume)
            return await prepare_run(self._shared, plan, run_id, inputs, data,
                                     settings).execute()

    # -- sub-workflows (docs/sub-workflows.md) ---------------------------------------------

    def children_of(self, settings: RunSettings, plan: Plan) -> _ChildRuns | _NoChildRuns:
        """A block in which the sub-workflow nodes of the run of ``plan`` with
        ``settings`` start their child runs in this runtime (and its store), with the
        same settings but no timeout or concurrency cap of their own (the parent's node
        is under them already). Nothing for a plan without sub-workflows: setting the
        context variable costs a run three objects for the garbage collector to track."""
        if not plan.has_subworkflows:
            return _NO_CHILD_RUNS
        return _ChildRuns(self, settings)

    def _run_block(self, settings: RunSettings, plan: Plan) -> Shared | _ChildRuns:
        """The block one run of ``plan`` goes on in: counted in flight (see
        ``Shared.in_flight``) and, for a plan with sub-workflows, :meth:`children_of`.
        One block rather than two: the frame of a second ``with`` keeps one more object
        alive per run, and 16 small runs started together then took two collector
        passes instead of one (docs/decisions/031-per-run-allocations.md)."""
        if not plan.has_subworkflows:
            return self._shared.in_flight()
        return _CountedChildRuns(self, settings)

    # -- runs that outlive a process (docs/decisions/013-queue.md) -----------------------

    def _need_store(self, what: str) -> Store:
        if not self._open:
            raise RuntimeError("use the Runtime as 'async with Runtime(...) as rt' first")
        if self.store is None:
            raise ValueError(f"{what} needs a store: Runtime(store='runs.db', ...)")
        return self.store

    def _worker_settings(self, plan: Plan | None = None) -> RunSettings:
        """The run settings of runs a worker takes from the queue: the runtime's; a run
        whose nodes all wait is parked, so that it holds no slot while it waits."""
        return RunSettings(executor=self.executor, metrics=self.metrics, park=True,
                           hooks=self.hooks, resources=self.resources or None,
                           cache=None if plan is None else self._cache_for(plan))

    # -- caching (docs/caching.md) --------------------------------------------------

    def _cache_for(self, plan: Plan) -> NodeCache | None:
        """Where the cached nodes of ``plan`` are looked up: the store's cache, else
        this runtime's own (in memory); None when the plan caches nothing."""
        if plan.cached is None:
            return None
        if self.store is not None:
            return StoreCache(self.store, self.clock.now)
        if self._memory_cache is None:
            self._memory_cache = MemoryCache(self.clock.now)
        return self._memory_cache

    async def prune_cache(self) -> int:
        """Delete the cached node outputs whose ``ttl`` has run out on this runtime's
        clock (they are never returned, but stay until replaced or swept); return how
        many. In the store's cache with a store, else in the runtime's own.

        Raises:
            RuntimeError: the runtime is not open.
            StoreError: the store cannot be written.
        """
        if not self._open:
            raise RuntimeError("use the Runtime as 'async with Runtime(...) as rt' first")
        store = self.store
        if store is None:
            return self._memory_cache.prune() if self._memory_cache is not None else 0
        now = self.clock.now()
        return await anyio.to_thread.run_sync(lambda: store.prune_cache(now))

    # -- introspection ----------------------------------------------------------------

    def active(self) -> list[ActiveRun]:
        """The runs in flight in this runtime now, oldest first: each one's id,
        workflow, start time and nodes per status. A plain method (no await)."""
        return self._shared.active()

    def limit_usage(self) -> dict[str, LimitUsage]:
        """The runtime's limits now, by name: capacity, slots in use, nodes waiting
        (``"max_concurrency"`` for the runtime's cap, when it has one). A plain method
        (no await). A run's own ``limits=`` are not the runtime's and not listed."""
        return self._shared.limit_usage()

    def _poke(self) -> None:
        """Wake this runtime's worker loop now (something it may take has changed)."""
        if self._worker_wakeup is not None:
            self._worker_wakeup.set()

    async def submit(self, workflow: Workflow, inputs: Mapping[str, Any] | None = None, *,
                     run_id: str | None = None, queue: str | None = None) -> str:
        """Put a run of ``workflow`` in the store's queue and return its run id.

        A worker (:meth:`serve`, ``flowrt worker``) that has the workflow runs it. The
        inputs are checked and stored now; a parameter that is a resource of this
        runtime is not an input (the worker's runtime gives its own resource).
        Submitting a run id that the store has already changes nothing and returns the
        id (an idempotency key: submit ``f"order-{order_id}"`` as often as you like, it
        runs once).

        Args:
            workflow: the workflow (added to the ones this runtime serves).
            inputs: the run inputs, by name.
            run_id: the run's id (a new one by default).
            queue: the queue it goes to (``"default"``).

        Raises:
            RuntimeError: the runtime is not open.
            ValueError: the runtime has no store, or ``run_id`` is a run of another
                workflow.
            MissingInputError: a required input is missing.
            UnknownInputError: an input that no node takes.
            SerializationError: the inputs cannot be stored.
            CacheKeyError: an input of a cached node cannot be hashed.
        """
        store = self._need_store("submit()")
        plan = workflow.compile()
        given = dict(inputs) if inputs else {}
        if given:
            plan.check_unknown_inputs(given)
            check_cached_inputs(plan, given)
        run_id = run_id or new_run_id()
        record = new_queued_record(plan, run_id, given, store, self.clock.now(), queue,
                                   self.resources)
        telemetry = self._shared.telemetry
        if telemetry is not None:  # its spans will link to the submitter's
            record = attrs.evolve(record, trace=telemetry.current_traceparent())
        if not await anyio.to_thread.run_sync(store.submit, record):
            existing = store.get_run(run_id)
            if existing is not None and existing.workflow != plan.workflow:
                raise ValueError(f"run {run_id!r} is a run of workflow "
                                 f"{existing.workflow!r}, not {plan.workflow!r}")
        self._workflows().add(workflow)
        self._poke()
        return run_id

    async def serve(self, *, concurrency: int = 8, queues: Sequence[str] = ("default",),
                    poll: float = 1.0, until_idle: bool = False) -> int:
        """Run runs from the store's queue until cancelled: be a worker.

        Each turn it fires the schedules that are due (:meth:`schedule`), then takes due
        runs of its workflows (``Runtime(workflows=[...])``) while it holds fewer than
        ``concurrency``: submitted runs, parked runs whose signal came or whose timer
        is due, resumed runs, and runs whose worker died (after its lease ran out, or at
        once when its process is gone on this host). Each run goes as ``rt.run`` would
        go, under this runtime's limits, shared by all of them; a run whose nodes all
        wait is parked, so that it holds no slot while it waits. Cancelling ``serve``
        stops the runs it holds and hands them back to the queue.

        Args:
            concurrency: the runs held at once.
            queues: the queues it takes runs from.
            poll: seconds between looks at the store when nothing happens here.
            until_idle: return once nothing is due and nothing runs (parked runs do
                not count), instead of waiting for more.

        It returns when the runtime shuts down (its ``async with`` block is left while
        it serves): it takes no more runs, and the runs it holds end as every run of a
        shutdown does (``shutdown_grace``), given back to the queue for another worker.

        Returns:
            How many runs it ran (to their end or to a park).

        Raises:
            RuntimeError: the runtime is not open.
            ValueError: no store, no workflows, or a bad ``concurrency`` or ``poll``.
        """
        self._need_store("serve()")
        if self._registry is None or not len(self._registry):
            raise ValueError("serve() needs the workflows it may run: "
                             "Runtime(store=..., workflows=[wf, ...])")
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or (
                concurrency < 1):
            raise ValueError(f"concurrency must be an int >= 1, got {concurrency!r}")
        if not poll > 0:
            raise ValueError(f"poll must be > 0 seconds, got {poll!r}")
        if isinstance(queues, str):
            queues = (queues,)
        return await serve_queue(self, concurrency=concurrency, queues=list(queues),
                                 poll=poll, until_idle=until_idle,
                                 max_recoveries=self.max_recoveries)

    async def signal(self, run_id: str, name: str, payload: Any = None, *,
                     id: str | None = None) -> bool:
        """Send signal ``name`` with ``payload`` to run ``run_id``; True when it was
        stored, False when a signal with this ``id`` was sent to the run before (the
        first payload wins).

        The run's signal node ``name`` outputs the payload and the run goes on: in this
        process, or in whichever worker or process holds or takes it. A signal sent
        before its node waits is kept until it does.

        Args:
            run_id: the run.
            name: the signal's name: its node's name.
            payload: the node's output (stored with the store's serializer).
            id: dedupes: an id already sent to this run is not sent again.

        Raises:
            RuntimeError: the runtime is not open.
            RunNotFound: no such run (in the store; without a store, in this runtime).
            SignalRefused: the run has no signal or approval node ``name``, has
                succeeded, or an approval's payload says neither approved nor rejected.
            SerializationError: the payload cannot be stored.
        """
        from .durable import control

        if not self._open:
            raise RuntimeError("use the Runtime as 'async with Runtime(...) as rt' first")
        store = self.store
        if store is None:  # in-process waits: the run goes on in this runtime
            return deliver(self._shared, run_id, name, payload, id)
        stored = await anyio.to_thread.run_sync(
            lambda: control.send_signal(store, run_id, name, payload, signal_id=id,
                                        now=self.clock.now()))
        waiter = self._shared.waiting.get(run_id)
        if waiter is not None:  # the run waits in this process: it looks at once
            waiter.wake()
        self._poke()
        return stored

    async def approve(self, run_id: str, name: str, *, by: str,
                      comment: str | None = None, id: str | None = None) -> bool:
        """Approve approval node ``name`` of run ``run_id`` as ``by`` (with an optional
        ``comment``): :meth:`signal` with ``{"approved": True, "by": by, "comment":
        comment}`` and its ``id``. Raises what :meth:`signal` raises: ``RuntimeError``,
        ``RunNotFound``, ``SignalRefused``, ``SerializationError``."""
        return await self.signal(run_id, name, {"approved": True, "by": by,
                                                "comment": comment}, id=id)

    async def reject(self, run_id: str, name: str, *, by: str,
                     comment: str | None = None, id: str | None = None) -> bool:
        """Reject approval node ``name`` of run ``run_id`` as ``by`` (with an optional
        ``comment``): the node fails with :class:`~flowrt.Rejected`. ``id`` dedupes as
        for :meth:`signal`. Raises what :meth:`signal` raises: ``RuntimeError``,
        ``RunNotFound``, ``SignalRefused``, ``SerializationError``."""
        return await self.signal(run_id, name, {"approved": False, "by": by,
                                                "comment": comment}, id=id)

    async def cancel(self, run_id: str) -> RunRecord | None:
        """Cancel run ``run_id``: its ``rt.run`` returns a CANCELLED result (as at its
        timeout; it does not raise), other runs go on untouched. Awaitable.

        A run going on in this runtime is stopped at once: its running nodes are
        cancelled, the others end CANCELLED. With a store, the run is cancelled through
        the store first: a queued or parked run at once; a running one is fenced out
        (nothing it writes from then on is kept) and -- in a worker or any other
        process -- stops at its next checkpoint or lease renewal. Cancelled durable runs
        can be resumed.

        Returns:
            With a store, the run's record as it was before; without one, None.

        Raises:
            RuntimeError: the runtime is not open.
            RunNotFound: no such run (without a store: none going on in this runtime).
        """
        from .durable import control

        if not self._open:
            raise RuntimeError("use the Runtime as 'async with Runtime(...) as rt' first")
        store = self.store
        if store is None:
            if not self._shared.stop_run(run_id):
                raise RunNotFound(run_id, "this runtime's runs in flight")
            return None
        # Through the store first (its holder, wherever it is, is fenced out: nothing it
        # writes from now on is kept), then a run of this runtime stops at once rather
        # than at its next write.
        record = await anyio.to_thread.run_sync(
            lambda: control.cancel(store, run_id, self.clock.now()))
        self._shared.stop_run(run_id)
        return record

    async def resume(self, run_id: str) -> RunRecord:
        """Resume run ``run_id`` through the store's queue; return its record as it was.

        A parked run is woken; a failed, cancelled or dead-lettered run (or one whose
        process died) is queued again. A worker with its workflow -- this runtime, if
        it serves -- takes it and runs what is left. A run rolled back to the end (it
        failed or was cancelled and its compensations ran) is over: it is refused, and
        nothing changes.

        Raises:
            RuntimeError: the runtime is not open.
            ValueError: the runtime has no store.
            RunNotFound: no such run (the message names a near run id).
            RunLeased: a live process runs it now.
            RunRolledBack: the run was rolled back to the end (start a new run).
        """
        from .durable import control

        store = self._need_store("resume()")
        record = await anyio.to_thread.run_sync(
            lambda: control.resume(store, run_id, self.clock.now()))
        self._poke()
        return record

    def schedule(self, workflow: Workflow, *, cron: str | None = None,
                 every: float | timedelta | None = None,
                 inputs: Mapping[str, Any] | None = None, name: str | None = None,
                 timezone: str = "UTC", catch_up: bool = False, start: float | None = None,
                 queue: str | None = None) -> ScheduleRecord:
        """Store a schedule: a run of ``workflow`` at every slot, fired by a worker.

        Each due slot becomes exactly one queued run ``sched:<name>:<slot>`` (``<slot>``
        the slot's time in UTC, ``2024-05-01T00:00:00Z``), however many workers share
        the store. Slots missed while no worker ran coalesce into one run (the latest)
        unless ``catch_up``. Declaring the same schedule again (at every start of a
        service) keeps its place; declaring it with other settings replaces it.

        Args:
            workflow: the workflow (added to the ones this runtime serves).
            cron: a cron expression (``"0 2 * * *"``: 2 a.m.), read in ``timezone``.
            every: an interval, in seconds or a ``timedelta`` (instead of ``cron``).
            inputs: the inputs of every run.
            name: the schedule's name (default: the workflow's).
            timezone: an IANA time zone name for ``cron`` (``"Europe/Riga"``).
            catch_up: fire every missed slot, not only the latest.
            start: the first slot of an interval schedule (seconds since the epoch;
                default: one interval from now); for cron, the first match from then.
            queue: the queue its runs go to.

        Returns:
            The stored :class:`~flowrt.durable.ScheduleRecord` (``next_due`` says when).

        Raises:
            RuntimeError: the runtime is not open.
            ValueError: no store; not exactly one of ``cron`` and ``every``; a cron
                expression that cannot be read; an unknown time zone.
            MissingInputError: an input the workflow needs is missing.
            SerializationError: the inputs cannot be stored.
        """
        store = self._need_store("schedule()")
        cron, seconds = check_spec(cron, every, timezone)
        plan = workflow.compile()
        given = dict(inputs) if inputs else {}
        plan.check_inputs(given)
        if given:
            plan.check_unknown_inputs(given)
        try:
            blob = store.serializer.dumps(given)
        except SerializationError as error:
            raise SerializationError(f"the inputs of the schedule cannot be stored: "
                                     f"{error}") from None
        self._workflows().add(workflow)
        record = schedule_record(name or workflow.name, workflow.name, blob,
                                 store.serializer.name, cron=cron, every=seconds,
                                 timezone=timezone, catch_up=catch_up, queue=queue,
                                 now=self.clock.now(), start=start)
        stored = store.put_schedule(record)
        self._poke()
        return stored

    def unschedule(self, name: str) -> bool:
        """Remove schedule ``name`` from the store; True if it was there. Runs it made
        stay.

        Raises:
            RuntimeError: the runtime is not open.
            ValueError: the runtime has no store.
        """
        return self._need_store("unschedule()").delete_schedule(name)



class _ChildRuns:
    """:meth:`Runtime.children_of`'s block, and the :data:`CHILD_RUNNER` it sets: a
    class rather than a generator and a closure, because every run enters one."""

    __slots__ = ("_runtime", "_settings", "_token")

    def __init__(self, runtime: Runtime, settings: RunSettings) -> None:
        self._runtime = runtime
        self._settings = settings

    def __enter__(self) -> None:
        self._token = CHILD_RUNNER.set(self)

    def __exit__(self, *exc: object) -> None:
        CHILD_RUNNER.reset(self._token)

    async def __call__(self, workflow: Workflow, run_id: str,
                       inputs: Mapping[str, Any]) -> RunResult:
        """Run ``workflow`` as child run ``run_id`` (a :class:`ChildRunner`)."""
        rt = self._runtime
        plan = workflow.compile()
        child = attrs.evolve(self._settings, timeout=None, max_concurrency=None)
        with rt._run_block(child, plan):
            if rt.store is not None:
                return await durable_run(rt.store, rt._shared, plan, run_id, inputs, None,
                                         child, None)
            return await prepare_run(rt._shared, plan, run_id, inputs, None,
                                     child).execute()


class _CountedChildRuns(_ChildRuns):
    """:class:`_ChildRuns` that also counts the run in flight (``Runtime._run_block``)."""

    __slots__ = ()

    def __enter__(self) -> None:
        self._runtime._shared.__enter__()
        super().__enter__()

    def __exit__(self, *exc: object) -> None:
        try:
            super().__exit__(*exc)
        finally:
            self._runtime._shared.__exit__(*exc)


class _NoChildRuns:
    """:meth:`Runtime.children_of`'s block for a plan without sub-workflows: nothing."""

    __slots__ = ()

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        pass


_NO_CHILD_RUNS: Final = _NoChildRuns()


async def run(workflow: Workflow | Plan, inputs: Mapping[str, Any] | None = None, *,
              store: Store | str | None = None, **options: Unpack[RunOptions]) -> RunResult:
    """Run ``workflow`` once on a private :class:`Runtime` (what ``Workflow.run`` does).

    ``inputs``, ``store`` and the ``options`` are :meth:`Workflow.run`'s, which lists
    what it raises.
    """
    async with private_runtime(store, options) as rt:
        return await rt.run(workflow, inputs, **options)


def private_runtime(store: Store | str | None, options: Mapping[str, Any]) -> Runtime:
    """The runtime of one :func:`run` (its cache in memory, for this run), once the run
    ``options`` are checked: a misspelt option is refused before a store is opened.
    ``Workflow.run`` opens it itself rather than awaiting :func:`run`, which spares each
    run a coroutine and a dict (docs/decisions/031-per-run-allocations.md)."""
    check_run_options(options)
    return Runtime(store=store)


def run_sync(workflow: Workflow | Plan, inputs: Mapping[str, Any] | None = None, *,
             backend: str = "asyncio", backend_options: Mapping[str, Any] | None = None,
             store: Store | str | None = None, **options: Unpack[RunOptions]) -> RunResult:
    """:func:`run` in a new event loop (``anyio.run``): what ``Workflow.run_sync`` does.

    ``workflow``, ``inputs``, ``store`` and the ``options`` are :func:`run`'s.
    ``backend`` is ``"asyncio"`` or ``"trio"``; ``backend_options`` go to
    :func:`anyio.run` as they are: ``{"use_uvloop": True}`` runs the asyncio backend on
    uvloop (``pip install 'flowrt[uvloop]'``), whose timers and callbacks cost a
    fraction of the standard loop's.

    Raises:
        RuntimeError: called inside a running event loop (``await run(...)`` there).
        ValueError: an unknown ``backend``, or uvloop asked for and not installed; and
            what :func:`run` raises.
    """
    if backend not in ("asyncio", "trio"):
        raise ValueError(f"backend must be 'asyncio' or 'trio', got {backend!r}")
    check_run_options(options)
    _refuse_running_loop()
    backend_opts = dict(backend_options) if backend_options else None
    if backend_opts and backend_opts.get("use_uvloop") and backend_opts.get("loop_factory") is None:
        try:
            import uvloop  # noqa: F401 -- only to say what is missing
        except ImportError:
            raise ValueError("backend_options={'use_uvloop': True} needs uvloop: "
                             "pip install 'flowrt[uvloop]'") from None
    return anyio.run(functools.partial(run, workflow, inputs, store=store, **options),
                     backend=backend, backend_options=backend_opts)


def _refuse_running_loop() -> None:
    """Say what to do instead when ``run_sync`` is called inside a running event loop."""
    library = _backends.running()
    if library is None:
        return  # no loop in this thread: run_sync may start one
    raise RuntimeError(f"run_sync() cannot start an event loop inside the running {library} "
                       "loop; in async code use 'await wf.run(...)' (or 'await rt.run(wf, "
                       "...)') instead")
