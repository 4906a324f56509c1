"""The benchmark suite behind ``perf/run.py``: run the families, report, plot, compare.

Modules, in the order a run uses them:

- ``registry``: the families (harness, arguments, how the output is read, the report's
  section, tables and plots), the optional peers.
- ``runner``: runs the families as subprocesses and records the run (run.json).
- ``results``: reads a run's files back into figures; merges the pyperf files.
- ``seed`` and ``targets``: the seed's cited Go figures and the issues' targets, from
  ``data/seed.toml`` and ``data/targets.toml``.
- ``tables``: one builder per family, rows of flowrt benchmarks beside their baselines;
  verdicts; rendering.
- ``plots``: the PNGs; ``notes``: why flowrt is behind where it is.
- ``report``: perf/REPORT.md; ``compare``: ``--compare OLD``; ``cli``: the command line.
"""
