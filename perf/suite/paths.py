"""Where the suite reads and writes (defaults of ``perf/run.py``'s options)."""

from __future__ import annotations

from pathlib import Path

PERF = Path(__file__).resolve().parent.parent  # perf/: the harnesses
ROOT = PERF.parent  # the repository; harnesses run with it as their working directory
DATA = Path(__file__).resolve().parent / "data"  # the seed's figures, the targets
RESULTS = PERF / "results"
REPORT = PERF / "REPORT.md"
PLOTS = PERF / "plots"
SEED_FILE = "seed/flow-orchestrator-benchmark-analysis.md"  # in the design repository
