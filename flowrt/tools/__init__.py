"""What people look at and type: the command line, live progress, the HTML report,
and the Mermaid / DOT pictures. Nothing in flowrt below this layer imports it (but for
the declared one-line conveniences ``Workflow.to_mermaid`` / ``to_dot`` and
``RunResult.to_mermaid`` / ``to_dot``).

Public modules: :mod:`flowrt.tools.report` (``render``, ``write``) and
:mod:`flowrt.tools.viz` (``to_mermaid``, ``to_dot``).
"""
