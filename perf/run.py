"""Run every benchmark family, then write perf/REPORT.md and the plots. One command.

    python perf/run.py --quick                  # every family, light settings (< 5 min)
    python perf/run.py                          # full mode: pyperf's default statistics
    python perf/run.py --only execution         # one family (repeatable); --list names them
    python perf/run.py --quick --compare perf/results/previous    # regressions vs a run
    python perf/run.py --report-only            # rebuild the report from perf/results

Each family is a harness in perf/ run as a subprocess (its output in
``perf/results/<family>.log``) that writes ``perf/results/<family>.json``: pyperf JSON
for the timing families (usable with ``python -m pyperf compare_to``), plain JSON for
``memory`` (tracemalloc) and ``executors`` (a timed script beside a Dask cluster). The
pyperf results of the run are also merged into ``perf/results/all.json``. The files of
an earlier run of the same family are moved to ``perf/results/previous/`` first.

``--quick`` passes pyperf ``-p 1 -n 3 -w 1 --min-time 0.01`` (one worker process and
three values per benchmark, after a calibration process) and the harnesses' own
``--quick`` (no 100,000-node sizes, fewer Dask sizes, 3 repeats of the I/O scaling and
executor loops); without it each harness runs in its full mode (pyperf's default 20
processes x 3 values, the 100,000-node sizes), which takes about an hour.

``--compare OLD`` (a pyperf JSON file, or a directory of them such as an earlier
``perf/results``) runs ``python -m pyperf compare_to OLD perf/results/all.json``, prints
it, and puts it and the flowrt benchmarks that got slower into the report.

The work is done by the package ``perf/suite/``: ``registry.py`` (the families and how
each is run), ``runner.py`` (running them), ``results.py`` (reading their files back),
``tables.py`` (the report's tables), ``plots.py``, ``notes.py`` (why flowrt is behind
where it is), ``report.py``, ``compare.py``, and ``data/`` (the seed's cited Go figures
and the targets). The report holds only figures measured by the run that wrote it,
except the seed's Go column.
"""

from __future__ import annotations

import sys

from suite.cli import main

if __name__ == "__main__":
    sys.exit(main())
