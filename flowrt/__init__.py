"""flowrt: an embeddable, asyncio-native workflow runtime.

A workflow is a static DAG of Python callables (async or sync) run inside your own
event loop, with concurrency limits, retries, timeouts, cancellation, durable resume
and observability::

    import flowrt

    wf = flowrt.Workflow("greet")

    @wf.node
    async def name(user_id: int) -> str:
        return f"user-{user_id}"

    @wf.node
    def greeting(name: str) -> str:
        return f"hello {name}"

    result = wf.run_sync({"user_id": 7})
    print(result["greeting"])  # hello user-7
"""

from .context import Context
from .data import DataMetrics, WorkflowData
from .errors import (
    CycleError,
    DuplicateNodeError,
    FlowError,
    GraphError,
    MissingInputError,
    NodeFailed,
    NoOutput,
    RunLeased,
    StoreError,
    UnknownNodeError,
    WorkflowChanged,
    WorkflowFailed,
)
from .events import Event, EventKind, HookError
from .executors import Executor, ProcessExecutor, Remote, ThreadExecutor
from .graph import NodeOptions, NodeSpec, Workflow
from .intern import Interner, intern, intern_many
from .plan import Plan
from .result import NodeResult, RunMetrics, RunResult, RunStatus
from .retry import Retry
from .runtime import Runtime
from .serialize import JSONSerializer, PickleSerializer, SerializationError
from .sqlite_store import SQLiteStore
from .status import Status, StatusBoard
from .store import MemoryStore, NodeRecord, RunRecord, Store, StoredRun
from .trigger import Trigger

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # DaskExecutor needs the 'dask' extra: import it only when asked for.
    if name == "DaskExecutor":
        from .dask import DaskExecutor

        return DaskExecutor
    raise AttributeError(f"module 'flowrt' has no attribute {name!r}")


__all__ = [
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
    "JSONSerializer",
    "MemoryStore",
    "MissingInputError",
    "NoOutput",
    "NodeFailed",
    "NodeOptions",
    "NodeRecord",
    "NodeResult",
    "NodeSpec",
    "PickleSerializer",
    "Plan",
    "ProcessExecutor",
    "Remote",
    "Retry",
    "RunLeased",
    "RunMetrics",
    "RunRecord",
    "RunResult",
    "RunStatus",
    "Runtime",
    "Status",
    "StatusBoard",
    "SQLiteStore",
    "SerializationError",
    "Store",
    "StoreError",
    "StoredRun",
    "ThreadExecutor",
    "Trigger",
    "UnknownNodeError",
    "Workflow",
    "WorkflowChanged",
    "WorkflowData",
    "WorkflowFailed",
    "__version__",
    "intern",
    "intern_many",
]
