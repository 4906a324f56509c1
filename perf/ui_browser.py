"""The dashboard end to end: a real ``flowrt ui`` server over a store of 10,000 runs
(and one run of 10,000 nodes), asked over HTTP and drawn by headless Chromium; and the
server's memory.

For the runs page (``/``) and the big run's page (``/run?id=big``):

- HTTP: the time to the whole response, the first request (the store read cold) and
  the median of the next ``--repeat``;
- Chromium (navigation timing, median of ``--repeat`` loads): time to the response's
  first byte, to DOMContentLoaded and to the load event, from the navigation's start;
- a live page asking whether anything changed (``/live/run?id=big&v=...``: 204).

Then the server's resident memory now and at its peak (VmRSS, VmHWM), beside an idle
server's. Screenshots of both pages go to ``--shots`` when given.

    python perf/ui_browser.py [--quick] [--repeat N] [--shots DIR] [-o FILE.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from bench_ui import make_big_run_store, make_runs_store  # noqa: E402
from browser import Browser, chromium  # noqa: E402


def start(store: Path) -> tuple[subprocess.Popen[bytes], str, int]:
    proc = subprocess.Popen([sys.executable, "-m", "flowrt", "ui", "--store", str(store),
                             "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    line = proc.stdout.readline().decode() if ready else ""
    found = re.search(r"at http://([\d.]+):(\d+)/", line)
    if found is None:
        proc.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return proc, found.group(1), int(found.group(2))


def memory(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024  # MiB
    return fields


def fetch(host: str, port: int, path: str) -> tuple[int, float, int]:
    conn = http.client.HTTPConnection(host, port, timeout=120)
    t0 = time.perf_counter()
    conn.request("GET", path, headers={"accept": "text/html"})
    response = conn.getresponse()
    body = response.read()
    took = time.perf_counter() - t0
    conn.close()
    return response.status, took, len(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 10")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--shots", type=Path, default=None, help="save screenshots here")
    parser.add_argument("-o", "--output", type=Path, default=None, help="write JSON here")
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 10)
    work = Path(tempfile.mkdtemp(prefix="flowrt-ui-browser-"))
    figures: dict[str, Any] = {}

    idle_store = work / "empty.db"
    make_runs_store(idle_store, 1)
    proc, host, port = start(idle_store)
    fetch(host, port, "/")
    figures["memory/idle"] = memory(proc.pid)
    proc.terminate()
    proc.wait()

    store = work / "runs.db"
    t0 = time.perf_counter()
    make_runs_store(store)
    make_big_run_store(store)
    figures["store/build_s"] = time.perf_counter() - t0
    proc, host, port = start(store)
    try:
        pages = {"runs": "/", "run": "/run?id=big"}
        for name, path in pages.items():
            status, first, size = fetch(host, port, path)
            assert status == 200, (path, status)
            again = [fetch(host, port, path)[1] for _ in range(repeat)]
            figures[f"http/{name}/first_ms"] = first * 1000
            figures[f"http/{name}/again_ms"] = statistics.median(again) * 1000
            figures[f"http/{name}/bytes"] = size
        conn = http.client.HTTPConnection(host, port, timeout=60)
        conn.request("GET", "/live/run?id=big")
        version = json.loads(conn.getresponse().read())["v"]
        polls = []
        for _ in range(repeat):
            t = time.perf_counter()
            conn.request("GET", f"/live/run?id=big&v={version}")
            response = conn.getresponse()
            response.read()
            polls.append(time.perf_counter() - t)
            assert response.status == 204
        conn.close()
        figures["http/live-unchanged/ms"] = statistics.median(polls) * 1000

        executable = chromium()
        if executable is None:
            print("no chromium: the browser figures are left out", file=sys.stderr)
        else:
            browser = Browser(executable, work / "chromium")
            try:
                page = browser.new_page()
                for name, path in pages.items():
                    timings = []
                    for _ in range(repeat):
                        page.goto(f"http://{host}:{port}{path}", timeout=120)
                        timings.append(page.eval(
                            "(() => { const n = performance.getEntriesByType('navigation')[0];"
                            " return [n.responseStart, n.domContentLoadedEventEnd,"
                            " n.loadEventEnd]; })()"))
                        page.wait_for("performance.getEntriesByType('navigation')[0]"
                                      ".loadEventEnd > 0")
                    for i, what in enumerate(("first_byte", "dom_ready", "load")):
                        figures[f"browser/{name}/{what}_ms"] = statistics.median(
                            t[i] for t in timings)
                    if args.shots is not None:
                        args.shots.mkdir(parents=True, exist_ok=True)
                        page.screenshot(args.shots / f"ui-{name}-10000.png")
            finally:
                browser.close()
        figures["memory/loaded"] = memory(proc.pid)
    finally:
        proc.terminate()
        proc.wait()

    print(f"{'figure':<34} value")
    for key, value in figures.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v:.1f} MiB" for k, v in value.items())
        elif isinstance(value, float):
            value = f"{value:.1f}"
        print(f"{key:<34} {value}")
    if args.output is not None:
        args.output.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
