"""``--compare OLD``: pyperf's comparison of an earlier run with this one, for the report.

OLD may come from any version of perf/run.py (before or after the split into this
package): the comparison reads only pyperf files, matched by benchmark name.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from .paths import ROOT
from .registry import FLOWRT_NAMES
from .results import merge_pyperf, read_pyperf


def is_flowrt_side(name: str) -> bool:
    """Whether benchmark ``name`` measures flowrt (not a baseline)."""
    last = name.rsplit("/", 1)[-1]
    return last.startswith("flowrt") or any(fnmatch.fnmatchcase(name, p)
                                            for p in FLOWRT_NAMES)


def compare(old: Path, new_all: Path, results: Path, shown_old: str) -> dict[str, Any]:
    """``python -m pyperf compare_to`` OLD against this run's merged file."""
    old_file = old
    if old.is_dir():
        old_file = results / "compare-old.json"
        merged = old / "all.json" if (old / "all.json").exists() else None
        if merged is not None:
            shutil.copyfile(merged, old_file)
        elif not merge_pyperf(sorted(old.glob("*.json")), old_file):
            return {"old": str(old), "error": "no pyperf JSON in that directory"}
    cmd = [sys.executable, "-m", "pyperf", "compare_to", str(old_file), str(new_all), "-G",
           "--min-speed", "5"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    text = proc.stdout + (proc.stderr if proc.returncode else "")
    slower: list[str] = []
    section = None
    for line in text.splitlines():
        if line.startswith(("Slower", "Faster", "Benchmark hidden", "Geometric")):
            section = line.split()[0]
        elif section == "Slower" and line.startswith("- "):
            slower.append(line[2:])
    regressions = [s for s in slower if is_flowrt_side(s.split(":", 1)[0])]
    machines = set()
    for path in (old_file, new_all):
        try:
            for stat in read_pyperf(path).values():
                machines.add((stat.meta.get("hostname"), stat.meta.get("cpu_model_name"),
                              stat.meta.get("python_version")))
                break
        except Exception:
            pass
    shown_new = os.path.relpath(new_all, ROOT) if new_all.is_relative_to(ROOT) else new_all
    return {"old": shown_old, "command": " ".join(["python -m pyperf compare_to", shown_old,
                                                  str(shown_new), *cmd[6:]]),
            "output": text, "slower": slower, "regressions": regressions,
            "same_machine": len(machines) <= 1, "machines": sorted(map(str, machines))}


def comparison_lines(c: dict[str, Any]) -> list[str]:
    """The report's section on the comparison (``c`` from :func:`compare`)."""
    lines = [f"## Regressions against `{c['old']}`", ""]
    if "error" in c:
        return [*lines, f"Not compared: {c['error']}.", ""]
    if not c["same_machine"]:
        lines += ["**The earlier run was made on another machine or Python "
                  f"({'; '.join(c['machines'])}): the comparison says little.**", ""]
    lines += [f"`{c['command']}` (pyperf's comparison of the means, significance tested; "
              "changes under 5% not shown). A quick run takes its values from one worker "
              "process per benchmark, so sizeable changes between two quick runs of the "
              "same code are common; confirm a regression with the family's full run "
              "(`python perf/run.py --only FAMILY`) before acting on it.", ""]
    if c["regressions"]:
        lines += ["flowrt benchmarks that got slower:", ""]
        lines += [f"- {s}" for s in c["regressions"]]
    else:
        lines.append("No flowrt benchmark got significantly slower.")
    others = [s for s in c["slower"] if s not in c["regressions"]]
    if others:
        lines += ["", f"Baselines that got slower too ({len(others)}; when they move with "
                  "flowrt's, the machine moved):", ""]
        lines += [f"- {s}" for s in others[:20]]
        if len(others) > 20:
            lines.append(f"- ... and {len(others) - 20} more")
    lines += ["", "<details><summary>full compare_to output</summary>", "", "```",
              c["output"].rstrip(), "```", "", "</details>", ""]
    return lines

