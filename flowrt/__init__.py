"""flowrt: an embeddable, asyncio-native workflow runtime.

A workflow is a static DAG of Python callables (async or sync) run inside your own
event loop, with concurrency limits, retries, timeouts, cancellation, durable resume
and observability:

>>> import flowrt
>>> wf = flowrt.Workflow("greet")
>>> @wf.node
... async def name(user_id: int) -> str:
...     return f"user-{user_id}"
>>> @wf.node
... def greeting(name: str) -> str:
...     return f"hello {name}"
>>> result = wf.run_sync({"user_id": 7})
>>> print(result["greeting"])
hello user-7
"""

from . import _compat
from ._engine.result import ItemResult, NodeResult, RunMetrics, RunResult
from ._engine.shared import ActiveRun, LimitUsage
from ._types import Cache, Event, EventKind, Retry, RunStatus, Status, Trigger
from .data import DataMetrics, Interner, WorkflowData, intern, intern_many
from .durable import (
    JSONSerializer,
    MemoryStore,
    NodeRecord,
    PickleSerializer,
    PostgresStore,
    RunRecord,
    SQLiteStore,
    Store,
    StoredRun,
)
from .errors import (
    BranchError,
    CacheKeyError,
    CycleError,
    DuplicateNodeError,
    FlowError,
    GraphError,
    HookError,
    LeaseLost,
    MapError,
    MissingInputError,
    NodeFailed,
    NoOutput,
    Rejected,
    RollbackCutOff,
    RunCancelled,
    RunLeased,
    RunNotFound,
    RunRolledBack,
    SerializationError,
    SignalRefused,
    SignalTimeout,
    StoreError,
    StoreUnavailable,
    SubWorkflowFailed,
    UnknownInputError,
    UnknownNodeError,
    WorkflowChanged,
    WorkflowFailed,
)
from .executors import Executor, ProcessExecutor, Remote, ThreadExecutor
from .runtime import Runtime
from .workflow import Context, Workflow

__version__ = "0.1.0"

_compat.install()


def __getattr__(name: str) -> object:
    # DaskExecutor needs the 'dask' extra: import it only when asked for.
    if name == "DaskExecutor":
        from .executors import DaskExecutor

        return DaskExecutor
    if name in _compat.MOVED_NAMES:
        return _compat.moved_name(name)
    raise AttributeError(f"module 'flowrt' has no attribute {name!r}")


__all__ = [
    "ActiveRun",
    "BranchError",
    "Cache",
    "CacheKeyError",
    "Context",
    "CycleError",
    "DaskExecutor",
    "DataMetrics",
    "DuplicateNodeError",
    "Event",
    "EventKind",
    "Executor",
    "FlowError",
    "GraphError",
    "HookError",
    "Interner",
    "ItemResult",
    "JSONSerializer",
    "LeaseLost",
    "LimitUsage",
    "MapError",
    "MemoryStore",
    "MissingInputError",
    "NoOutput",
    "NodeFailed",
    "NodeRecord",
    "NodeResult",
    "PickleSerializer",
    "PostgresStore",
    "ProcessExecutor",
    "Rejected",
    "Remote",
    "Retry",
    "RollbackCutOff",
    "RunCancelled",
    "RunLeased",
    "RunNotFound",
    "RunMetrics",
    "RunRecord",
    "RunResult",
    "RunRolledBack",
    "RunStatus",
    "Runtime",
    "SQLiteStore",
    "SerializationError",
    "SignalRefused",
    "SignalTimeout",
    "Status",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoredRun",
    "SubWorkflowFailed",
    "ThreadExecutor",
    "Trigger",
    "UnknownInputError",
    "UnknownNodeError",
    "Workflow",
    "WorkflowChanged",
    "WorkflowData",
    "WorkflowFailed",
    "__version__",
    "intern",
    "intern_many",
]
