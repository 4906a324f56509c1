"""perf/REPORT.md: the run's machine, the targets, one section per family, the why notes.

Every figure is read back from the run's result files (:mod:`.results`); the tables come
from each family's builder (:mod:`.tables`), the analysis from :mod:`.notes`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .compare import comparison_lines
from .notes import NOT_REPRODUCED, Note, note_for
from .paths import SEED_FILE
from .registry import BY_NAME, FAMILIES, PEERS, QUICK_PYPERF
from .results import Results
from .tables import AHEAD, BEHIND, Row, Verdict, render_table
from .targets import Target


def machine_lines(r: Results) -> list[str]:
    """Where and when the run was made, which flowrt it measured."""
    run = r.run
    m = run["machine"]
    hosts = {s.meta.get("hostname") for s in r.stats.values() if s.meta.get("hostname")}
    cpus = {s.meta.get("cpu_model_name") for s in r.stats.values() if s.meta.get("cpu_model_name")}
    pythons = {s.meta.get("python_version") for s in r.stats.values()
               if s.meta.get("python_version")}
    lines = [f"- Machine: {m['cpu_model']}, {m['cpus']} CPUs, {m['platform']} (host "
             f"`{m['hostname']}`)",
             f"- Python: {m['python']} (`{m['executable']}`)",
             f"- Date: {run['started']} to {run['finished']} (local time {run['tz']})",
             f"- Command: `{run['command']}` ({run['mode']} mode); wall time of the "
             f"benchmark runs: {run['wall_s'] / 60:.1f} min ({run['wall_s']:.0f} s)"]
    src = run.get("source")
    if src:
        changed = src.get("flowrt_changed") or []
        lines.append(f"- flowrt measured: commit `{src['commit']}` ({src.get('subject', '')})"
                     + (f", with uncommitted changes in {', '.join(f'`{c}`' for c in changed)}"
                        if changed else ", no uncommitted change in `flowrt/`"))
        if run.get("source_changed_during_run"):
            before = run.get("source_before", {})
            lines.append(f"- **flowrt changed during the run** (commit `{before.get('commit')}` "
                         f"at the start, `{src['commit']}` at the end): families run early "
                         "and late may have measured different code.")
    if len(hosts) > 1 or len(cpus) > 1 or len(pythons) > 1:
        lines.append(f"- **WARNING: the pyperf files name more than one machine or Python "
                     f"({sorted(map(str, hosts | cpus | pythons))}); do not read them "
                     "together.**")
    else:
        lines.append("- Every figure below was measured in this run, on this machine "
                     "(the pyperf metadata of every benchmark names the same host, CPU and "
                     "Python), except the seed's Go column, cited from the seed's "
                     f"analysis (`{SEED_FILE}` in the design repository; Go, its own "
                     "machine, which it does not describe: for orientation only).")
    return lines


def write_report(r: Results, path: Path, plots: dict[str, Path],
                 comparison: dict[str, Any] | None, *, no_plots: str | None = None) -> None:
    """Write the report of run ``r`` to ``path``, linking the PNGs ``plots`` (by name);
    ``no_plots`` says why there are none (matplotlib missing), at the top."""
    run = r.run
    quick = run["mode"] == "quick"
    out = ["# flowrt benchmark report", "",
           "Written by `perf/run.py` from the results of one run; regenerate with `python "
           "perf/run.py --quick` (or without `--quick` for the full run). See "
           "[README.md](README.md) for what each benchmark measures.", ""]
    out += machine_lines(r)
    out.append("")
    if no_plots is not None:
        out += [f"**No plots in this report: {no_plots}.**", ""]
    if quick:
        out += ["Quick mode: pyperf with one worker process and 3 values per benchmark "
                "(`" + " ".join(QUICK_PYPERF[1:]) + "`), no 100,000-node sizes. The "
                "figures are rough (absolute times on a shared machine drift from run to "
                "run); the ratios, measured side by side in the same run, are what to "
                "read.", ""]
    out += ["How to read a table: *flowrt* is the median of the pyperf values with their "
            "standard deviation; each baseline cell is the baseline's median and, in "
            "brackets, flowrt's median divided by it (below 1: flowrt is faster). A "
            "*floor* is not an alternative a user would pick but the least work possible "
            "(no concurrency, no method call). Verdicts: *ahead* / *behind* a baseline "
            f"when the ratio is below {AHEAD} / above {BEHIND} (in between: on par); "
            "*target met* / *missed* for the bars set in the issues.", ""]

    families = run["families"]
    not_ok = {n: i for n, i in families.items() if i.get("status") != "ok"}
    behind: list[tuple[Row, Verdict]] = []
    targets: list[tuple[Row, Target, bool, str]] = []
    body: list[str] = []
    for family in FAMILIES:
        info = families.get(family.name)
        if info is None:
            continue
        body += [f"## {family.section}", "",
                 f"Seed: {family.seed_ref}. Harness: `perf/{family.script}`"
                 f" ({info.get('seconds', 0):.0f} s in this run).", ""]
        if info.get("status") != "ok":
            body += [f"**Not measured in this run: {info.get('why', info.get('status'))}.**",
                     ""]
            continue
        for table in family.tables(r):
            body += render_table(r, table, behind, targets)
        if family.more is not None:
            body += family.more(r)
        for plot in family.plots:
            if plot.name in plots:
                rel = os.path.relpath(plots[plot.name], path.parent)
                body += [f"![{plot.name}]({rel})", ""]

    out += ["## Targets", "", "| target | benchmark | measured | verdict |",
            "| --- | --- | ---: | --- |"]
    for row, t, met, shown in targets:
        out.append(f"| {t.text} | {row.label} (`{row.key}`) | {shown} | "
                   f"{'met' if met else '**missed**'} |")
    out.append("")
    missed = [(row, t) for row, t, met, _ in targets if not met]
    out.append(f"{len(targets) - len(missed)} of {len(targets)} target checks met."
               + (" Missed: " + "; ".join(f"{t.text} at {row.label}" for row, t in missed)
                  + "." if missed else ""))
    out.append("")
    if not_ok:
        out += ["Families not measured in this run: " + ", ".join(
            f"`{n}` ({i.get('why', i.get('status'))})" for n, i in not_ok.items()) + ".", ""]
    skipped = [f.name for f in FAMILIES if f.name not in families]
    if skipped:
        out += ["Families not run (`--only`): " + ", ".join(f"`{n}`" for n in skipped)
                + ". Their figures are not carried over from other runs.", ""]
    out += body
    out += behind_lines(behind, [(row, t, shown) for row, t, met, shown in targets
                                 if not met])
    out += ["## The seed's figures not reproduced", ""]
    out += [f"- {item}" for item in NOT_REPRODUCED]
    out.append("")
    installed = run.get("peers")
    if installed is not None:
        out += ["## Optional peers", ""]
        for module, (name, where) in PEERS.items():
            if installed.get(module):
                out.append(f"- {name}: installed; {where}.")
            else:
                out.append(f"- {name}: not installed in this environment (`{module}`), "
                           "skipped.")
        out.append("")
    if comparison is not None:
        out += comparison_lines(comparison)
    out += ["## Families in this run", "", "| family | harness | status | seconds | log |",
            "| --- | --- | --- | ---: | --- |"]
    for name, info in families.items():
        out.append(f"| {name} | `perf/{BY_NAME[name].script}` | {info.get('status')} | "
                   f"{info.get('seconds', 0):.0f} | `{run.get('results', 'perf/results')}/"
                   f"{name}.log` |")
    out.append("")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def behind_lines(behind: list[tuple[Row, Verdict]],
                 missed: list[tuple[Row, Target, str]]) -> list[str]:
    """The rows where flowrt is behind a baseline or misses a target, grouped by note."""
    out = ["## Where flowrt is behind a Python baseline (or misses a target), and why", "",
           "Grouped by cause. Each group lists this run's rows, then why and what would "
           "close the gap (analysis, kept in `perf/suite/notes.py`).", ""]
    if not behind and not missed:
        return [*out, "Nowhere in this run.", ""]
    groups: dict[str, list[str]] = {}
    notes: dict[str, Note | None] = {}
    for row, v in behind:
        note = note_for(row.key)
        title = note.title if note else "Not analysed yet"
        notes[title] = note
        groups.setdefault(title, []).append(
            f"{row.label}: behind " + ", ".join(f"{c} {x:.2f}x" for c, x in v.behind))
    for row, t, shown in missed:
        note = note_for(row.key)
        title = note.title if note else "Not analysed yet"
        notes[title] = note
        groups.setdefault(title, []).append(f"{row.label}: **target missed** ({t.text}: "
                                            f"{shown})")
    for title, items in groups.items():
        note = notes[title]
        out += [f"### {title}", ""]
        out += [f"- {item}" for item in items]
        out.append("")
        if note is None:
            out += ["*No note yet: analyse before relying on these figures.*", ""]
        else:
            out += [f"**Why.** {note.why}", "", f"**What would close it.** {note.close}", ""]
    return out

