"""``perf/run.py`` writes its report where matplotlib is not installed (it used to crash
at the report step, after running every family): the report says the plots are missing
and why. Nothing is measured here: the report is rebuilt from a recorded run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: perf/run.py as a script, with matplotlib made unimportable (as where it is missing)
WITHOUT_MATPLOTLIB = """
import runpy, sys
sys.modules["matplotlib"] = None  # import matplotlib -> ImportError
sys.path.insert(0, "perf")
sys.argv = ["perf/run.py", *sys.argv[1:]]
runpy.run_path("perf/run.py", run_name="__main__")
"""


def test_the_report_is_written_without_matplotlib(tmp_path: Path) -> None:
    machine = {"cpu_model": "a CPU", "cpus": 2, "platform": "Linux", "hostname": "here",
               "python": "CPython 3.11", "executable": sys.executable}
    results = tmp_path / "results"
    results.mkdir()
    (results / "run.json").write_text(json.dumps({
        "mode": "quick", "command": "perf/run.py --quick", "families": {}, "wall_s": 1.0,
        "results": str(results), "started": "2026-12-02 05:00:00",
        "finished": "2026-12-02 05:00:01", "tz": "UTC +0000", "machine": machine,
        "source": None, "peers": {}}))
    report = tmp_path / "REPORT.md"
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_MATPLOTLIB, "--report-only", "--results", str(results),
         "--report", str(report), "--plots", str(tmp_path / "plots")],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "plots:  none drawn: matplotlib is not installed" in proc.stdout
    text = report.read_text()
    assert "**No plots in this report: matplotlib is not installed" in text
    assert "## Targets" in text  # the rest of the report is there
    assert not (tmp_path / "plots").exists() or not list((tmp_path / "plots").iterdir())
