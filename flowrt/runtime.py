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

import asyncio
import difflib
import functools
import time
import uuid
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

import anyio
import sniffio

from ._engine.events import normalize_hooks
from ._engine.limits import Limit
from ._engine.result import RunResult
from ._engine.supervisor import Supervisor
from ._types import EventKind, Hook, RunStatus, Status
from .data import WorkflowData
from .durable import open_store
from .durable._run import durable_run
from .executors import ProcessExecutor, ThreadExecutor

if TYPE_CHECKING:
    from .durable import Store
    from .workflow import Plan, Workflow

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
    """

    run_id: str | None
    max_concurrency: int | None
    limits: Mapping[str, int] | None
    fail_fast: bool
    timeout: float | None
    data: WorkflowData | None
    executor: Any
    on_event: Hook | Sequence[Hook] | None
    resume: str | None
    metrics: bool | float | None
    strict_inputs: bool


#: the names RunOptions takes
RUN_OPTIONS = frozenset(RunOptions.__annotations__)


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


def _check_executor(executor: Any) -> None:
    if executor is None or executor in ("thread", "loop", "process"):
        return
    if isinstance(executor, str) or not hasattr(executor, "run"):
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

    Raises:
        TypeError: ``limits`` is not a mapping of names to capacities.
        ValueError: a bad capacity or ``executor``.

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
        executor: Any = None,
        threads: int = 40,
        metrics: bool | float = True,
    ) -> None:
        _check_executor(executor)
        _check_limits(limits)
        self._cap = (Limit("max_concurrency", max_concurrency)
                     if max_concurrency is not None else None)
        self._limits = {name: Limit(name, k) for name, k in (limits or {}).items()}
        self._store_arg = store
        self.store: Store | None = None
        self.executor = executor
        self.threads = threads
        self.metrics = metrics
        self._threads: anyio.CapacityLimiter | None = None
        self._owned: dict[str, Any] = {}  # executors this runtime created, by name
        self._open = False

    async def __aenter__(self) -> Runtime:
        if self._open:
            raise RuntimeError("this Runtime is already open")
        self._threads = None  # made at the first sync node (most runs have none)
        if self._store_arg is not None:
            self.store = open_store(self._store_arg)
        self._open = True
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._open = False
        with anyio.CancelScope(shield=True):
            for executor in self._owned.values():
                close = getattr(executor, "aclose", None)
                if close is not None:
                    await close()
            self._owned.clear()
            if self.store is not None and self.store is not self._store_arg:
                self.store.close()  # a store this runtime opened from a path
            self.store = None

    def thread_limiter(self) -> anyio.CapacityLimiter:
        """The limiter of this runtime's worker threads (made on first use)."""
        if self._threads is None:
            self._threads = anyio.CapacityLimiter(self.threads)
        return self._threads

    def executor_for(self, where: Any) -> Any:
        """The executor object for ``where``, an ``executor=`` value.

        Raises:
            ValueError: ``where`` is a str that names no executor.
        """
        if isinstance(where, str):
            executor = self._owned.get(where)
            if executor is None:
                if where == "process":
                    executor = ProcessExecutor()
                elif where == "thread":
                    executor = ThreadExecutor(self.threads)
                else:
                    raise ValueError(f"unknown executor {where!r}; expected 'loop', 'thread', "
                                     "'process' or an executor object")
                self._owned[where] = executor
            return executor
        return where

    async def run(self, workflow: Workflow | Plan, inputs: Mapping[str, Any] | None = None,
                  **options: Unpack[RunOptions]) -> RunResult:
        """Run ``workflow`` once and return its :class:`~flowrt.RunResult`.

        Args:
            workflow: a :class:`~flowrt.Workflow` or its compiled plan.
            inputs: values of the run inputs (parameters that are no node), by name.
            options: :class:`RunOptions` (the same for ``Workflow.run`` and
                ``run_sync``).

        Raises:
            RuntimeError: the runtime is not open (``async with`` it first).
            MissingInputError: a required input is missing.
            UnknownInputError: an input that no node takes (unless
                ``strict_inputs=False``).
            TypeError: an unknown option (naming the near match), or ``limits`` that is
                not a mapping.
            ValueError: a bad option value, or an input named like a node.

        All of these are raised before any node runs. Cancelling the caller cancels
        every running node and the cancellation propagates; the nodes end CANCELLED.
        """
        if not self._open:
            raise RuntimeError("use the Runtime as 'async with Runtime(...) as rt' first")
        check_run_options(options)
        plan = workflow if not hasattr(workflow, "compile") else workflow.compile()
        if inputs and options.get("strict_inputs", True):
            plan.check_unknown_inputs(inputs)
        max_concurrency = options.get("max_concurrency")
        if max_concurrency is not None and (
            not isinstance(max_concurrency, int) or max_concurrency < 1
        ):
            raise ValueError(f"max_concurrency must be an int >= 1, got {max_concurrency!r}")
        timeout = options.get("timeout")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        hooks = normalize_hooks(options.get("on_event"))
        limits = options.get("limits")
        _check_limits(limits)
        for name, capacity in (limits or {}).items():
            Limit(name, capacity)  # raises ValueError for a bad capacity, before anything
        executor = options.get("executor")
        _check_executor(executor)
        data = options.get("data")
        resume = options.get("resume")
        metrics = options.get("metrics")
        fail_fast = options.get("fail_fast", False)
        run_id = options.get("run_id")
        run_id = run_id or uuid.uuid4().hex
        settings: dict[str, Any] = dict(max_concurrency=max_concurrency, limits=limits,
                                        fail_fast=fail_fast,
                                        hooks=hooks, executor=executor, metrics=metrics)
        if self.store is not None:
            result: RunResult = await durable_run(self, plan, run_id, inputs, data, timeout,
                                                  resume, settings)
            return result
        if resume is not None:
            raise ValueError("resume= needs a store (store='runs.db' or a Store object)")
        given, data = self.prepare(plan, inputs, data)
        sup = self.supervisor(plan, run_id, given, data, **settings)
        return await self.drive(sup, timeout)

    def prepare(self, plan: Plan, inputs: Mapping[str, Any] | None,
                data: WorkflowData | None) -> tuple[dict[str, Any], WorkflowData]:
        """Check the inputs and lay the run's data out for ``plan``."""
        given = dict(inputs) if inputs else {}
        plan.check_inputs(given)
        if data is None:
            data = WorkflowData(len(plan) + len(given) + 8)
        data.attach(plan)
        for k, v in given.items():
            data.set(k, v)
        return given, data

    def supervisor(self, plan: Plan, run_id: str, inputs: Mapping[str, Any],
                   data: WorkflowData, *, max_concurrency: int | None,
                   limits: Mapping[str, int] | None, fail_fast: bool,
                   hooks: tuple[Hook, ...], executor: Any, metrics: bool | float | None
                   ) -> Supervisor:
        """The supervisor of one run (used by :meth:`run` and durable runs)."""
        return Supervisor(
            self, plan, run_id, inputs, data, max_concurrency=max_concurrency, limits=limits,
            fail_fast=fail_fast, hooks=hooks,
            executor=executor if executor is not None else self.executor,
            metrics=self.metrics if metrics is None else metrics,
        )

    async def drive(self, sup: Supervisor, timeout: float | None) -> RunResult:
        """Run ``sup`` to the end and build the result."""
        plan = sup.plan
        wall_start = time.time()
        clock_start = time.perf_counter()
        if sup.log_runs:
            sup.log.info("run started", nodes=len(plan))
        await sup.run(timeout)
        wall_time = time.perf_counter() - clock_start
        board = sup.board
        if sup.stopped_by_failure or (board.count(Status.FAILED) and not sup.timed_out):
            status = RunStatus.FAILED
        elif sup.timed_out or board.count(Status.CANCELLED):
            status = RunStatus.CANCELLED
        else:
            status = RunStatus.SUCCEEDED
        n = len(plan)
        result = RunResult(plan, sup.run_id, status, bytearray(board), sup.values[:n],
                           sup.attempts, sup.started, sup.finished, sup.errors, sup.data,
                           wall_start, wall_start - sup.time_base, wall_time, sup.timed,
                           sup.hook_errors)
        if status is RunStatus.FAILED:
            if sup.log_failures:
                sup.log.warning("run finished", status=str(status), seconds=round(wall_time, 6))
        elif sup.log_runs:
            sup.log.info("run finished", status=str(status), seconds=round(wall_time, 6))
        if sup.trace:
            sup.emit(EventKind.RUN_FINISHED, -1, status=str(status))
        return result


async def run(workflow: Workflow | Plan, inputs: Mapping[str, Any] | None = None, *,
              store: Store | str | None = None, **options: Unpack[RunOptions]) -> RunResult:
    """Run ``workflow`` once on a private :class:`Runtime` (what ``Workflow.run`` does).

    ``inputs``, ``store`` and the ``options`` are :meth:`Workflow.run`'s, which lists
    what it raises.
    """
    check_run_options(options)
    async with Runtime(store=store) as rt:
        return await rt.run(workflow, inputs, **options)


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
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        try:  # a plain callback of a running asyncio loop has no current task
            asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop in this thread: run_sync may start one
        library = "asyncio"
    raise RuntimeError(f"run_sync() cannot start an event loop inside the running {library} "
                       "loop; in async code use 'await wf.run(...)' (or 'await rt.run(wf, "
                       "...)') instead")
