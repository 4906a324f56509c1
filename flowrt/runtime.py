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
import uuid
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

import anyio

from . import _backends
from ._engine.events import normalize_hooks
from ._engine.limits import Limit
from ._engine.result import RunResult
from ._engine.run import RunSettings, prepare_run
from ._engine.shared import Shared
from ._types import Executor, ExecutorChoice, Hook
from .data import WorkflowData
from .durable import open_store
from .durable._run import durable_run
from .workflow import Plan

if TYPE_CHECKING:
    from .durable import Store
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
        shutdown_grace: seconds the runs still going on when the ``async with`` block
            ends get to finish before they are stopped (below); None waits for them.

    Raises:
        TypeError: ``limits`` is not a mapping of names to capacities.
        ValueError: a bad capacity, ``executor`` or ``shutdown_grace``.

    Leaving the ``async with`` block shuts the runtime down: ``run`` refuses new runs
    (``RuntimeError``); runs still going on get ``shutdown_grace`` seconds to finish (0
    by default; None waits for them however long they take), then they are stopped as
    a run timeout stops a run (their nodes end CANCELLED and each ``run`` call returns a
    :class:`~flowrt.RunResult` with status CANCELLED, recorded so in the store); the
    block ends when they have, and only then are the store and executors closed.

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
        shutdown_grace: float | None = 0.0,
    ) -> None:
        _check_executor(executor)
        _check_limits(limits)
        if shutdown_grace is not None and (
            not isinstance(shutdown_grace, int | float) or isinstance(shutdown_grace, bool)
            or not shutdown_grace >= 0
        ):
            raise ValueError(f"shutdown_grace must be seconds >= 0 or None, "
                             f"got {shutdown_grace!r}")
        self._shared = Shared(max_concurrency=max_concurrency, limits=limits, threads=threads)
        self._store_arg = store
        self.store: Store | None = None
        self.executor = executor
        self.threads = threads
        self.metrics = metrics
        self.shutdown_grace = shutdown_grace
        self._open = False
        self._closed = False
        self._in_flight = 0  # rt.run calls going on
        self._idle: anyio.Event | None = None  # set when _in_flight drops to 0 (shutdown)

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
        self._open = True
        self._closed = False
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._open = False  # run() refuses new runs from here on
        self._closed = True
        try:
            if self._in_flight and self.shutdown_grace != 0:
                self._idle = anyio.Event()
                with anyio.move_on_after(self.shutdown_grace):
                    await self._idle.wait()
        finally:
            # Even when the block was left by a cancellation: the runs must record how
            # they ended before the store closes under them.
            with anyio.CancelScope(shield=True):
                if self._in_flight:
                    self._idle = self._idle or anyio.Event()
                    self._shared.stop_runs()
                    await self._idle.wait()
                self._idle = None
                await self._shared.aclose()
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
            TypeError: an unknown option (naming the near match), or ``limits`` that is
                not a mapping.
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
        run_id = options.get("run_id") or uuid.uuid4().hex
        settings = RunSettings(
            max_concurrency=max_concurrency, limits=limits,
            fail_fast=options.get("fail_fast", False), timeout=timeout, hooks=hooks,
            executor=executor if executor is not None else self.executor,
            metrics=self.metrics if metrics is None else metrics,
        )
        self._in_flight += 1
        try:
            if self.store is not None:
                return await durable_run(self.store, self._shared, plan, run_id, inputs, data,
                                         settings, resume)
            if resume is not None:
                raise ValueError("resume= needs a store (store='runs.db' or a Store object)")
            return await prepare_run(self._shared, plan, run_id, inputs, data,
                                     settings).execute()
        finally:
            self._in_flight -= 1
            if not self._in_flight and self._idle is not None:
                self._idle.set()


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
    library = _backends.running()
    if library is None:
        return  # no loop in this thread: run_sync may start one
    raise RuntimeError(f"run_sync() cannot start an event loop inside the running {library} "
                       "loop; in async code use 'await wf.run(...)' (or 'await rt.run(wf, "
                       "...)') instead")
