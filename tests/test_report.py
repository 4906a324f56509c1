"""The HTML run report: its content from a store or a result, large runs, and what a
browser draws of it (headless Chromium, screenshot checked pixel by pixel)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import struct
import subprocess
import zlib
from pathlib import Path

import anyio
import pytest

import flowrt
from flowrt import Status
from flowrt.durable import NodeRecord, RunRecord, StoredRun
from flowrt.tools.report import MAX_NODES, render, view_of_stored, write
from flowrt.tools.viz import COLOURS

# -- a workflow with every kind of ending ----------------------------------------------------


def mixed_workflow() -> flowrt.Workflow:
    wf = flowrt.Workflow("shop")

    @wf.node
    async def fetch() -> list[int]:
        await anyio.sleep(0.01)
        return [1, 2, 3]

    @wf.node(retry=flowrt.Retry(attempts=3, delay=0.01))
    def price(fetch: list[int], ctx: flowrt.Context) -> int:
        if ctx.attempt == 1:
            raise ConnectionError("price service busy")
        return sum(fetch)

    @wf.node
    def stock(fetch: list[int]) -> int:
        raise ValueError("warehouse <b>offline</b> & \"unreachable\"")

    @wf.node
    def ship(price: int, stock: int) -> str:
        return "shipped"

    @wf.node(after=[ship], trigger=flowrt.Trigger.ALL_DONE)
    def audit(price: int) -> str:
        return "audited"

    wf.add("<script>alert(1)</script>", lambda price: price, deps=["price"])
    return wf


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory: pytest.TempPathFactory) -> StoredRun:
    path = tmp_path_factory.mktemp("report") / "runs.db"
    result = mixed_workflow().run_sync(store=str(path), run_id="r-mixed")
    assert str(result.status) == "failed"
    store = flowrt.SQLiteStore(path)
    try:
        stored = store.load("r-mixed")
    finally:
        store.close()
    assert stored is not None
    return stored


def test_report_from_a_store_is_self_contained(stored_run: StoredRun) -> None:
    page = render(stored_run)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") >= 2  # the graph and the timeline
    lowered = page.lower()
    for forbidden in ("<script", "http://", "https://", "src=", "<link", "@import"):
        assert forbidden not in lowered, forbidden
    # every node is in it, names and errors escaped
    for name in ("fetch", "price", "stock", "ship", "audit"):
        assert f">{name}<" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "warehouse &lt;b&gt;offline&lt;/b&gt; &amp; &quot;unreachable&quot;" in page
    # nodes coloured by status, with viz's colours
    for status in (Status.SUCCEEDED, Status.FAILED, Status.SKIPPED):
        assert COLOURS[status] in page
    # the timeline labels the retried node with its attempts; the table has every node
    assert "\u00d72" in page  # x2
    assert page.count("<tr>") == 1 + 6
    assert "Traceback" in page  # the stored traceback of the failed node, folded
    assert "r-mixed" in page and "shop" in page


def test_report_layers_nodes_by_level(stored_run: StoredRun) -> None:
    page = render(stored_run)
    graph = page[page.index('id="dag"'):page.index("</svg>", page.index('id="dag"'))]
    ys = {}
    for name in ("fetch", "price", "stock", "ship", "audit"):
        m = re.search(r'<rect x="[\d.]+" y="([\d.]+)"[^>]*/><text[^>]*>' + name + "<", graph)
        assert m, name
        ys[name] = float(m.group(1))
    assert ys["fetch"] < ys["price"] == ys["stock"] < ys["ship"] < ys["audit"]


def test_report_from_a_result_and_write(tmp_path: Path) -> None:
    result = mixed_workflow().run_sync()
    page = render(result)
    assert ">audit<" in page and COLOURS[Status.FAILED] in page
    out = write(result, tmp_path / "r.html")
    assert out.read_text("utf-8").startswith("<!DOCTYPE html>")
    assert not (tmp_path / "r.html.tmp").exists()


def test_report_of_nodes_without_records() -> None:
    """A run that was cut short: nodes with no record are drawn as pending."""
    record = RunRecord("r1", "wf", "fp", {"a": [], "b": ["a"], "c": ["b"]}, b"{}", "running",
                       "json", 1000.0, 1000.0)
    stored = StoredRun(record, {"a": NodeRecord("a", "succeeded", 1, b"1", None, None,
                                                1000.0, 1000.5)}, None)
    view = view_of_stored(stored)
    assert [n.status for n in view.nodes] == ["succeeded", "pending", "pending"]
    page = render(stored)
    assert COLOURS[Status.PENDING] in page and ">c<" in page


def test_large_runs_are_summarised() -> None:
    n = MAX_NODES * 4
    wf = flowrt.Workflow("big")
    for i in range(n):
        deps = [f"n{i - 1}"] if i % 50 else []
        if i == 7:
            wf.add(f"n{i}", lambda *a: 1 / 0, deps=deps)
        else:
            wf.add(f"n{i}", lambda *a: None, deps=deps, executor="loop")
    result = wf.run_sync()
    page = render(result)
    assert "too many to draw one by one" in page
    assert len(page) < 500_000
    rows = page.count("<tr>") - 1
    assert rows < 200  # the failed and skipped ones, and the slowest, not all of them
    assert ">n7<" in page  # the failed node is listed
    assert "how many ran at once" in page


# -- in a browser ----------------------------------------------------------------------------


def read_png(path: Path) -> tuple[int, int, list[bytes], int]:
    """A tiny PNG decoder (8-bit RGB/RGBA, not interlaced): width, height, rows, bytes/px."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    width = height = bpp = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and colour in (2, 6), (depth, colour)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    i = 0
    for _ in range(height):
        kind, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        if kind == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for x in range(stride):
                left = line[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + ((left + prev[x]) >> 1)) & 255
        elif kind == 4:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b = prev[x]
                c = prev[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def test_report_screenshot_in_chromium(stored_run: StoredRun, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run should install it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    page = write(stored_run, tmp_path / "report.html")
    png = tmp_path / "shot.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={png}", "--window-size=1200,900", page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert png.exists(), f"no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    width, height, rows, bpp = read_png(png)
    assert (width, height) == (1200, 900)

    def near(px: tuple[int, int, int], colour: tuple[int, int, int]) -> bool:
        return all(abs(a - b) <= 6 for a, b in zip(px, colour, strict=True))

    # The graph is the first wide box of the page's soft background, below the header.
    soft = (246, 248, 250)

    def wide_soft(y: int) -> bool:
        row = rows[y]
        hits = sum(1 for x in range(0, width * bpp, bpp * 4)
                   if (row[x], row[x + 1], row[x + 2]) == soft)
        return hits * 4 > width * 0.6

    top = next((y for y in range(60, height) if wide_soft(y)), None)
    assert top is not None, "no graph box on the page"
    targets = {s: _rgb(COLOURS[s]) for s in (Status.SUCCEEDED, Status.FAILED)}
    found: dict[Status, list[int]] = {s: [] for s in targets}
    drawn = 0
    for y in range(top, min(height, top + 420)):
        row = rows[y]
        for x in range(0, width * bpp, bpp * 2):
            px = (row[x], row[x + 1], row[x + 2])
            if px not in (soft, (255, 255, 255)):
                drawn += 1
            for status, colour in targets.items():
                if near(px, colour):
                    found[status].append(y)
    assert drawn > 5_000, "the graph box is (nearly) empty"
    for status, ys in found.items():
        assert len(ys) > 500, f"no {status} node drawn in the graph (colour {COLOURS[status]})"
    # the root ('fetch', succeeded) is drawn above the failed node one level below it
    assert min(found[Status.FAILED]) > min(found[Status.SUCCEEDED])


# -- one shape for results and stored runs; what a store says is escaped ---------------------


def test_results_and_stored_runs_have_the_same_keys(stored_run: StoredRun) -> None:
    result = mixed_workflow().run_sync(run_id="r-mixed")
    live, kept = result.to_dict(), stored_run.to_dict()
    shared = {"run_id", "workflow", "status", "started", "finished", "duration", "node_count",
              "counts", "attempts", "retries", "nodes"}
    assert shared <= live.keys() and shared <= kept.keys()
    assert live["nodes"].keys() == kept["nodes"].keys()
    for name in live["nodes"]:
        assert live["nodes"][name].keys() == kept["nodes"][name].keys()
        for key in ("status", "attempts", "error", "deps"):
            assert live["nodes"][name][key] == kept["nodes"][name][key], (name, key)
    assert live["counts"] == kept["counts"] and live["retries"] == kept["retries"] == 1
    assert kept["nodes"]["stock"]["traceback"].startswith("Traceback")
    assert live["outputs"]["price"] == 6 and "outputs" not in kept  # read with outputs()
    assert json.loads(json.dumps(live)) == live and json.loads(json.dumps(kept)) == kept


HOSTILE = '<script>alert("x")</script>'


def hostile_run() -> StoredRun:
    """A stored run as a hostile (or damaged) store file may hold it: markup in every
    text, text where numbers belong."""
    record = RunRecord("r<b>1</b>", HOSTILE, "fp", {"a": [], HOSTILE: ["a"]}, b"{}",
                       "running<script>", "json", 1000.0, 1000.0, None,
                       HOSTILE)  # "times resumed"
    nodes = {
        "a": NodeRecord("a", HOSTILE, HOSTILE, None, HOSTILE, HOSTILE, "<i>1000</i>", 1001.0),
        HOSTILE: NodeRecord(HOSTILE, "failed", 2, None, HOSTILE, HOSTILE, 1000.5, 1000.7),
    }
    return StoredRun(record, nodes, None)


def test_report_escapes_everything_from_a_store() -> None:
    page = render(hostile_run())
    lowered = page.lower()
    assert "<script" not in lowered and "<b>1" not in lowered and "<i>1000" not in lowered
    assert "&lt;script&gt;" in page and "r&lt;b&gt;1&lt;/b&gt;" in page
    view = view_of_stored(hostile_run())
    assert view.resumes == 0 and view.nodes[0].attempts == 0 and view.nodes[0].started is None


def test_write_is_owner_only_and_never_follows_a_link(stored_run: StoredRun,
                                                      tmp_path: Path) -> None:
    out = write(stored_run, tmp_path / "r.html")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE(write(stored_run, tmp_path / "s.html", mode=0o644).stat().st_mode) == (
        0o644)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "r.html.tmp").symlink_to(victim)
    (tmp_path / "t.html").symlink_to(victim)
    write(stored_run, tmp_path / "r.html")
    write(stored_run, tmp_path / "t.html")
    assert victim.read_text() == "keep" and not (tmp_path / "t.html").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "r.html", "r.html.tmp", "s.html", "t.html", "victim"]
    with pytest.raises(OSError):
        write(stored_run, tmp_path / "missing" / "r.html")
    assert not (tmp_path / "missing").exists()
