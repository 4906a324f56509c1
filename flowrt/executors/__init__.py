"""Where a sync node's callable runs: a thread (the default), a process, a Dask cluster.

An executor is any object with ``async def run(self, fn, args, kwargs)`` (the
:class:`Executor` protocol); one that can leave outputs on its cluster is a
:class:`RemoteExecutor` (``run(..., keep=True)``, ``fetch_many``, ``release``). Built
in: :class:`ThreadExecutor`, :class:`ProcessExecutor`, and :class:`DaskExecutor` (the
``dask`` extra, imported when first asked for). See docs/executors.md.
"""

from typing import TYPE_CHECKING

from ._base import Executor, Remote, RemoteExecutor
from ._local import ProcessExecutor, ThreadExecutor

if TYPE_CHECKING:
    from ._dask import DaskExecutor


def __getattr__(name: str) -> object:
    # DaskExecutor needs the 'dask' extra: import it only when asked for.
    if name == "DaskExecutor":
        from ._dask import DaskExecutor

        return DaskExecutor
    raise AttributeError(f"module 'flowrt.executors' has no attribute {name!r}")


__all__ = ["DaskExecutor", "Executor", "ProcessExecutor", "Remote", "RemoteExecutor",
           "ThreadExecutor"]
