"""The dashboard as an ASGI application (Starlette): its routes, reading the store off
the event loop, the live parts of pages, and the actions.

Routes (``GET`` unless said):

- ``/`` the runs list; ``/run?id=RUN`` a run; ``/schedules``; ``/workers``;
- ``/live/runs?...``, ``/live/run?id=RUN``, ``/live/schedules``, ``/live/workers``: the
  live parts of those pages as JSON ``{"v": version, "sections": {name: html}}``, or
  204 when the page's version (``?v=``) is still current;
- ``/api/runs?...``, ``/api/run?id=RUN``, ``/api/schedules``, ``/api/workers``: the same
  data as JSON (``RunRecord.to_dict()``, ``StoredRun.to_dict()``...), for scripts;
- ``POST /actions/cancel|resume|signal|approve|reject``: the actions (form fields
  ``run_id``, ``csrf``, and ``name``, ``payload``, ``signal_id``, ``by``, ``comment`` as
  the action needs), answered with a redirect to the run's page (303);
- ``/login`` (the form), ``POST /login``, ``POST /logout``; ``/static/...``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..._engine.result import jsonable
from ...durable import RunRecord, Store, StoredRun
from ...errors import StoreError
from .._view import RunView
from ..report import CSS as REPORT_CSS
from ..report import MAX_NODES
from ._actions import ACTIONS, ActionError, available, perform
from ._data import (
    BadRequest,
    RunFilter,
    RunsCache,
    Snapshot,
    child_runs,
    holders,
    parent_of,
)
from ._pages import (
    Layout,
    RunForms,
    Waits,
    error_body,
    login_page,
    missing_run,
    run_body,
    run_form_sections,
    run_heavy_sections,
    run_light_sections,
    run_links,
    runs_body,
    runs_sections,
    schedules_sections,
    workers_sections,
)
from ._security import AUTH_COOKIE, SESSION_COOKIE, Guard, safe_next

__all__ = ["create_app"]

T = TypeVar("T")

#: the largest request body taken (a signal's payload comes in a form)
MAX_BODY = 256 * 1024
#: cookie holding the message of the action just done (read once)
FLASH_COOKIE = "flowrt_ui_flash"
#: how often pages ask for their live parts (milliseconds), at least
POLL_MS = 1500
#: the statuses of runs whose node records no longer change (until a resume)
_FINAL = frozenset({"succeeded", "failed", "cancelled", "dead_letter"})
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".svg": "image/svg+xml"}


def _version(sections: Mapping[str, str], csrf: str) -> str:
    """A page's version: a hash of its live parts, but for the session's CSRF token (a
    client that keeps no cookie gets a new session each time, and the same version)."""
    digest = hashlib.blake2b(digest_size=12)
    for name in sorted(sections):
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(sections[name].replace(csrf, "").encode("utf-8", "backslashreplace"))
        digest.update(b"\0")
    return digest.hexdigest()


def _encode(text: str) -> bytes:
    # backslashreplace: a lone surrogate (a name decoded with surrogateescape) is shown
    # as \udcXX rather than failing the page
    return text.encode("utf-8", "backslashreplace")


def _json(data: Any, status: int = 200) -> Response:
    body = json.dumps(jsonable(data), ensure_ascii=True, separators=(",", ":"))
    return Response(body.encode("ascii"), status, media_type="application/json",
                    headers={"cache-control": "no-store"})


def _static_files() -> dict[str, tuple[bytes, str]]:
    files = {"report.css": (REPORT_CSS.encode(), _STATIC_TYPES[".css"])}
    folder = resources.files(__package__).joinpath("static")
    for entry in folder.iterdir():
        name = entry.name
        kind = _STATIC_TYPES.get(name[name.rfind("."):])
        if kind is not None:
            files[name] = (entry.read_bytes(), kind)
    return files


class _RunData:
    """A run as its page needs it (read in a worker thread)."""

    def __init__(self, data: dict[str, Any], view: RunView, waits: Waits,
                 children: Any, parent: str | None) -> None:
        self.data = data
        self.view = view
        self.waits = waits
        self.children = children
        self.parent = parent


class Dashboard:
    """The routes of the dashboard over ``store`` (see the module docs).

    Args:
        store: any :class:`~flowrt.durable.Store`.
        guard: the token, CSRF and header checks (:class:`._security.Guard`).
        label: what the pages call the store (its path; a URL without its password).
        max_nodes: runs of more nodes are summarised on their page, as in the report.
        refresh: the runs list is read from the store at most once per this many
            seconds, however many pages look.
    """

    def __init__(self, store: Store, guard: Guard, label: str, *, max_nodes: int = MAX_NODES,
                 refresh: float = 1.0) -> None:
        self.store = store
        self.guard = guard
        self.label = label
        self.max_nodes = max_nodes
        self.cache = RunsCache(store, refresh)
        self.static = _static_files()
        #: run id -> (what its page showed, its sections, its forms, its title): see
        #: _run_sections
        self._pages: OrderedDict[str, tuple[Any, dict[str, str], RunForms, str]] = (
            OrderedDict())

    # -- plumbing ---------------------------------------------------------------------

    @staticmethod
    async def _thread(fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args)

    def _session(self, request: Request) -> tuple[str, bool]:
        session = request.cookies.get(SESSION_COOKIE, "")
        if 16 <= len(session) <= 64 and session.replace("-", "").replace("_", "").isalnum():
            return session, False
        return self.guard.new_session(), True

    def _layout(self, request: Request, session: str) -> Layout:
        return Layout(request.scope.get("root_path", ""), self.label,
                      self.guard.csrf_for(session), logout=self.guard.token is not None)

    def _html(self, text: str, *, status: int = 200, session: tuple[str, bool] | None = None,
              clear_flash: bool = False) -> Response:
        response = Response(_encode(text), status, media_type="text/html; charset=utf-8",
                            headers={"cache-control": "no-store"})
        if session is not None and session[1]:
            response.headers.append("set-cookie", self.guard.cookie(SESSION_COOKIE,
                                                                     session[0]))
        if clear_flash:
            response.headers.append("set-cookie", self.guard.cookie(FLASH_COOKIE, "",
                                                                     max_age=0))
        return response

    @staticmethod
    def _flash(request: Request) -> str | None:
        text = request.cookies.get(FLASH_COOKIE)
        return unquote(text)[:1000] if text else None

    def _page(self, request: Request, title: str, nav: str, body: Callable[[Layout], str],
              *, status: int = 200, live: str | None = None, version: str = "") -> Response:
        session = self._session(request)
        layout = self._layout(request, session[0])
        text = layout.page(title, nav, body(layout), live=live, version=version, every=POLL_MS)
        return self._html(text, status=status, session=session,
                          clear_flash=FLASH_COOKIE in request.cookies)

    def _store_error(self, request: Request, error: StoreError) -> Response:
        return self._page(request, "the store cannot be read", "",
                          lambda layout: error_body(layout, "The store cannot be read",
                                                    str(error)), status=500)

    @staticmethod
    def _live(layout: Layout, sections: Mapping[str, str], given: str | None,
              cost: float) -> Response:
        """The live parts of a page, or 204 when the page (at version ``given``) has
        them. ``X-Next-Poll``: when to ask again (ms): a page that takes the server
        ``cost`` seconds to look at is asked for at most a tenth of the time."""
        version = _version(sections, layout.csrf)
        every = str(max(POLL_MS, min(10_000, int(cost * 10_000))))
        headers = {"cache-control": "no-store", "x-next-poll": every}
        if given == version:
            return Response(status_code=204, headers=headers)
        response = _json({"v": version, "sections": dict(sections)})
        response.headers.update(headers)
        return response

    # -- the runs list ----------------------------------------------------------------

    def _runs_sections(self, layout: Layout, flt: RunFilter) -> tuple[Snapshot, dict[str, str]]:
        snap = self.cache.get()
        return snap, runs_sections(layout, snap, flt)

    async def runs(self, request: Request) -> Response:
        try:
            flt = RunFilter.from_query(request.query_params)
        except BadRequest as error:
            message = str(error)
            return self._page(request, "bad filter", "runs", lambda layout: error_body(
                layout, "Bad filter", message), status=400)
        session = self._session(request)
        layout = self._layout(request, session[0])
        try:
            snap, sections = await self._thread(self._runs_sections, layout, flt)
        except StoreError as error:
            return self._store_error(request, error)
        live = layout.url("/live/runs", flt.params())
        text = layout.page("runs", "runs", runs_body(layout, snap, flt, sections,
                                                     self._flash(request)),
                           live=live, version=_version(sections, layout.csrf), every=POLL_MS)
        return self._html(text, session=session, clear_flash=FLASH_COOKIE in request.cookies)

    async def live_runs(self, request: Request) -> Response:
        try:
            flt = RunFilter.from_query(request.query_params)
        except BadRequest as error:
            return _json({"error": str(error)}, 400)
        layout = self._layout(request, self._session(request)[0])
        t0 = time.perf_counter()
        try:
            snap, sections = await self._thread(self._runs_sections, layout, flt)
        except StoreError as error:
            return _json({"error": str(error)}, 500)
        # the store's runs are read at most once per refresh, whoever asks: what this
        # look cost is the reading's share plus the drawing
        cost = max(time.perf_counter() - t0, snap.cost)
        return self._live(layout, sections, request.query_params.get("v"), cost)

    async def api_runs(self, request: Request) -> Response:
        try:
            flt = RunFilter.from_query(request.query_params)
            limit = int(request.query_params.get("limit", "100"))
        except (BadRequest, ValueError) as error:
            return _json({"error": str(error)}, 400)
        try:
            snap = await self._thread(self.cache.get)
        except StoreError as error:
            return _json({"error": str(error)}, 500)
        chosen, counts = snap.select(flt)
        first = (flt.page - 1) * max(0, limit)
        return _json({"total": len(chosen), "counts": counts,
                      "runs": chosen[first:first + max(0, limit)]})

    # -- a run ------------------------------------------------------------------------

    def _read_run(self, run_id: str, stored: StoredRun | None = None) -> _RunData | None:
        stored = self.store.load(run_id) if stored is None else stored
        if stored is None:
            return None
        data = stored.to_dict()
        snap = self.cache.get()
        nodes = data.get("nodes")
        names = list(nodes) if isinstance(nodes, Mapping) else []
        kinds = data.get("waits")
        waiting = data.get("waiting_for")
        waits = Waits(kinds if isinstance(kinds, Mapping) else {},
                      [w for w in waiting if isinstance(w, Mapping)]
                      if isinstance(waiting, list) else [])
        return _RunData(data, RunView.from_dict(data), waits,
                        child_runs(run_id, names, snap), parent_of(run_id, snap.ids))

    def _run_key(self, run_id: str, record: RunRecord, stored: StoredRun | None) -> Any:
        """What a run's page shows changes only when this does: the run's record, its
        node records (read when the run may still change them), its child runs."""
        snap = self.cache.get()
        prefix = run_id + "/"
        children = tuple((r.get("run_id"), r.get("status"), r.get("finished"),
                          r.get("interrupted")) for r in snap.runs
                         if str(r.get("run_id", "")).startswith(prefix))
        parent = parent_of(run_id, snap.ids)
        head = (record.status, record.fence, record.finished, record.resumes,
                record.lease_expires, record.owner, record.is_interrupted(), children, parent)
        if stored is None:
            return head
        # the node records without their outputs, errors and tracebacks (which change
        # only with the rest), and how many signals came
        nodes = tuple((r[0], r[1], r[2], *r[6:]) for r in stored.nodes.values())
        return (*head, nodes, len(getattr(stored, "signals", ())))

    def _run_sections(self, layout: Layout, run_id: str
                      ) -> tuple[_RunData | None, dict[str, str], str] | None:
        """The sections of a run's page and its title, or None when there is no such run.

        The page of a finished run changes only with its record (a resume or a cancel
        moves its fence), so it is drawn again only then; a live run's node records are
        read at each look, and the page is drawn again when they changed. Reading and
        drawing 10,000 nodes costs ~0.2 s, reading them again ~0.04 s (perf/bench_ui.py).
        """
        record = self.store.get_run(run_id)
        if record is None:
            return None
        stored = None
        if record.status not in _FINAL:
            stored = self.store.load(run_id)
            if stored is None:
                return None
            record = stored.record
        key = (layout.base, self._run_key(run_id, record, stored))
        cached = self._pages.get(run_id)
        run = None
        if cached is not None and cached[0] == key:
            self._pages.move_to_end(run_id)
            _, sections, forms, title = cached
        else:
            run = self._read_run(run_id, stored)
            if run is None:
                return None
            links = run_links(layout, run_id, run.children)
            light, forms = run_light_sections(layout, run.view, run.data, run.waits,
                                              run.children, run.parent)
            sections = {**light, **run_heavy_sections(run.view, run.data, links,
                                                      self.max_nodes)}
            title = f"{run.view.workflow} \u00b7 run {run.view.run_id}"
            self._pages[run_id] = (key, sections, forms, title)
            while len(self._pages) > 32:
                self._pages.popitem(last=False)
        # the forms carry the session's CSRF token: drawn for each look (they are small)
        return run, {**sections, **run_form_sections(layout, forms,
                                                     actions=available())}, title

    def _missing(self, run_id: str) -> list[str]:
        ids = self.cache.get().ids
        return difflib.get_close_matches(run_id, list(ids), n=3, cutoff=0.6)

    async def run(self, request: Request, error: str | None = None,
                  status: int = 200) -> Response:
        run_id = request.query_params.get("id", "")
        if request.method == "POST":
            run_id = request.scope.get("state", {}).get("run_id", run_id)
        session = self._session(request)
        layout = self._layout(request, session[0])
        try:
            found = await self._thread(self._run_sections, layout, run_id)
            if found is None:
                near = await self._thread(self._missing, run_id)
                text = layout.page("no such run", "runs", missing_run(layout, run_id, near))
                return self._html(text, status=404, session=session)
        except StoreError as e:
            return self._store_error(request, e)
        _, sections, title = found
        live = layout.url("/live/run", {"id": run_id})
        body = run_body(sections, None if error else self._flash(request), error)
        text = layout.page(title, "runs", body, live=live, version=_version(sections, layout.csrf),
                           every=POLL_MS)
        return self._html(text, status=status, session=session,
                          clear_flash=FLASH_COOKIE in request.cookies)

    async def live_run(self, request: Request) -> Response:
        run_id = request.query_params.get("id", "")
        layout = self._layout(request, self._session(request)[0])
        t0 = time.perf_counter()
        try:
            found = await self._thread(self._run_sections, layout, run_id)
        except StoreError as error:
            return _json({"error": str(error)}, 500)
        if found is None:
            return _json({"error": f"no run {run_id!r} in the store"}, 404)
        return self._live(layout, found[1], request.query_params.get("v"), time.perf_counter() - t0)

    async def api_run(self, request: Request) -> Response:
        run_id = request.query_params.get("id", "")
        try:
            run = await self._thread(self._read_run, run_id)
        except StoreError as error:
            return _json({"error": str(error)}, 500)
        if run is None:
            return _json({"error": f"no run {run_id!r} in the store"}, 404)
        children = [r for runs in run.children.by_node.values() for _, r in runs]
        return _json({**run.data, "parent": run.parent, "children": children})

    # -- schedules and workers --------------------------------------------------------

    def _schedules(self) -> list[dict[str, Any]]:
        read = getattr(self.store, "schedules", None)
        return [s.to_dict() for s in read()] if callable(read) else []

    def _schedules_sections(self, layout: Layout) -> dict[str, str]:
        schedules = self._schedules()
        snap = self.cache.get()
        counts: dict[str, int] = {}
        # a schedule's runs are sched:NAME:SLOT; a name and a slot may both hold ':', so
        # the longest name that fits wins
        prefixes = sorted((f"sched:{s.get('name', '')}:" for s in schedules), key=len,
                          reverse=True)
        for run in snap.runs:
            rid = str(run.get("run_id", ""))
            if rid.startswith("sched:"):
                for prefix in prefixes:
                    if rid.startswith(prefix):
                        name = prefix[6:-1]
                        counts[name] = counts.get(name, 0) + 1
                        break
        return schedules_sections(layout, schedules, counts, time.time())

    async def schedules(self, request: Request) -> Response:
        session = self._session(request)
        layout = self._layout(request, session[0])
        try:
            sections = await self._thread(self._schedules_sections, layout)
        except StoreError as error:
            return self._store_error(request, error)
        body = ('<h1>Schedules</h1><p class="note">A schedule starts a run of its workflow '
                "at each slot (<code>sched:NAME:SLOT</code>); a worker fires the slots that "
                "are due.</p>" + f'<div data-live="schedules">{sections["schedules"]}</div>')
        text = layout.page("schedules", "schedules", body,
                           live=layout.url("/live/schedules"),
                           version=_version(sections, layout.csrf), every=POLL_MS)
        return self._html(text, session=session)

    async def live_schedules(self, request: Request) -> Response:
        layout = self._layout(request, self._session(request)[0])
        try:
            sections = await self._thread(self._schedules_sections, layout)
        except StoreError as error:
            return _json({"error": str(error)}, 500)
        return self._live(layout, sections, request.query_params.get("v"), self.cache.get().cost)

    async def api_schedules(self, request: Request) -> Response:
        try:
            return _json(await self._thread(self._schedules))
        except StoreError as error:
            return _json({"error": str(error)}, 500)

    def _workers_sections(self, layout: Layout) -> dict[str, str]:
        snap = self.cache.get()
        return workers_sections(layout, holders(snap), snap, time.time())

    async def workers(self, request: Request) -> Response:
        session = self._session(request)
        layout = self._layout(request, session[0])
        try:
            sections = await self._thread(self._workers_sections, layout)
        except StoreError as error:
            return self._store_error(request, error)
        body = ('<h1>Workers</h1><p class="note">The processes that hold runs now (workers, '
                "and programs running durable runs), with the leases that keep their runs "
                "theirs: a process that stops renewing its lease loses its runs when the "
                "lease ends, and a worker takes them over.</p>"
                f'<h2>Processes holding runs</h2><div data-live="holders">{sections["holders"]}'
                '</div><h2>Queues</h2><div data-live="queues">' + sections["queues"] + "</div>")
        text = layout.page("workers", "workers", body, live=layout.url("/live/workers"),
                           version=_version(sections, layout.csrf), every=POLL_MS)
        return self._html(text, session=session)

    async def live_workers(self, request: Request) -> Response:
        layout = self._layout(request, self._session(request)[0])
        try:
            sections = await self._thread(self._workers_sections, layout)
        except StoreError as error:
            return _json({"error": str(error)}, 500)
        return self._live(layout, sections, request.query_params.get("v"), self.cache.get().cost)

    async def api_workers(self, request: Request) -> Response:
        try:
            snap = await self._thread(self.cache.get)
        except StoreError as error:
            return _json({"error": str(error)}, 500)
        return _json([{"host": h.host, "pid": h.pid, "gone": h.gone,
                       "lease_expires": h.lease_expires,
                       "runs": [r.get("run_id") for r in h.runs]} for h in holders(snap)])

    # -- actions ----------------------------------------------------------------------

    async def _form(self, request: Request) -> dict[str, str]:
        kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise ActionError("send the form as application/x-www-form-urlencoded",
                                       415)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise ActionError(f"the form is larger than {MAX_BODY:,} bytes", 413)
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                              max_num_fields=32, strict_parsing=False)
        except (UnicodeDecodeError, ValueError) as error:
            raise ActionError(f"the form cannot be read: {error}") from None
        form: dict[str, str] = {}
        for k, v in pairs:
            form.setdefault(k, v)  # the first of a repeated field
        return form

    def _same_origin(self, request: Request) -> bool:
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            return origin is None
        return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()

    async def action(self, request: Request) -> Response:
        action = request.path_params["action"]
        try:
            form = await self._form(request)
            if request.scope.get("state", {}).get("auth") != "bearer":
                # a browser: the form must be this dashboard's own
                if not self._same_origin(request):
                    raise ActionError("refused: the request comes from another site",
                                               403)
                if not self.guard.csrf_ok(request.cookies.get(SESSION_COOKIE),
                                          form.get("csrf")):
                    raise ActionError(
                        "refused: the form is not this dashboard's, or is from before it "
                        "restarted (reload the page and try again)", 403)
            if action not in ACTIONS:
                raise ActionError(f"no action {action!r}; the actions: "
                                           f"{', '.join(ACTIONS)}", 404)
            done = await self._thread(perform, self.store, action, form)
        except ActionError as error:
            return await self._refused(request, error, locals().get("form"))
        self.cache.forget()
        run_id = form.get("run_id", "")
        target = f"{request.scope.get('root_path', '')}/run?id={quote(run_id, safe='')}"
        if "application/json" in request.headers.get("accept", ""):
            return _json({"ok": True, "message": done.message, "run": target})
        response = Response(status_code=303, headers={"location": target,
                                                      "cache-control": "no-store"})
        response.headers.append("set-cookie", self.guard.cookie(
            FLASH_COOKIE, quote(done.message[:1000], safe=""), max_age=60))
        return response

    async def _refused(self, request: Request, error: ActionError,
                       form: Mapping[str, str] | None) -> Response:
        accept = request.headers.get("accept", "")
        run_id = (form or {}).get("run_id", "")
        if "text/html" not in accept or not run_id or error.status in (403, 413, 415):
            if "text/html" in accept:
                return self._page(request, "refused", "", lambda layout: error_body(
                    layout, "The action was refused", str(error)), status=error.status)
            return _json({"ok": False, "error": str(error)}, error.status)
        request.scope.setdefault("state", {})["run_id"] = run_id
        return await self.run(request, str(error), error.status)

    # -- login ------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        base = request.scope.get("root_path", "")
        target = safe_next(request.query_params.get("next"), base)
        return self._html(login_page(base, target, None))

    async def login(self, request: Request) -> Response:
        base = request.scope.get("root_path", "")
        try:
            form = await self._form(request)
        except ActionError as error:
            return self._html(login_page(base, base + "/", str(error)), status=error.status)
        target = safe_next(form.get("next"), base)
        if self.guard.token is None:
            return Response(status_code=303, headers={"location": target})
        if not self.guard.token_ok(form.get("token", "")):
            return self._html(login_page(base, target, "That is not the token."), status=401)
        response = Response(status_code=303, headers={"location": target,
                                                      "cache-control": "no-store"})
        response.headers.append("set-cookie", self.guard.cookie(AUTH_COOKIE,
                                                                 self.guard.auth_cookie))
        return response

    async def logout(self, request: Request) -> Response:
        base = request.scope.get("root_path", "")
        try:
            form = await self._form(request)
        except ActionError as error:
            return _json({"ok": False, "error": str(error)}, error.status)
        if not self.guard.csrf_ok(request.cookies.get(SESSION_COOKIE), form.get("csrf")):
            return _json({"ok": False, "error": "refused: not this dashboard's form"}, 403)
        response = Response(status_code=303, headers={"location": base + "/login"})
        response.headers.append("set-cookie", self.guard.cookie(AUTH_COOKIE, "", max_age=0))
        return response

    # -- static files -----------------------------------------------------------------

    async def static_file(self, request: Request) -> Response:
        found = self.static.get(request.path_params["name"])
        if found is None:
            return Response(b"no such file\n", 404, media_type="text/plain")
        body, kind = found
        return Response(body, media_type=kind, headers={"cache-control": "no-cache"})

    async def not_found(self, request: Request, exc: Exception) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            return self._page(request, "not found", "", lambda layout: error_body(
                layout, "Not found", f"The dashboard has no page {request.url.path}."),
                status=404)
        return _json({"error": "not found"}, 404)

    def routes(self) -> list[Route]:
        """The routes (``POST`` only for the actions: no action is reachable by GET)."""
        return [
            Route("/", self.runs, methods=["GET"]),
            Route("/run", self.run, methods=["GET"]),
            Route("/schedules", self.schedules, methods=["GET"]),
            Route("/workers", self.workers, methods=["GET"]),
            Route("/live/runs", self.live_runs, methods=["GET"]),
            Route("/live/run", self.live_run, methods=["GET"]),
            Route("/live/schedules", self.live_schedules, methods=["GET"]),
            Route("/live/workers", self.live_workers, methods=["GET"]),
            Route("/api/runs", self.api_runs, methods=["GET"]),
            Route("/api/run", self.api_run, methods=["GET"]),
            Route("/api/schedules", self.api_schedules, methods=["GET"]),
            Route("/api/workers", self.api_workers, methods=["GET"]),
            Route("/actions/{action}", self.action, methods=["POST"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/static/{name}", self.static_file, methods=["GET"]),
        ]


def create_app(store: Store, *, token: str | None = None, label: str | None = None,
               loopback_only: bool = True, access_log: bool = False,
               max_nodes: int = MAX_NODES, refresh: float = 1.0) -> Callable[..., Any]:
    """The dashboard over ``store`` as an ASGI application, for uvicorn (``flowrt ui``
    does this) or to mount in a service's own ASGI application.

    Args:
        store: any :class:`~flowrt.durable.Store` (it stays open; close it after).
        token: every request must carry it (the login form sets a cookie; scripts send
            ``Authorization: Bearer TOKEN``); None for none.
        label: what the pages call the store (default: its path, or its type).
        loopback_only: answer only requests addressed to 127.0.0.1, localhost or [::1]
            (what a dashboard without a token must do; see :mod:`._security`).
        access_log: write a line per request to stderr (never a token).
        max_nodes: runs of more nodes are summarised on their page, as in the report.
        refresh: read the runs list from the store at most once per this many seconds.

    Raises:
        ValueError: ``token`` is empty.
    """
    if token is not None and not token:
        raise ValueError("the token is empty")
    if label is None:
        path = getattr(store, "path", None)
        label = str(path) if path is not None else type(store).__name__
    guard = Guard(token, loopback_only=loopback_only, access_log=access_log)
    dashboard = Dashboard(store, guard, label, max_nodes=max_nodes, refresh=refresh)
    app = Starlette(routes=dashboard.routes(),
                    exception_handlers={404: dashboard.not_found})
    return guard.wrap(app)
