"""The engine: one supervisor per run, node invocation, limits, events, results.

Private: users reach it through :class:`flowrt.Runtime` and ``Workflow.run``. The
engine knows plans (``flowrt.workflow``), data (``flowrt.data``) and executors
(``flowrt.executors``). What the layers above use of it is small: a run is built by
:func:`run.prepare_run` on a runtime's :class:`shared.Shared` resources and started
with ``Run.execute``; a durable run reads the :class:`state.RunState` and plugs in a
:class:`state.Checkpoint`. See docs/decisions/003-runners-not-tasks.md and
008-layers.md.
"""
