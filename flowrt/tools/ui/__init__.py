"""The live dashboard: ``python -m flowrt ui --store runs.db`` (the ``ui`` extra:
Starlette on uvicorn).

It serves, from the store alone, the runs (filtered, counted, their status live), each
run (its graph coloured as it goes, timeline, node table with attempts, durations and
tracebacks, waits, sub-workflows and map items, compensation), the schedules, and the
processes holding runs with their leases; and the actions cancel, resume, signal,
approve and reject, through the same store operations as the command line. See
docs/dashboard.md.

:func:`create_app` makes the ASGI application, to serve with uvicorn or to mount in a
service's own ASGI application::

    from flowrt import SQLiteStore
    from flowrt.tools.ui import create_app

    app = create_app(SQLiteStore("runs.db"))      # uvicorn module:app
"""

try:
    from ._app import create_app
except ModuleNotFoundError as error:  # said once, clearly, rather than deep in Starlette
    if error.name not in ("starlette", "uvicorn"):
        raise
    raise ModuleNotFoundError(f"flowrt.tools.ui needs the 'ui' extra ({error.name} is not "
                              "installed): pip install 'flowrt[ui]'", name=error.name) from None

__all__ = ["create_app"]
