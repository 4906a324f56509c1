"""The FastAPI recipe of docs/observability.md, served by a real uvicorn server.

The page's ``# app.py`` block is written to a directory as it is; a small launcher sets
the OpenTelemetry SDK up (spans written to a JSON-lines file, as an exporter would ship
them) and runs uvicorn on it. Concurrent requests, each with a client ``traceparent``,
check: one runtime serves them all, the named limit holds across requests, and each
run's spans hang under its request's span, down to the node's own span.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("opentelemetry.instrumentation.fastapi")
pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parent.parent

LAUNCHER = """
import json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

class JsonLines(SpanExporter):
    def __init__(self, path):
        self.file = open(path, "a", buffering=1)
    def export(self, spans):
        for s in spans:
            self.file.write(json.dumps({
                "name": s.name, "trace": f"{s.context.trace_id:032x}",
                "span": f"{s.context.span_id:016x}",
                "parent": f"{s.parent.span_id:016x}" if s.parent else None,
                "start": s.start_time, "end": s.end_time,
                "attributes": {k: v for k, v in s.attributes.items()
                               if isinstance(v, (str, int, float, bool))},
                "status": s.status.status_code.name}) + "\\n")
        return SpanExportResult.SUCCESS

provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(JsonLines(sys.argv[2])))
trace.set_tracer_provider(provider)

import uvicorn
import app  # the recipe, as the page shows it
uvicorn.run(app.app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def recipe_source() -> str:
    page = (ROOT / "docs" / "observability.md").read_text()
    match = re.search(r"```python\n(# app\.py\n.*?)```", page, re.S)
    assert match, "docs/observability.md has no '# app.py' block"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, traceparent: str) -> dict[str, Any]:
    request = urllib.request.Request(url, method="POST", data=b"",
                                     headers={"traceparent": traceparent})
    with urllib.request.urlopen(request, timeout=60) as response:
        return dict(json.loads(response.read()))


def test_the_fastapi_recipe_under_uvicorn(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(recipe_source())
    (tmp_path / "launch.py").write_text(LAUNCHER)
    spans_file = tmp_path / "spans.jsonl"
    port = free_port()
    server = subprocess.Popen([sys.executable, "launch.py", str(port), str(spans_file)],
                              cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the server did not start: "
                                         f"{server.stderr.read() if server.stderr else ''}"
                                         ) from None
                time.sleep(0.1)
        # 6 requests at once, each from a client trace of its own
        clients = {f"{k:032x}".replace("0", "a", 1): k for k in range(1, 7)}
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(
                lambda item: post(f"http://127.0.0.1:{port}/orders/o{item[1]}/checkout",
                                  f"00-{item[0]}-{item[1]:016x}-01"),
                clients.items()))
        assert sorted(a["receipt"] for a in answers) == sorted(
            f"receipt for paid-res-o{k}" for k in range(1, 7))
    finally:
        server.terminate()
        server.wait(timeout=30)
    spans = [json.loads(line) for line in spans_file.read_text().splitlines()]
    by_id = {s["span"]: s for s in spans}
    runs = [s for s in spans if s["name"] == "flowrt.run"]
    assert len(runs) == 6
    for run in runs:
        # the run's trace is the client's, and its span sits under the request's span
        assert run["trace"] in clients
        ancestors = []
        parent = by_id.get(run["parent"])
        while parent is not None:
            ancestors.append(parent)
            parent = by_id.get(parent["parent"])
        assert any(a["name"].startswith("POST /orders") for a in ancestors), ancestors
        nodes = {s["attributes"]["flowrt.node"]: s for s in spans
                 if s["name"] == "flowrt.node" and s["parent"] == run["span"]}
        assert sorted(nodes) == ["charge", "receipt", "reserve"]
        (bank,) = [s for s in spans if s["name"] == "bank.charge"
                   and s["parent"] == nodes["charge"]["span"]]
        assert bank["trace"] == run["trace"]
    # the named limit held across the requests: never more than 2 charges at once
    charges = [s for s in spans if s["name"] == "bank.charge"]
    edges = sorted([(s["start"], 1) for s in charges] + [(s["end"], -1) for s in charges])
    at_once = peak = 0
    for _, step in edges:
        at_once += step
        peak = max(peak, at_once)
    assert peak == 2
