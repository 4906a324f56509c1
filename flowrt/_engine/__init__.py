"""The engine: one supervisor per run, node invocation, limits, events, results.

Private: users reach it through :class:`flowrt.Runtime` and ``Workflow.run``. The
engine knows plans (``flowrt.workflow``), data (``flowrt.data``) and executors
(``flowrt.executors``); durable checkpoints plug in from above through the supervisor's
``checkpoint`` slot. See docs/decisions/003-runners-not-tasks.md and 008-layers.md.
"""
