"""The command line of ``perf/run.py``: run the families, then write the report and plots."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .compare import compare
from .paths import PLOTS, REPORT, RESULTS
from .plots import missing_plotter, plot_all
from .registry import BY_NAME, FAMILIES, READERS
from .report import write_report
from .results import load_results, merge_pyperf
from .runner import run_all

DESCRIPTION = "Run every benchmark family, then write perf/REPORT.md and the plots. One command."


def main(argv: Sequence[str] | None = None) -> int:
    """``perf/run.py``'s command line; the exit status (1 if a family failed)."""
    parser = argparse.ArgumentParser(description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="families: " + ", ".join(BY_NAME))
    parser.add_argument("--quick", action="store_true",
                        help="light settings: every family in under 5 minutes on 2 cores")
    parser.add_argument("--only", action="append", choices=list(BY_NAME), metavar="FAMILY",
                        help="run only this family (repeatable); see --list")
    parser.add_argument("--compare", metavar="OLD", type=Path,
                        help="an earlier pyperf JSON file or results directory: show "
                             "regressions (pyperf compare_to) and put them in the report")
    parser.add_argument("--list", action="store_true", help="list the families and exit")
    parser.add_argument("--report-only", action="store_true",
                        help="do not run anything: rebuild the report and the plots from "
                             "the run recorded in the results directory")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="where the JSON and logs go (default: perf/results)")
    parser.add_argument("--report", type=Path, default=REPORT,
                        help="the report to write (default: perf/REPORT.md)")
    parser.add_argument("--plots", type=Path, default=PLOTS,
                        help="where the PNG plots go (default: perf/plots)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="stream the harnesses' output (it always goes to the logs)")
    args = parser.parse_args(argv)

    if args.list:
        for f in FAMILIES:
            print(f"{f.name:<22} perf/{f.script:<32} {f.title}")
        return 0
    results: Path = args.results
    results.mkdir(parents=True, exist_ok=True)
    run_file = results / "run.json"

    # keep the file to compare with before this run replaces anything
    compare_src: Path | None = None
    tmp = Path(tempfile.mkdtemp(prefix="flowrt-perf-compare-"))
    try:
        if args.compare is not None:
            if not args.compare.exists():
                parser.error(f"--compare: {args.compare} does not exist")
            if args.compare.is_dir():
                compare_src = tmp / "old"
                compare_src.mkdir()
                for p in args.compare.glob("*.json"):
                    shutil.copy2(p, compare_src / p.name)
            else:
                compare_src = tmp / args.compare.name
                shutil.copy2(args.compare, compare_src)

        if args.report_only:
            if not run_file.exists():
                parser.error(f"--report-only: no {run_file}; run the benchmarks first")
            run = json.loads(run_file.read_text())
        else:
            run = run_all(args, results)
            run_file.write_text(json.dumps(run, indent=1))

        r = load_results(results, run, READERS)
        all_json = results / "all.json"
        count = merge_pyperf([results / f"{n}.json" for n, i in run["families"].items()
                              if i.get("status") == "ok"], all_json)
        comparison = None
        if compare_src is not None and count:
            comparison = compare(compare_src, all_json, results, str(args.compare))
            print("\n== pyperf compare_to " + str(args.compare) + " -> this run")
            text = comparison.get("output") or comparison.get("error") or ""
            for line in text.splitlines():  # the long list of unchanged names: counted
                print(line.split(":", 1)[0] if line.startswith("Benchmark hidden") else line)
            if comparison.get("regressions"):
                print("flowrt benchmarks that got slower:")
                for s in comparison["regressions"]:
                    print("  - " + s)
        # Without matplotlib the families' figures are still worth a report.
        no_plots = missing_plotter()
        plots = plot_all(r, args.plots, [p for f in FAMILIES for p in f.plots])
        write_report(r, args.report, plots, comparison, no_plots=no_plots)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    failed = [n for n, i in run["families"].items() if i.get("status") == "failed"]
    print(f"\nreport: {args.report}")
    for png in plots.values():
        print(f"plot:   {png}")
    if no_plots is not None:
        print(f"plots:  none drawn: {no_plots}")
    print(f"pyperf: {all_json} ({count} benchmarks; python -m pyperf compare_to OLD.json "
          f"{all_json})")
    if not args.report_only:
        print(f"wall time: {run['wall_s']:.0f} s ({run['wall_s'] / 60:.1f} min)")
    if failed:
        print(f"FAILED families: {', '.join(failed)} (see their logs)", file=sys.stderr)
        return 1
    return 0

