"""``flowrt ui``: the dashboard served by a real uvicorn server (``python -m flowrt ui`` in
a subprocess) over a real SQLite store, read over plain HTTP and in headless Chromium
(Debian's ``chromium``, driven through the DevTools protocol: tests/browser.py).

What a user relies on: the runs page lists the stored runs with their statuses; a run's
page draws one graph element per node and follows a running run until it ends, without
a reload; the actions change the stored run; what a store holds is shown as text; the
token and address rules; every route answers as documented.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import attrs
import pytest
from browser import Browser, Page, chromium
from test_report import mixed_workflow

import flowrt
from flowrt.tools.viz import COLOURS

REPO = Path(__file__).resolve().parent.parent
TOKEN = "t0ken-" + "x" * 26
#: markup in every text a store holds: if any of it became an element, it was not escaped
HOSTILE_NODE = '<img src=x onerror="window.__xss=1">'
HOSTILE_ERROR = '<script>window.__xss=2</script> & "quotes"'
HOSTILE_RUN = '"><svg onload=window.__xss=3>/x?y#z'
HOSTILE_WORKFLOW = "<b>bold</b>"


# -- a store with runs of every kind ---------------------------------------------------------


def hostile_workflow() -> flowrt.Workflow:
    wf = flowrt.Workflow(HOSTILE_WORKFLOW)

    def ok() -> int:
        return 1

    def boom(x: int) -> None:
        raise ValueError(HOSTILE_ERROR)

    wf.add(HOSTILE_NODE, ok)
    wf.add("boom", boom, deps=[HOSTILE_NODE])
    return wf


def ok_workflow() -> flowrt.Workflow:
    wf = flowrt.Workflow("nightly")
    wf.add("extract", lambda: [1, 2, 3])
    wf.add("load", lambda rows: len(rows), deps=["extract"])
    return wf


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ui") / "runs.db"
    assert str(mixed_workflow().run_sync(store=str(path), run_id="r-mixed").status) == "failed"
    assert ok_workflow().run_sync(store=str(path), run_id="r-ok").ok
    hostile = hostile_workflow().run_sync(store=str(path), run_id=HOSTILE_RUN)
    assert str(hostile.status) == "failed"
    return path


# -- a server in a subprocess ----------------------------------------------------------------


class Server:
    """``python -m flowrt ui --store STORE --port 0 ARGS`` until :meth:`stop`."""

    def __init__(self, store: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.stderr_path = store.parent / f"ui-{time.monotonic_ns()}.err"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "flowrt", "ui", "--store", str(store), "--port", "0",
                 *args], stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}, cwd=REPO)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline().decode() if ready else ""
        found = re.search(r"at (http://\S+)", line)
        if found is None:
            self.proc.kill()
            pytest.fail(f"the server did not start: {line!r} {self.stderr}")
        self.url = found.group(1).rstrip("/")
        parts = urlsplit(self.url)
        self.host, self.port = parts.hostname or "", parts.port or 0
        self.banner = line + self.proc.stdout.read1(4096).decode()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text("utf-8", "replace")

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                body: bytes | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def get(self, path: str, **headers: str) -> tuple[int, http.client.HTTPMessage, bytes]:
        return self.request("GET", path, headers={k.replace("_", "-"): v
                                                  for k, v in headers.items()})

    def post(self, path: str, fields: dict[str, str], headers: dict[str, str] | None = None
             ) -> tuple[int, http.client.HTTPMessage, bytes]:
        return self.request("POST", path, body=urlencode(fields).encode(), headers={
            "content-type": "application/x-www-form-urlencoded", **(headers or {})})

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail("the server did not stop on Ctrl-C within 20 s")
        return self.proc.returncode


@pytest.fixture
def server(store_path: Path) -> Iterator[Server]:
    s = Server(store_path)
    yield s
    s.stop()


def session_of(server: Server, path: str = "/", headers: dict[str, str] | None = None
               ) -> tuple[str, str]:
    """A browser session as a page gives it: the session cookie and the form's CSRF token."""
    status, head, body = server.request("GET", path, headers={"accept": "text/html",
                                                              **(headers or {})})
    assert status == 200, body[:500]
    cookies = dict(c.split(";", 1)[0].split("=", 1) for c in head.get_all("set-cookie") or [])
    csrf = re.search(rb'name="csrf" value="([0-9a-f]+)"', body)
    assert csrf is not None, "the page has no form with a CSRF token"
    return cookies["flowrt_ui_session"], csrf.group(1).decode()


# -- in a browser ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    executable = chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run should install it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    b = Browser(executable, tmp_path_factory.mktemp("chromium"))
    yield b
    b.close()


def shot(page: Page, tmp_path: Path, name: str) -> Path:
    """A screenshot in the test's folder (and in $FLOWRT_UI_SHOTS, to look at)."""
    out = page.screenshot(tmp_path / f"{name}.png")
    keep = os.environ.get("FLOWRT_UI_SHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / out.name).write_bytes(out.read_bytes())
    return out


def test_runs_page_lists_the_runs_with_their_statuses(server: Server, browser: Browser,
                                                      tmp_path: Path) -> None:
    page = browser.new_page()
    page.goto(server.url + "/")
    rows = page.eval("Array.from(document.querySelectorAll('tr[data-run]'), "
                     "r => [r.dataset.run, r.dataset.state])")
    assert sorted(map(tuple, rows)) == sorted([("r-mixed", "failed"), ("r-ok", "succeeded"),
                                               (HOSTILE_RUN, "failed")])
    counts = page.eval("Object.fromEntries(Array.from(document.querySelectorAll("
                       "'.counts a'), a => [a.dataset.state, a.querySelector('b').textContent]))")
    assert counts == {"": "3", "succeeded": "1", "failed": "2"}
    # the links lead to the runs' pages, the hostile id included
    href = page.eval("document.querySelector('tr[data-run=\"r-mixed\"] a').href")
    assert href == server.url + "/run?id=r-mixed"
    # filtering by status, through the form as a person would
    page.eval("document.querySelector('select[name=status]').value = 'failed';"
              "document.querySelector('form.filters').submit()")
    page.wait_for("location.search.includes('status=failed') && "
                  "document.readyState === 'complete'")
    states = page.eval("Array.from(document.querySelectorAll('tr[data-run]'), "
                       "r => r.dataset.state)")
    assert states == ["failed", "failed"]
    shot(page, tmp_path, "runs")


def test_run_page_draws_one_graph_element_per_node(server: Server, browser: Browser,
                                                   tmp_path: Path) -> None:
    page = browser.new_page()
    page.goto(server.url + "/run?id=r-mixed")
    nodes = page.eval("Array.from(document.querySelectorAll('#dag g.node'), "
                      "g => [g.dataset.node, g.dataset.status])")
    expected = {"fetch": "succeeded", "price": "succeeded", "stock": "failed",
                "ship": "skipped", "audit": "succeeded",
                "<script>alert(1)</script>": "succeeded"}
    assert dict(nodes) == expected and len(nodes) == len(expected)
    # what the browser paints is the status colour
    fills = page.eval("Object.fromEntries(Array.from(document.querySelectorAll('#dag g.node'),"
                      " g => [g.dataset.node, g.querySelector('rect').getAttribute('fill')]))")
    assert fills["stock"] == COLOURS[flowrt.Status.FAILED]
    assert fills["fetch"] == COLOURS[flowrt.Status.SUCCEEDED]
    # the timeline, and the table with attempts, durations and the traceback
    assert page.eval("document.querySelectorAll('#gantt rect').length") == 5  # not 'ship'
    table = page.eval("Array.from(document.querySelectorAll('table.nodes tbody tr'), "
                      "r => Array.from(r.cells, c => c.textContent))")
    by_name = {row[1]: row for row in table}
    assert by_name["price"][4] == "2"  # attempts
    assert "ValueError" in by_name["stock"][7] and "Traceback" in by_name["stock"][7]
    assert page.eval("document.querySelector('h1[data-run]').dataset.state") == "failed"
    shot(page, tmp_path, "run")


def test_hostile_names_and_errors_render_as_text(server: Server, browser: Browser,
                                                 tmp_path: Path) -> None:
    page = browser.new_page()
    for path in ("/", "/run?id=" + quote(HOSTILE_RUN, safe=""),
                 "/?workflow=" + quote(HOSTILE_WORKFLOW)):
        page.goto(server.url + path)
        # no element was made from a stored text: only the dashboard's own
        made = page.eval("document.querySelectorAll('img, [onerror], [onload], "
                         "script:not([src$=\"dashboard.js\"])').length + "
                         "Array.from(document.querySelectorAll('b'))"
                         ".filter(b => b.textContent === 'bold').length")
        assert made == 0, path
        assert page.eval("window.__xss === undefined")
    text = page.eval("document.body.innerText")
    assert HOSTILE_WORKFLOW in text
    page.goto(server.url + "/run?id=" + quote(HOSTILE_RUN, safe=""))
    assert page.eval("document.querySelector('h1[data-run]').dataset.run") == HOSTILE_RUN
    names = page.eval("Array.from(document.querySelectorAll('td.name'), td => td.textContent)")
    assert HOSTILE_NODE in names
    errors = page.eval("Array.from(document.querySelectorAll('.err'), d => d.textContent)")
    assert any(HOSTILE_ERROR in t for t in errors)
    assert page.eval("window.__xss === undefined")
    shot(page, tmp_path, "hostile")


LIVE_FLOW = '''
import os, sys, time

import flowrt

wf = flowrt.Workflow("live")


@wf.node
def first() -> int:
    return 1


@wf.node
def gate(first: int) -> int:
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.02)
    return first + 1


@wf.node
def last(gate: int) -> int:
    return gate + 1


print(wf.run_sync(store=sys.argv[1], run_id="r-live").status, flush=True)
'''


def test_run_page_follows_a_running_run_until_it_ends(tmp_path: Path, browser: Browser) -> None:
    store = tmp_path / "live.db"
    ok_workflow().run_sync(store=str(store), run_id="r-before")
    script = tmp_path / "live_flow.py"
    script.write_text(LIVE_FLOW)
    go = tmp_path / "go"
    runner = subprocess.Popen([sys.executable, str(script), str(store), str(go)],
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
    server = None
    try:
        deadline = time.monotonic() + 60
        while True:  # until 'first' is recorded and 'gate' runs
            with flowrt.SQLiteStore(store) as s:
                stored = s.load("r-live")
            if stored is not None and "first" in stored.nodes:
                break
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.05)
        server = Server(store)
        page = browser.new_page()
        page.goto(server.url + "/run?id=r-live")
        assert page.eval("document.querySelector('h1[data-run]').dataset.state") == "running"
        statuses = page.eval("Object.fromEntries(Array.from(document.querySelectorAll("
                             "'#dag g.node'), g => [g.dataset.node, g.dataset.status]))")
        assert statuses == {"first": "succeeded", "gate": "pending", "last": "pending"}
        page.eval("window.__same_document = true")
        shot(page, tmp_path, "live-running")
        # the workers page names the process holding it, and its lease
        status, _, body = server.get("/workers", accept="text/html")
        assert status == 200 and f'data-holder="{os.uname().nodename}:{runner.pid}"'.encode() \
            in body and b'data-state="live"' in body and b"r-live" in body
        holders = json.loads(server.get("/api/workers")[2])
        assert [(h["pid"], h["gone"], h["runs"]) for h in holders] == [
            (runner.pid, False, ["r-live"])]
        go.touch()
        page.wait_for("document.querySelector('h1[data-run]').dataset.state === 'succeeded'",
                      timeout=30)
        page.wait_for("Array.from(document.querySelectorAll('#dag g.node'))"
                      ".every(g => g.dataset.status === 'succeeded')", timeout=10)
        assert page.eval("window.__same_document") is True  # updated in place, no reload
        assert page.eval("document.querySelectorAll('#dag g.node').length") == 3
        assert page.eval("document.getElementById('live').dataset.state") == "on"
        # and the runs page of the same store follows it too
        shot(page, tmp_path, "live-finished")
    finally:
        go.touch()
        assert runner.wait(60) is not None
        if server is not None:
            server.stop()
    assert runner.stdout is not None and runner.stdout.read().strip() == "succeeded"


# -- the token -------------------------------------------------------------------------------


def test_another_address_needs_a_token(store_path: Path) -> None:
    def ui(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "flowrt", "ui", "--store", str(store_path),
                               "--port", "0", *args], capture_output=True, text=True,
                              timeout=60, cwd=REPO, stdin=subprocess.DEVNULL,
                              env={k: v for k, v in {**os.environ, **(env or {})}.items()
                                   if k != "FLOWRT_UI_TOKEN" or env})

    proc = ui("--host", "0.0.0.0")
    assert proc.returncode == 2, proc.stderr
    assert "--host 0.0.0.0 is reachable from other machines" in proc.stderr
    assert "--token" in proc.stderr and "Traceback" not in proc.stderr
    proc = ui("--host", "0.0.0.0", "--token", "short")
    assert proc.returncode == 2 and "at least 16" in proc.stderr, proc.stderr
    proc = ui("--store", str(store_path.parent / "missing.db"))
    assert proc.returncode == 2 and "no store at" in proc.stderr, proc.stderr
    assert not (store_path.parent / "missing.db").exists()
    proc = ui("--host", "no-such-host.invalid", "--token", TOKEN)
    assert proc.returncode == 2 and "no such address" in proc.stderr, proc.stderr
    proc = ui("--port", "70000")
    assert proc.returncode == 2, proc.stderr


def test_a_port_in_use_is_a_clear_error(server: Server, store_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "flowrt", "ui", "--store", str(store_path),
                           "--port", str(server.port)], capture_output=True, text=True,
                          timeout=60, cwd=REPO, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stderr
    assert f"port {server.port} on 127.0.0.1 is in use" in proc.stderr


def test_with_a_token_every_request_without_it_is_refused(store_path: Path) -> None:
    server = Server(store_path, "--host", "0.0.0.0", "--token", TOKEN, "--access-log")
    try:
        assert "0.0.0.0" in server.banner and TOKEN not in server.banner
        server.host = "127.0.0.1"
        for path in ("/", "/run?id=r-ok", "/schedules", "/workers", "/live/runs",
                     "/live/run?id=r-ok", "/api/runs", "/api/run?id=r-ok", "/api/schedules",
                     "/api/workers", "/static/dashboard.js", "/static/report.css",
                     "/no-such-page", f"/?token={TOKEN[:-1]}"):
            status, head, body = server.get(path)
            assert status == 401, (path, status)
            assert b"r-ok" not in body and b"nightly" not in body, path
            assert head["www-authenticate"].startswith("Bearer")
        for action in ("cancel", "resume", "signal", "approve", "reject"):
            status, _, _ = server.post(f"/actions/{action}", {"run_id": "r-ok"})
            assert status == 401
        # a browser without the cookie gets the login form
        status, _, body = server.get("/run?id=r-ok", accept="text/html")
        assert status == 401 and b'name="token"' in body and b"nightly" not in body
        assert b'value="/run?id=r-ok"' in body  # where to go after logging in
        # a wrong token in the form: refused; the right one: a cookie that works
        status, _, body = server.post("/login", {"token": "nope" * 5, "next": "/"})
        assert status == 401 and b"not the token" in body
        status, head, _ = server.post("/login", {"token": TOKEN, "next": "//evil.example/"})
        assert status == 303 and head["location"] == "/"  # never to another site
        cookie = head["set-cookie"].split(";", 1)[0]
        assert TOKEN not in cookie and "HttpOnly" in head["set-cookie"]
        status, _, body = server.get("/api/runs", cookie=cookie)
        assert status == 200 and json.loads(body)["total"] == 3
        # scripts: a bearer header
        status, _, body = server.get("/api/run?id=r-ok", authorization=f"Bearer {TOKEN}")
        assert status == 200 and json.loads(body)["status"] == "succeeded"
        status, _, _ = server.get("/api/runs", authorization="Bearer " + "x" * len(TOKEN))
        assert status == 401
        # ?token= once: a cookie, and the token leaves the address
        status, head, _ = server.get(f"/run?id=r-ok&token={TOKEN}")
        assert status == 303 and head["location"] == "/run?id=r-ok"
        assert head["set-cookie"].split(";", 1)[0] == cookie
        # any address works with the token: no host check
        status, _, _ = server.get("/api/runs", host="dashboard.example:8080",
                                  authorization=f"Bearer {TOKEN}")
        assert status == 200
    finally:
        server.stop()
    log = server.stderr
    assert "GET /api/runs 200" in log and "/run?id=r-ok&token=***" in log
    assert TOKEN not in log


def test_token_rules_in_a_browser(store_path: Path, tmp_path: Path) -> None:
    executable = chromium()
    if executable is None:
        pytest.skip("chromium is not installed")
    server = Server(store_path, env={"FLOWRT_UI_TOKEN": TOKEN})
    b = Browser(executable, tmp_path)
    try:
        page = b.new_page()
        page.goto(server.url + "/run?id=r-ok")
        assert page.eval("!!document.querySelector('input[name=token]')")
        assert page.eval("document.body.innerText.includes('nightly')") is False
        shot(page, tmp_path, "login")
        page.eval(f"document.querySelector('input[name=token]').value = {json.dumps(TOKEN)};"
                  "document.querySelector('form').submit()")
        page.wait_for("!!document.querySelector('h1[data-run]')")
        assert page.eval("location.href") == server.url + "/run?id=r-ok"
        assert page.eval("document.querySelector('h1[data-run]').dataset.state") == "succeeded"
        assert page.eval("document.cookie") == ""  # HttpOnly: no script reads the cookies
        # logging out: the next page is the login form again
        page.eval("document.querySelector('form.logout').submit()")
        page.wait_for("!!document.querySelector('input[name=token]')")
        other = Browser(executable, tmp_path / "second")
        try:
            fresh = other.new_page()
            fresh.goto(f"{server.url}/?token={TOKEN}")
            fresh.wait_for("!!document.querySelector('tr[data-run]')")
            assert TOKEN not in fresh.eval("location.href")
            assert fresh.eval("history.length") <= 2
        finally:
            other.close()
    finally:
        b.close()
        server.stop()


# -- plain HTTP: every route -----------------------------------------------------------------


def test_every_route_over_plain_http(server: Server) -> None:
    def html(path: str) -> tuple[int, str]:
        status, head, body = server.get(path, accept="text/html")
        if status == 200:
            assert head["content-type"] == "text/html; charset=utf-8"
            assert head["cache-control"] == "no-store"
            assert "script-src 'self'" in head["content-security-policy"]
            assert head["x-frame-options"] == "DENY" and head["referrer-policy"] == "same-origin"
        return status, body.decode()

    status, text = html("/")
    assert status == 200 and 'data-run="r-ok"' in text and "3 in the store" in text
    status, text = html("/?status=failed&workflow=shop&since=24h&q=mix&top=1")
    assert status == 200 and 'data-run="r-mixed"' in text and 'data-run="r-ok"' not in text
    assert html("/?status=bogus")[0] == 400
    assert "is none of" in html("/?status=bogus")[1]
    assert html("/?from=yesterday")[0] == 400
    assert html("/?page=0")[0] == 400
    status, text = html("/run?id=r-ok")
    assert status == 200 and 'data-node="extract"' in text
    status, text = html("/run?id=r-okk")
    assert status == 404 and "No such run" in text and "/run?id=r-ok" in text  # the near one
    status, text = html("/schedules")
    assert status == 200 and "Schedules" in text
    status, text = html("/workers")
    assert status == 200 and "No process holds a run now." in text
    assert html("/no-such-page")[0] == 404
    assert server.get("/no-such-page")[0] == 404
    # live parts: JSON, then 204 while nothing changed
    for path in ("/live/runs?status=failed", "/live/run?id=r-mixed", "/live/schedules",
                 "/live/workers"):
        status, head, body = server.get(path)
        assert status == 200 and head["content-type"] == "application/json", path
        data = json.loads(body)
        assert data["v"] and data["sections"], path
        sep = "&" if "?" in path else "?"
        status, _, body = server.get(f"{path}{sep}v={data['v']}")
        assert status == 204 and body == b"", path
    assert server.get("/live/run?id=missing")[0] == 404
    # the JSON API
    status, _, body = server.get("/api/runs?status=failed")
    data = json.loads(body)
    assert status == 200 and data["total"] == 2 and data["counts"]["succeeded"] == 1
    assert {r["run_id"] for r in data["runs"]} == {"r-mixed", HOSTILE_RUN}
    status, _, body = server.get("/api/run?id=r-mixed")
    data = json.loads(body)
    assert status == 200 and data["nodes"]["stock"]["status"] == "failed"
    assert data["parent"] is None and data["children"] == []
    assert server.get("/api/run?id=missing")[0] == 404
    assert json.loads(server.get("/api/schedules")[2]) == []
    assert json.loads(server.get("/api/workers")[2]) == []
    assert server.get("/api/runs?limit=x")[0] == 400
    # static files, from the package
    for name, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css"),
                       ("report.css", "text/css"), ("favicon.svg", "image/svg+xml")):
        status, head, body = server.get(f"/static/{name}")
        assert status == 200 and head["content-type"].startswith(kind) and body, name
    assert server.get("/static/nope.js")[0] == 404
    assert server.get("/static/../_app.py")[0] == 404
    # the login form answers without a token configured too; logging in just goes on
    assert server.get("/login")[0] == 200
    status, head, _ = server.post("/login", {"token": "", "next": "/workers"})
    assert status == 303 and head["location"] == "/workers"
    # HEAD as GET, without a body
    status, _, body = server.request("HEAD", "/")
    assert status == 200 and body == b""


def test_no_action_is_reachable_by_get(server: Server) -> None:
    for action in ("cancel", "resume", "signal", "approve", "reject"):
        for method in ("GET", "HEAD", "PUT", "DELETE"):
            status, _, _ = server.request(method, f"/actions/{action}?run_id=r-ok")
            assert status == 405, (action, method, status)
    assert server.request("GET", "/logout")[0] == 405


def test_actions_need_the_pages_csrf_token_and_origin(server: Server, store_path: Path) -> None:
    status, head, body = server.get("/run?id=r-mixed", accept="text/html")
    cookies = dict(c.split(";", 1)[0].split("=", 1) for c in head.get_all("set-cookie") or [])
    cookie = f"flowrt_ui_session={cookies['flowrt_ui_session']}"
    form = {"run_id": "r-mixed"}
    # no CSRF token, or a made-up one: refused, and nothing changes
    cases: list[tuple[dict[str, str], dict[str, str]]] = [
        (form, {"cookie": cookie}), ({**form, "csrf": "0" * 64}, {"cookie": cookie})]
    found = re.search(rb'name="csrf" value="([0-9a-f]+)"', body)
    if found is not None:  # the page has forms (the store-level controls exist)
        csrf = found.group(1).decode()
        cases += [  # the page's token, but from another session or another site
            ({**form, "csrf": csrf}, {}),
            ({**form, "csrf": csrf}, {"cookie": "flowrt_ui_session=" + "a" * 32}),
            ({**form, "csrf": csrf}, {"cookie": cookie, "origin": "http://evil.example"}),
            ({**form, "csrf": csrf}, {"cookie": cookie, "origin": "null"}),
            ({**form, "csrf": csrf}, {"cookie": cookie, "sec-fetch-site": "cross-site"})]
    for fields, headers in cases:
        status, _, body = server.post("/actions/cancel", fields, headers)
        assert status == 403, (fields, headers, status, body[:300])
        assert b"refused" in body
    status, _, _ = server.request("POST", "/actions/cancel", body=json.dumps(form).encode(),
                                  headers={"content-type": "application/json",
                                           "cookie": cookie})
    assert status == 415
    status, _, _ = server.post("/actions/cancel", {**form, "x": "y" * 300_000},
                               {"cookie": cookie})
    assert status == 413
    with flowrt.SQLiteStore(store_path) as store:
        record = store.get_run("r-mixed")
    assert record is not None and record.status == "failed"


def test_a_foreign_host_header_is_refused(server: Server) -> None:
    """DNS rebinding: a page of evil.example whose name now points at 127.0.0.1."""
    status, _, body = server.get("/api/runs", host=f"evil.example:{server.port}")
    assert status == 421 and b"r-ok" not in body
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}"):
        assert server.get("/api/runs", host=host)[0] == 200


def test_ctrl_c_stops_the_server(store_path: Path) -> None:
    s = Server(store_path)
    assert s.get("/api/runs")[0] == 200
    code = s.stop()
    assert code in (0, 130), s.stderr
    assert "Traceback" not in s.stderr



def test_mounted_under_a_path_in_another_app(store_path: Path) -> None:
    """``create_app`` inside a service's own Starlette app: links, login and static files
    follow the mount path."""
    import anyio
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from flowrt.tools.ui import create_app

    store = flowrt.SQLiteStore(store_path)
    app = Starlette(routes=[Mount("/flowrt", app=create_app(store, token=TOKEN))])

    async def call(method: str, path: str, query: str = "", body: bytes = b"",
                   **headers: str) -> tuple[int, dict[str, str], bytes]:
        sent: list[dict[str, Any]] = []
        scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
                 "query_string": query.encode(), "root_path": "", "http_version": "1.1",
                 "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
                 "headers": [(b"host", b"127.0.0.1"), (b"accept", b"text/html"),
                             *((k.replace("_", "-").encode(), v.encode())
                               for k, v in headers.items())]}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        head = {k.decode(): v.decode() for k, v in sent[0].get("headers", [])}
        return sent[0]["status"], head, b"".join(m.get("body", b"") for m in sent[1:])

    async def scenario() -> None:
        status, _, body = await call("GET", "/flowrt/run", "id=r-ok")
        assert status == 401 and b'action="/flowrt/login"' in body
        assert b'value="/flowrt/run?id=r-ok"' in body
        status, head, _ = await call("GET", "/flowrt/run", f"id=r-ok&token={TOKEN}")
        assert status == 303 and head["location"] == "/flowrt/run?id=r-ok"
        cookie = head["set-cookie"].split(";", 1)[0]
        status, _, body = await call("GET", "/flowrt/run", "id=r-ok", cookie=cookie)
        assert status == 200
        assert b'href="/flowrt/static/dashboard.css"' in body and b'href="/flowrt/"' in body
        assert b'data-live-url="/flowrt/live/run?id=r-ok"' in body
        status, _, _ = await call("GET", "/flowrt/static/dashboard.js", cookie=cookie)
        assert status == 200

    try:
        anyio.run(scenario)
    finally:
        store.close()


def test_sub_workflow_runs_and_map_items_are_linked(tmp_path: Path) -> None:
    """Child runs are stored as ``parent/node`` (a sub-workflow) and ``parent/node/i``
    (map items): the parent's page links its nodes to them, they link back."""
    store = tmp_path / "children.db"
    parent = flowrt.Workflow("order")
    parent.add("pay", lambda: 1)
    parent.add("ship", lambda pay: pay, deps=["pay"])
    parent.add("pack", lambda pay: pay, deps=["pay"])
    assert parent.run_sync(store=str(store), run_id="o1").ok
    assert ok_workflow().run_sync(store=str(store), run_id="o1/ship").ok
    for i in range(3):
        assert ok_workflow().run_sync(store=str(store), run_id=f"o1/pack/{i}").ok
    server = Server(store)
    try:
        status, _, body = server.get("/run?id=o1", accept="text/html")
        text = body.decode()
        assert status == 200
        # the graph's box and the table's name of 'ship' lead to its child run
        assert '<a href="/run?id=o1%2Fship"><g class="node" data-node="ship"' in text
        assert '<a href="/?q=o1%2Fpack%2F">pack</a>' in text
        assert text.count('data-run="o1/pack/') == 3 and 'data-run="o1/ship"' in text
        status, _, body = server.get("/run?id=o1%2Fpack%2F2", accept="text/html")
        assert status == 200 and b'part of run <a href="/run?id=o1">o1</a>' in body
        status, _, body = server.get("/?top=1", accept="text/html")
        assert body.count(b"<tr data-run=") == 1 and b'data-run="o1"' in body
        data = json.loads(server.get("/api/run?id=o1%2Fship")[2])
        assert data["parent"] == "o1"
        data = json.loads(server.get("/api/run?id=o1")[2])
        assert sorted(c["run_id"] for c in data["children"]) == [
            "o1/pack/0", "o1/pack/1", "o1/pack/2", "o1/ship"]
    finally:
        server.stop()


def test_waits_items_and_compensation_are_drawn() -> None:
    """The parts of a run page for what a store of runs that wait, map and roll back
    holds (the keys of ``StoredRun.to_dict()``: ``waits``, ``waiting_for``, a map node's
    ``items``, the statuses ``compensated`` / ``compensation_failed``), escaped."""
    from flowrt.tools._view import RunView
    from flowrt.tools.ui._data import Children
    from flowrt.tools.ui._pages import (
        Layout,
        Waits,
        run_form_sections,
        run_heavy_sections,
        run_light_sections,
    )

    def node(status: str, **more: Any) -> dict[str, Any]:
        return {"status": status, "attempts": 1 if status != "pending" else 0,
                "started": 1000.0, "finished": 1001.0, "error": None, "traceback": None,
                "deps": [], "restored": False, **more}

    data = {
        "run_id": "r1", "workflow": "wf", "status": "waiting", "created": 1000.0,
        "started": 1000.0, "finished": None, "resumes": 0, "interrupted": False,
        "queue": "default", "due": None, "recoveries": 0, "error": None,
        "waits": {HOSTILE_NODE: "approval", "webhook": "signal", "later": "signal",
                  "cool": "timer"},
        "waiting_for": [
            {"node": HOSTILE_NODE, "kind": "approval", "since": 1000.5, "due": 2000.0,
             "signalled": False},
            {"node": "webhook", "kind": "signal", "since": 1000.5, "due": None,
             "signalled": True}],
        "nodes": {
            "pay": node("compensated"),
            "reserve": node("compensation_failed", error=HOSTILE_ERROR),
            "files": node("succeeded"),
            "parse": node("failed", items=[
                {"status": "succeeded", "attempts": 1, "error": None},
                {"status": "failed", "attempts": 3, "error": HOSTILE_ERROR}]),
            HOSTILE_NODE: node("waiting"), "webhook": node("waiting"),
            "later": node("pending"), "cool": node("pending"),
        },
    }
    view = RunView.from_dict(data)
    layout = Layout("", "store", "c" * 64)
    waits = Waits(data["waits"], data["waiting_for"])
    light, forms = run_light_sections(layout, view, data, waits, Children({}), None)
    sections = {**light, **run_form_sections(layout, forms),
                **run_heavy_sections(view, data, {}, 300)}
    page = "".join(sections.values())
    for hostile in (HOSTILE_NODE, HOSTILE_ERROR):
        assert hostile not in page
    assert "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;" in page
    waits_html = sections["waits"]
    # an approval: who, a comment, approve and reject; a signal: a JSON payload and an id
    assert 'data-action="approve"' in waits_html and 'formaction="/actions/reject"' in waits_html
    assert 'name="by" required' in waits_html
    assert 'data-action="signal"' in waits_html and 'name="payload"' in waits_html
    assert "a signal is stored" in waits_html and "times out at" in waits_html
    assert waits_html.count('name="csrf" value="' + "c" * 64 + '"') == 3  # and 'later'
    assert "not waiting yet" in waits_html and 'value="later"' in waits_html
    assert 'value="cool"' not in waits_html  # a timer takes no signal
    assert 'data-action="cancel"' in sections["actions"]
    assert 'data-action="resume"' in sections["actions"] and "Wake it now" in sections["actions"]
    assert "Compensation" in sections["compensation"]
    assert "1 node undone, 1 compensation failed" in sections["compensation"]
    items = sections["items"]
    assert 'data-item="1" data-status="failed"' in items and "2 items" in items
    # without the store operations, no form at all
    assert run_form_sections(layout, forms, actions=False)["actions"] == ""
    assert "<form" not in run_form_sections(layout, forms, actions=False)["waits"]


def test_a_stored_map_runs_items_are_listed(tmp_path: Path) -> None:
    """A real map run read back from SQLite: the run page lists each item, the failed
    one with its error (``StoredRun.to_dict()["nodes"][name]["item_list"]``)."""
    from flowrt.tools._view import RunView
    from flowrt.tools.ui._pages import run_heavy_sections

    wf = flowrt.Workflow("etl")

    @wf.node
    def files() -> list[str]:
        return ["a.csv", "b.csv", "c.csv"]

    @wf.map(path="files", partial=True)
    def parse(path: str) -> int:
        if path == "b.csv":
            raise ValueError("bad row 3 in " + path)
        return len(path)

    result = wf.run_sync(store=str(tmp_path / "runs.db"), run_id="m")
    assert [str(i.status) for i in result.items("parse")] == [
        "succeeded", "failed", "succeeded"]
    assert result.to_dict()["nodes"]["parse"]["item_list"][1]["error"] == (
        "ValueError: bad row 3 in b.csv")
    with flowrt.SQLiteStore(tmp_path / "runs.db") as store:
        stored = store.load("m")
        assert stored is not None
        data = stored.to_dict()
    assert [i["status"] for i in data["nodes"]["parse"]["item_list"]] == [
        "succeeded", "failed", "succeeded"]
    items = run_heavy_sections(RunView.from_dict(data), data, {}, 300)["items"]
    assert 'data-item="1" data-status="failed"' in items and "3 items" in items
    assert "bad row 3 in b.csv" in items


# -- actions from the page, checked through the store ---------------------------------------

needs_controls = pytest.mark.skipif(
    not __import__("flowrt.tools.ui._actions", fromlist=["available"]).available(),
    reason="needs the store-level run controls of issue 14 (flowrt.durable.control)")

PARKED_STRUCTURE = {"quote": [], "manager": ["quote"], "webhook": ["quote"],
                    "order": ["manager", "webhook"]}


def park(store_path: Path, run_id: str) -> None:
    """A run parked as a worker parks it: 'quote' done, 'manager' (an approval) and
    'webhook' (a signal) waiting, nothing holding it."""
    from flowrt.durable import Lease, NodeRecord, RunRecord

    now = time.time()
    with flowrt.SQLiteStore(store_path) as store:
        record = RunRecord(run_id, "approvals", "fp", PARKED_STRUCTURE, b'{"total": 120}',
                           "queued", "json", now, now, queue="default", due=now,
                           waits={"manager": "approval", "webhook": "signal"})
        assert store.submit(record)  # type: ignore[attr-defined]
        taken = store.claim_next(  # type: ignore[attr-defined]
            Lease.mine(), lambda s: attrs.evolve(s.record, status="running", started=now),
            now=now, workflows={"approvals": {"fp"}})
        assert taken is not None
        _, claim = taken
        store.write(claim, [
            NodeRecord("quote", "succeeded", 1, b"120", None, None, now, now + 0.1),
            NodeRecord("manager", "waiting", 1, None, None, None, now + 0.1, None,
                       due=now + 86400),  # type: ignore[call-arg]
            NodeRecord("webhook", "waiting", 1, None, None, None, now + 0.1, None),
        ], None)
        store.finish(claim, "waiting", now + 0.2)
        store.flush()
        assert store.get_run(run_id).status == "waiting"  # type: ignore[union-attr]


def click(page: Page, selector: str) -> None:
    """Click the button ``selector`` (a form's submit) and wait for the next page."""
    page.eval("window.__before_click = true")
    page.eval(f"document.querySelector({json.dumps(selector)}).click()")
    page.wait_for("window.__before_click === undefined && document.readyState === 'complete'")


@needs_controls
def test_approve_and_signal_from_the_page_change_the_stored_run(tmp_path: Path,
                                                                browser: Browser) -> None:
    store_path = tmp_path / "parked.db"
    park(store_path, "p1")
    park(store_path, "p2")
    server = Server(store_path)
    try:
        page = browser.new_page()
        page.goto(server.url + "/run?id=p1")
        assert page.eval("document.querySelector('h1[data-run]').dataset.state") == "waiting"
        waiting = page.eval("Array.from(document.querySelectorAll('.wait'), "
                            "w => [w.dataset.node, w.dataset.kind])")
        assert waiting == [["manager", "approval"], ["webhook", "signal"]]
        shot(page, tmp_path, "parked")
        page.eval("document.querySelector('form[data-action=approve] input[name=by]').value"
                  " = 'Ada'; document.querySelector('form[data-action=approve] "
                  "input[name=comment]').value = 'within budget'")
        click(page, "form[data-action=approve] button.ok")
        assert page.eval("location.href") == server.url + "/run?id=p1"  # redirected back
        assert "Approved 'manager' as Ada." in page.eval(
            "document.querySelector('.flash.ok').textContent")
        # a signal with a JSON payload and an id; the same id again changes nothing
        for _ in range(2):
            page.eval("document.querySelector('form[data-action=signal] textarea').value = "
                      "'{\"paid\": 120}'; document.querySelector('form[data-action=signal] "
                      "input[name=signal_id]').value = 'psp-7'")
            click(page, "form[data-action=signal] button")
        assert "was sent to this run before" in page.eval(
            "document.querySelector('.flash.ok').textContent")
        # a payload that is not JSON: refused on the page, nothing stored
        page.eval("document.querySelector('form[data-action=signal] textarea').value = "
                  "'{paid: 1'")
        click(page, "form[data-action=signal] button")
        assert "the payload is not JSON" in page.eval(
            "document.querySelector('.flash.error').textContent")
        # rejecting the other run's approval (the second button of the form)
        page.goto(server.url + "/run?id=p2")
        page.eval("document.querySelector('form[data-action=approve] input[name=by]').value"
                  " = 'Bob'")
        click(page, "form[data-action=approve] button.danger")
        assert "Rejected 'manager' as Bob." in page.eval(
            "document.querySelector('.flash.ok').textContent")
    finally:
        server.stop()
    with flowrt.SQLiteStore(store_path) as store:
        signals = store.signals("p1")  # type: ignore[attr-defined]
        assert [(s.name, json.loads(s.payload), s.signal_id) for s in signals] == [
            ("manager", {"approved": True, "by": "Ada", "comment": "within budget"}, None),
            ("webhook", {"paid": 120}, "psp-7")]
        assert store.get_run("p1").due <= time.time()  # type: ignore[union-attr]  # woken
        rejected = store.signals("p2")  # type: ignore[attr-defined]
        assert [(s.name, json.loads(s.payload)) for s in rejected] == [
            ("manager", {"approved": False, "by": "Bob", "comment": None})]


@needs_controls
def test_cancel_and_resume_from_the_page_change_the_stored_run(tmp_path: Path,
                                                               browser: Browser) -> None:
    store = tmp_path / "cancel.db"
    script = tmp_path / "live_flow.py"
    script.write_text(LIVE_FLOW)
    go = tmp_path / "go"
    runner = subprocess.Popen([sys.executable, str(script), str(store), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=REPO)
    server = None
    try:
        deadline = time.monotonic() + 60
        while True:
            if store.exists():
                with flowrt.SQLiteStore(store) as s:
                    stored = s.load("r-live")
                if stored is not None and "first" in stored.nodes:
                    break
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.05)
        server = Server(store)
        page = browser.new_page()
        page.goto(server.url + "/run?id=r-live")
        assert page.eval("document.querySelector('h1[data-run]').dataset.state") == "running"
        click(page, "form[data-action=cancel] button")
        assert "Cancelled." in page.eval("document.querySelector('.flash.ok').textContent")
        with flowrt.SQLiteStore(store) as s:
            record = s.get_run("r-live")
        assert record is not None and record.status == "cancelled"
        go.touch()  # the holder goes on to its next checkpoint: fenced out there
        runner.wait(60)
        with flowrt.SQLiteStore(store) as s:
            stored = s.load("r-live")
        assert stored is not None and stored.record.status == "cancelled"
        assert "gate" not in stored.nodes or stored.nodes["gate"].status != "succeeded"
        # resumed from the page: back in the queue for a worker
        page.goto(server.url + "/run?id=r-live")
        page.wait_for("document.querySelector('h1[data-run]').dataset.state === 'cancelled'")
        click(page, "form[data-action=resume] button")
        assert "Resumed" in page.eval("document.querySelector('.flash.ok').textContent")
        with flowrt.SQLiteStore(store) as s:
            record = s.get_run("r-live")
        assert record is not None and record.status == "queued"
        page.wait_for("document.querySelector('h1[data-run]').dataset.state === 'queued'")
    finally:
        go.touch()
        if runner.poll() is None:
            runner.kill()
        runner.wait()
        if server is not None:
            server.stop()


@needs_controls
def test_actions_over_http_and_their_refusals(tmp_path: Path) -> None:
    store_path = tmp_path / "http.db"
    park(store_path, "p1")
    server = Server(store_path)
    try:
        session, csrf = session_of(server, "/run?id=p1")
        headers = {"cookie": f"flowrt_ui_session={session}", "accept": "text/html"}

        def act(action: str, **fields: str) -> tuple[int, http.client.HTTPMessage, bytes]:
            return server.post(f"/actions/{action}", {"csrf": csrf, **fields}, headers)

        status, _, body = act("signal", run_id="p1", name="managr", payload="1")
        assert status == 409 and b"managr" in body and b"manager" in body  # the near match
        status, _, body = act("cancel", run_id="nope")
        assert status == 404 and b"nope" in body
        status, _, body = act("approve", run_id="p1", name="manager")
        assert status == 400 and b"&#x27;by&#x27;" in body
        status, _, body = act("approve", run_id="p1", name="manager", by=HOSTILE_NODE)
        assert status == 303
        status, _, body = server.get("/run?id=p1", cookie=headers["cookie"] +
                                     "; flowrt_ui_flash=" + quote(f"Approved as {HOSTILE_NODE}"),
                                     accept="text/html")
        assert HOSTILE_NODE.encode() not in body  # the message is escaped too
        status, _head, body = server.post("/actions/cancel", {"run_id": "p1", "csrf": csrf}, {
            "cookie": headers["cookie"], "accept": "application/json"})
        assert status == 200 and json.loads(body)["ok"] is True
        with flowrt.SQLiteStore(store_path) as store:
            assert store.get_run("p1").status == "cancelled"  # type: ignore[union-attr]
    finally:
        server.stop()


@pytest.mark.skipif(not hasattr(flowrt.SQLiteStore, "put_schedule"),
                    reason="needs the stores' schedules of issue 14")
def test_schedules_page_lists_the_stored_schedules(tmp_path: Path, browser: Browser) -> None:
    from flowrt.durable import RunRecord, ScheduleRecord  # type: ignore[attr-defined]

    store_path = tmp_path / "schedules.db"
    now = time.time()
    with flowrt.SQLiteStore(store_path) as store:
        store.put_schedule(ScheduleRecord(  # type: ignore[attr-defined]
            "nightly", "etl", b'{"day": "today"}', "json", now - 60, cron="0 2 * * *",
            timezone="Europe/Paris", created=now))
        store.put_schedule(ScheduleRecord(  # type: ignore[attr-defined]
            HOSTILE_NODE, "ping", b"{}", "json", now + 3600, every=300.0, created=now))
        for slot in ("2026-01-01T01:00:00Z", "2026-01-02T01:00:00Z"):
            assert store.submit(RunRecord(  # type: ignore[attr-defined]
                f"sched:nightly:{slot}", "etl", "fp", {"a": []}, b"{}", "queued", "json",
                now, now, queue="default", due=now))
    server = Server(store_path)
    try:
        page = browser.new_page()
        page.goto(server.url + "/schedules")
        rows = page.eval("Array.from(document.querySelectorAll('tr[data-schedule]'), "
                         "r => Array.from(r.cells, c => c.textContent))")
        by_name = {row[0]: row for row in rows}
        assert set(by_name) == {"nightly", HOSTILE_NODE}
        assert by_name["nightly"][2] == "0 2 * * * (Europe/Paris)"
        assert "due: a worker fires it" in by_name["nightly"][3]
        assert by_name["nightly"][7] == "2" and by_name[HOSTILE_NODE][2] == "every 5m00s"
        assert page.eval("document.querySelectorAll('img').length") == 0
        shot(page, tmp_path, "schedules")
        data = json.loads(server.get("/api/schedules")[2])
        assert sorted(s["name"] for s in data) == sorted(["nightly", HOSTILE_NODE])
        status, _, body = server.get("/workers", accept="text/html")
        assert status == 200 and b'data-queue="default"' in body  # 2 queued, due
    finally:
        server.stop()


def rolled_back_workflow() -> flowrt.Workflow:
    """pay succeeds and is undone when ship fails (a saga rolled back to the end)."""
    wf = flowrt.Workflow("checkout")

    def refund(pay: str) -> None:
        return None

    wf.add("pay", lambda: "charge-1", compensate=refund)

    def ship(pay: str) -> None:
        raise RuntimeError("no courier")

    wf.add("ship", ship, deps=["pay"])
    return wf


@needs_controls
def test_a_rolled_back_run_offers_no_resume_and_refuses_one(tmp_path: Path,
                                                            browser: Browser) -> None:
    """A run rolled back to the end is over (decision 020): resuming it would run
    nothing, so its page has no Resume and the server refuses a resume sent anyway;
    a failed run that was not rolled back keeps its Resume."""
    store_path = tmp_path / "saga.db"
    result = rolled_back_workflow().run_sync(store=str(store_path), run_id="undone")
    assert str(result.status) == "failed" and str(result.nodes["pay"].status) == "compensated"
    assert str(mixed_workflow().run_sync(store=str(store_path), run_id="plain").status) == (
        "failed")
    server = Server(store_path)
    try:
        page = browser.new_page()
        page.goto(server.url + "/run?id=undone")
        assert page.eval("document.querySelector('h1[data-run]').dataset.state") == "failed"
        assert page.eval("document.querySelector('form[data-action=resume]')") is None
        note = page.eval("document.querySelector('.actions .note').textContent")
        assert "Rolled back" in note and "nothing to resume" in note
        shot(page, tmp_path, "rolled-back")
        page.goto(server.url + "/run?id=plain")
        assert page.eval("document.querySelector('form[data-action=resume] button')"
                         ".textContent") == "Resume"
        # a resume posted anyway (an old page, a script) is refused, saying why
        session, csrf = session_of(server, "/run?id=plain")
        headers = {"cookie": f"flowrt_ui_session={session}", "accept": "application/json"}
        status, _, body = server.post("/actions/resume", {"csrf": csrf, "run_id": "undone"},
                                      headers)
        assert status == 409, body
        answer = json.loads(body)
        assert answer["ok"] is False
        assert ("run 'undone' was rolled back (failed; undone: pay): it is over, and "
                "resuming it would run nothing") in answer["error"]
        with flowrt.SQLiteStore(store_path) as store:
            assert store.get_run("undone").status == "failed"  # type: ignore[union-attr]
        status, _, body = server.post("/actions/resume", {"csrf": csrf, "run_id": "plain"},
                                      headers)
        assert status == 200 and json.loads(body)["ok"] is True
    finally:
        server.stop()


@needs_controls
def test_the_dashboard_and_the_command_line_refuse_alike(tmp_path: Path) -> None:
    """A refused action says the same from the dashboard (its JSON answer) as from
    ``flowrt`` (its stderr; exit 2): one message, from the store operation both call.
    A typo of a run id names the near one; a run rolled back to the end says why it
    cannot be resumed; an unknown signal names the run's wait nodes."""
    store_path = tmp_path / "saga.db"
    rolled_back_workflow().run_sync(store=str(store_path), run_id="undone-7")
    mixed_workflow().run_sync(store=str(store_path), run_id="plain")  # a page with forms
    server = Server(store_path)
    try:
        session, csrf = session_of(server, "/run?id=plain")
        headers = {"cookie": f"flowrt_ui_session={session}", "accept": "application/json"}
        for action, fields, http_status, near in [
            ("resume", {"run_id": "undone-8"}, 404, "did you mean 'undone-7'?"),
            ("cancel", {"run_id": "undone"}, 404, "did you mean 'undone-7'?"),
            ("resume", {"run_id": "undone-7"}, 409, "Start a new run to try again."),
            ("signal", {"run_id": "undone-7", "name": "go"}, 409, "has no signal 'go'"),
        ]:
            status, _, body = server.post(f"/actions/{action}", {"csrf": csrf, **fields},
                                          headers)
            dashboard = json.loads(body)["error"]
            assert status == http_status and near in dashboard, (action, status, body)
            cli = subprocess.run(
                [sys.executable, "-m", "flowrt", action, fields["run_id"],
                 *([fields["name"]] if "name" in fields else []), "--store", str(store_path)],
                capture_output=True, text=True, cwd=REPO, timeout=60)
            assert cli.returncode == 2, (action, cli.stdout, cli.stderr)
            assert cli.stderr.strip().endswith(f"error: {dashboard}"), (cli.stderr, dashboard)
    finally:
        server.stop()
    with flowrt.SQLiteStore(store_path) as store:  # nothing was changed
        assert {r.run_id: r.status for r in store.runs()} == {"undone-7": "failed",
                                                              "plain": "failed"}


def test_a_map_box_label_is_readable_in_the_browser(tmp_path: Path, browser: Browser) -> None:
    """The box of a mapped node says how its items ended in words that fit the box (it
    read "11 ok / 1 failed / 0 run..." once); the full counts are in its tooltip."""
    wf = flowrt.Workflow("etl-map")
    wf.add("files", lambda: [f"f{i}.csv" for i in range(12)])

    def parse(path: str) -> int:
        if path == "f7.csv":
            raise ValueError("bad row")
        return len(path)

    wf.add("parse", parse, map={"path": "files"}, partial=True)
    wf.add("total", lambda parse: sum(p or 0 for p in parse), deps=["parse"])
    store_path = tmp_path / "map.db"
    assert wf.run_sync(store=str(store_path), run_id="etl-map").ok
    server = Server(store_path)
    try:
        page = browser.new_page()
        page.goto(server.url + "/run?id=etl-map")
        box = page.eval("""(() => {
            const g = document.querySelector('#dag g.node[data-node="parse"]');
            const rects = g.querySelectorAll('rect');
            const label = g.querySelectorAll('text')[1];
            return {text: label.textContent, width: label.getComputedTextLength(),
                    box: rects[rects.length - 1].width.baseVal.value,
                    tip: g.querySelector('title').textContent};
        })()""")
        shot(page, tmp_path, "map")
    finally:
        server.stop()
    assert box["text"] == "11/12 ok, 1 failed"
    assert box["width"] < box["box"] - 8, box  # inside the box, with a margin
    assert "items: 11 ok / 1 failed / 0 running" in box["tip"]


def test_the_undone_items_of_a_failed_map_are_listed_in_the_browser(
        tmp_path: Path, browser: Browser) -> None:
    """A map that failed at one item keeps its status FAILED, and its rollback undoes
    the items that succeeded (decision 026): the run page's compensation section lists
    each of them (node, item index, status), last item first, with the error of a
    compensation that failed; the run is over, so it offers no Resume."""
    wf = flowrt.Workflow("charges")
    wf.add("cards", lambda: list(range(5)))

    def charge(card: int) -> str:
        if card == 2:
            raise RuntimeError("card 2 declined")
        return f"ch{card}"

    def refund(charge: str) -> None:
        if charge == "ch3":
            raise ConnectionError("refund of ch3 failed")

    wf.add("charge", charge, map={"card": "cards"}, compensate=refund)
    wf.add("ship", lambda charge: "shipped")
    store_path = tmp_path / "charges.db"
    result = wf.run_sync(store=str(store_path), run_id="charges")
    assert str(result.nodes["charge"].status) == "failed"
    server = Server(store_path)
    try:
        page = browser.new_page()
        page.goto(server.url + "/run?id=charges")
        rows = page.eval("""[...document.querySelectorAll(
                             '#compensation ~ table.compensation tbody tr')
                             ].map(tr => [tr.dataset.node, tr.dataset.item,
                             tr.dataset.status, tr.cells[1].textContent,
                             tr.querySelector('.err')?.textContent ?? null])""")
        note = page.eval("document.querySelector('#compensation + p.note').textContent")
        resume = page.eval("document.querySelector('form[data-action=resume]')")
        box = page.eval("""(() => {
            const g = document.querySelector('#dag g.node[data-node="charge"]');
            const rects = g.querySelectorAll('rect');
            const label = g.querySelectorAll('text')[1];
            return {text: label.textContent, width: label.getComputedTextLength(),
                    box: rects[rects.length - 1].width.baseVal.value};
        })()""")
        page.eval("document.getElementById('compensation').scrollIntoView()")
        shot(page, tmp_path, "map-compensation")
    finally:
        server.stop()
    assert rows == [
        ["charge", "4", "compensated", "4", None],
        ["charge", "3", "compensation_failed", "3",
         "ConnectionError: refund of ch3 failed"],
        ["charge", "1", "compensated", "1", None],
        ["charge", "0", "compensated", "0", None]]
    assert note == ("The run was rolled back: 3 map items undone, 1 compensation failed, "
                    "deepest first, a map's items last first.")
    assert resume is None
    # the map's box says it too, in words that fit ("0/5 ok, 1 failed, 3 comp..." once)
    assert box["text"] == "undone 3/4, 1 failed"
    assert box["width"] < box["box"] - 8, box
