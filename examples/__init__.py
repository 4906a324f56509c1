"""The bundled examples: ``python -m flowrt examples`` runs them.

Each example is a module of its own that does real work with real I/O, and each is
also a script (``python examples/checkout.py`` in a checkout of the repository). The
installed package ships them as ``flowrt.examples``.

Every example module has a workflow (or a few) at module level and::

    async def demo(on_event=None, say=print) -> list[flowrt.RunResult]

which runs the example's scenario, passing ``on_event`` to its runs and narrating with
``say``, and returns the results of its runs. It raises when what the example shows did
not happen (say, the compensating refund did not run), so ``python -m flowrt examples``
can tell a working example from a broken one.
"""

#: name -> what the example shows, in the order ``python -m flowrt examples`` runs them
EXAMPLES: dict[str, str] = {
    "checkout": "e-commerce checkout: a flaky payment retried, a compensating refund "
                "when shipping fails (a saga: compensate=)",
    "etl": "ETL: CSV files -> validate -> transform || enrich -> aggregate -> SQLite -> "
           "report, CPU steps in threads",
    "api": "API orchestration against a local HTTP server that fails some calls and "
           "rate-limits: retries and a named limit",
    "durable": "a durable run that stops half-way and is resumed from its SQLite store, "
               "without redoing what was done",
    "scheduled": "a nightly cron schedule fired by two workers from one store, missed "
                 "nights coalesced (a fake clock: a week in a second)",
    "order_flow": "an order flow with a branch and a saga: express or standard shipping, "
                  "the untaken path bypassed, merged again to ship; a failed shipment "
                  "cancels the booking and refunds the payment (durable)",
    "approval": "quote -> manager approval -> order: a worker process parks the run, "
                "'flowrt approve' / 'reject' from the command line wakes it",
}

__all__ = ["EXAMPLES"]
