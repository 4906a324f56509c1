"""Running the families: each harness as a subprocess, its output in a log, and run.json.

The record :func:`run_all` returns is what ``results/run.json`` holds and what the report
reads: the mode and command, each family's status and time, the machine, the Python,
and which flowrt commit was measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .paths import ROOT
from .registry import BY_NAME, FAMILIES, PEERS, Family


def machine() -> dict[str, Any]:
    """The CPU model and count, the platform, the host and the Python of this process."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu_model": cpu, "cpus": os.cpu_count(), "platform": platform.platform(),
            "hostname": platform.node(),
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "executable": sys.executable}




def peers() -> dict[str, bool]:
    """Which optional peers (registry.PEERS) are installed."""
    return {module: importlib.util.find_spec(module) is not None for module in PEERS}


def provenance() -> dict[str, Any]:
    """Which flowrt was measured: the commit, and the files of flowrt/ changed on top."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  check=False, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = [line[3:] for line in git("status", "--porcelain", "--", "flowrt").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD") or "unknown",
            "subject": git("log", "-1", "--format=%s"), "flowrt_changed": changed}


def run_family(family: Family, quick: bool, results: Path, verbose: bool) -> dict[str, Any]:
    """Run one harness; its status ("ok", "failed", "skipped"), time and command."""
    missing = [m for m in family.requires if importlib.util.find_spec(m) is None]
    if missing:
        extra = f" (the `{family.extra}` extra)" if family.extra else ""
        return {"status": "skipped", "why": f"needs {', '.join(missing)}, not installed"
                f"{extra}", "seconds": 0.0}
    out = results / f"{family.name}.json"
    log = results / f"{family.name}.log"
    cmd = family.command(quick, out)
    t0 = time.monotonic()
    with log.open("w", encoding="utf-8") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            fh.write(line)
            if verbose:
                sys.stdout.write(line)
        rc = proc.wait()
    seconds = time.monotonic() - t0
    if rc != 0 or not out.exists():
        tail = log.read_text(encoding="utf-8").strip().splitlines()[-3:]
        return {"status": "failed", "why": f"exit status {rc}, see perf/results/"
                f"{family.name}.log: {' / '.join(tail)[:300]}", "seconds": seconds,
                "command": cmd}
    return {"status": "ok", "seconds": seconds, "command": cmd}


def run_all(args: argparse.Namespace, results: Path) -> dict[str, Any]:
    """Run the families ``args.only`` names (all by default) one after the other.

    The earlier run's files of these families move to ``results/previous/`` first.
    Returns the run's record (run.json).
    """
    families = [BY_NAME[n] for n in args.only] if args.only else list(FAMILIES)
    previous = results / "previous"
    previous.mkdir(exist_ok=True)
    for f in families:  # the earlier run's files of these families, kept one generation
        for suffix in (".json", ".log"):
            p = results / f"{f.name}{suffix}"
            if p.exists():
                shutil.move(str(p), str(previous / p.name))
    mode = "quick" if args.quick else "full"
    source_before = provenance()
    started = dt.datetime.now().astimezone()
    t0 = time.monotonic()
    info: dict[str, dict[str, Any]] = {}
    for i, f in enumerate(families, 1):
        print(f"[{i}/{len(families)}] {f.name}: perf/{f.script} ({mode}) ...", flush=True)
        info[f.name] = run_family(f, args.quick, results, args.verbose)
        status = info[f.name]["status"]
        extra = f": {info[f.name]['why']}" if status != "ok" else ""
        print(f"      {status} in {info[f.name]['seconds']:.0f} s "
              f"(total {time.monotonic() - t0:.0f} s){extra}", flush=True)
    wall = time.monotonic() - t0
    finished = dt.datetime.now().astimezone()
    source = provenance()
    command = "python perf/run.py" + (" --quick" if args.quick else "") + "".join(
        f" --only {n}" for n in args.only or ()) + (
        f" --compare {args.compare}" if args.compare else "")
    try:
        where = str(results.resolve().relative_to(ROOT))
    except ValueError:
        where = str(results)
    return {"mode": mode, "command": command, "families": info, "wall_s": wall,
            "results": where,
            "started": started.strftime("%Y-%m-%d %H:%M:%S"),
            "finished": finished.strftime("%Y-%m-%d %H:%M:%S"),
            "tz": started.strftime("%Z %z"), "machine": machine(), "source": source,
            "source_changed_during_run": source != source_before, "peers": peers(),
            "source_before": source_before}

