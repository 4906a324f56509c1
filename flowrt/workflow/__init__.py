"""Defining workflows: :class:`Workflow`, its nodes' options, and compilation to a
:class:`Plan`.

``Workflow`` is re-exported as ``flowrt.Workflow``; :class:`Plan` (what
``wf.compile()`` returns), :class:`NodeSpec` (``wf.nodes[name]``) and
:class:`NodeOptions` are public here for type annotations and tools.
"""

from ._context import Context
from ._options import NodeOptions, NodeSpec
from ._plan import Plan
from ._waits import WaitSpec
from ._workflow import Workflow

__all__ = ["Context", "NodeOptions", "NodeSpec", "Plan", "WaitSpec", "Workflow"]
