"""A run's data: :class:`WorkflowData` (a slab of values addressed by interned keys),
the status board (a status byte per node), and the interner behind both.

``WorkflowData`` is what users touch (``ctx.data``, ``result.data``, ``data=`` on a
run). :class:`Interner`, ``intern`` and ``intern_many`` map strings to dense small ints;
:class:`StatusBoard` is the run's per-node status array. The last two are public for the
benchmarks and for tools that build their own slabs; most programs never need them.
"""

from ._interner import Interner, intern, intern_many
from ._status_board import StatusBoard
from ._workflow_data import DataMetrics, WorkflowData

__all__ = ["DataMetrics", "Interner", "StatusBoard", "WorkflowData", "intern", "intern_many"]
