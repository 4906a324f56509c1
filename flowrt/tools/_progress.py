"""Progress of runs on a terminal: what ``python -m flowrt`` shows while runs go on.

A display is an ``on_event`` hook (pass it to ``wf.run(on_event=...)``) that follows any
number of runs, told apart by run id:

- :class:`LiveDisplay` redraws a few lines in place (one per active run: a bar, the
  nodes running now, retries, failures, time) and prints one line per finished run.
  It needs ``rich`` (the ``cli`` extra) and a terminal.
- :class:`PlainDisplay` writes one line per event, for logs and pipes. For runs of more
  than :data:`PLAIN_EVENTS_UP_TO` nodes it writes the failures and retries as they
  happen and a progress line each second instead, so that a 100,000-node run does not
  print 300,000 lines.
- :class:`QuietDisplay` writes nothing but what :meth:`~Display.say` is given.

:func:`make_display` picks one: live on a terminal when rich is installed, else plain.
Displays are called in the event loop (hooks are) and are quick: a counter update per
event, and the live display draws from its own thread a few times a second.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from typing import IO, Any

from .._types import Event, EventKind
from . import _format as fmt

__all__ = ["PLAIN_EVENTS_UP_TO", "Display", "LiveDisplay", "PlainDisplay", "QuietDisplay",
           "RunProgress", "make_display", "rich_available"]

#: Plain displays print every event of runs up to this many nodes (see the module docs).
PLAIN_EVENTS_UP_TO = 500

_FINAL = {"succeeded", "failed", "skipped", "cancelled", "bypassed", "cached"}


class RunProgress:
    """What a display knows of one run, from its events."""

    __slots__ = (
        "_next_line",
        "counts",
        "done",
        "errors",
        "finished",
        "item_counts",
        "items_running",
        "restored",
        "retries",
        "run_id",
        "running",
        "started",
        "status",
        "total",
        "workflow",
    )

    def __init__(self, workflow: str, run_id: str, total: int | None, started: float) -> None:
        self.workflow = workflow
        self.run_id = run_id
        self.total = total
        self.started = started
        self.done = 0  #: nodes that reached a final status (restored ones included)
        self.restored = 0  #: nodes a resumed durable run read back from its store
        self.counts: Counter[str] = Counter()
        self.running: dict[str, int] = {}  # node -> attempt, in start order
        self.retries = 0
        self.errors: list[tuple[str, str]] = []  # (node, "Type: message"), the first few
        self.status: str | None = None
        self.finished: float | None = None
        self._next_line = 0.0
        #: items of mapped nodes that ended, per status; items running now
        self.item_counts: Counter[str] = Counter()
        self.items_running = 0

    def apply(self, event: Event) -> None:
        kind = str(event.kind)
        node = event.node
        if event.item is not None:  # an item of a mapped node: not a node of the run
            if kind == "started":
                self.items_running += 1
            elif kind == "retrying":
                self.items_running -= 1
                self.retries += 1
            elif kind in _FINAL:
                if kind != "skipped" and (kind != "cancelled" or event.attempt):
                    self.items_running = max(0, self.items_running - 1)
                self.item_counts[kind] += 1
                if kind == "failed" and len(self.errors) < 5:
                    self.errors.append((f"{node}[{event.item}]", fmt.error_text(event.error)))
            return
        if kind == "started" and node is not None:
            self.running[node] = event.attempt
        elif kind == "retrying" and node is not None:
            self.running.pop(node, None)
            self.retries += 1
        elif kind in _FINAL and node is not None:
            self.running.pop(node, None)
            self.counts[kind] += 1
            self.done += 1
            if kind == "failed" and len(self.errors) < 5:
                self.errors.append((node, fmt.error_text(event.error)))
        elif kind in ("compensated", "compensation_failed"):  # undone by a rollback
            self.counts[kind] += 1
            if self.counts["succeeded"]:  # it was counted there: a node counts once
                self.counts["succeeded"] -= 1
        elif kind == "run_finished":
            self.status = event.status or "finished"
            self.finished = event.time
            if self.total is not None and self.done < self.total:
                # Every node is final when a run finishes: those without events were
                # read back from the store of a resumed durable run.
                self.restored += self.total - self.done
                self.done = self.total

    def elapsed(self, now: float | None = None) -> float:
        end = self.finished if self.finished is not None else (now or time.time())
        return max(0.0, end - self.started)

    def summary(self) -> str:
        """``"9 nodes: 7 succeeded, 1 cached, 1 failed; 1 retry"``."""
        parts = [f"{c} {k}" for k in ("succeeded", "cached", "failed", "skipped",
                                      "cancelled", "bypassed", "compensated",
                                      "compensation_failed")
                 if (c := self.counts[k])]
        if self.restored:
            parts.insert(0, f"{self.restored} restored from the store")
        total = self.total if self.total is not None else self.done
        text = f"{total} node{'s' if total != 1 else ''}"
        if parts:
            text += ": " + ", ".join(parts)
        if self.item_counts:
            items = sum(self.item_counts.values())
            text += f"; {items} item{'s' if items != 1 else ''} of maps: " + ", ".join(
                f"{c} {k}" for k in ("succeeded", "failed", "skipped", "cancelled")
                if (c := self.item_counts[k]))
        if self.retries:
            text += f"; {self.retries} retr{'y' if self.retries == 1 else 'ies'}"
        return text


class Display:
    """Base of the displays: an ``on_event`` hook that keeps a :class:`RunProgress` per run.

    ``expect(workflow, nodes)`` tells how many nodes runs of a workflow have (events do
    not say); ``restored(run_id, n)`` that a resumed run starts with ``n`` nodes done.
    ``say(text)`` prints a line of narration without disturbing the display.
    """

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out if out is not None else sys.stdout
        self.runs: dict[str, RunProgress] = {}
        self._totals: dict[str, int] = {}
        self._restored: dict[str, int] = {}
        self._lock = threading.Lock()

    def expect(self, workflow: str, nodes: int) -> None:
        self._totals[workflow] = nodes

    def restored(self, run_id: str, nodes: int) -> None:
        self._restored[run_id] = nodes

    def __call__(self, event: Event) -> None:
        with self._lock:
            run = self.runs.get(event.run_id)
            if run is None or event.kind is EventKind.RUN_STARTED:
                run = RunProgress(event.workflow, event.run_id,
                                  self._totals.get(event.workflow), event.time or time.time())
                restored = self._restored.pop(event.run_id, 0)
                run.restored = run.done = restored
                self.runs[event.run_id] = run
            run.apply(event)
        self.show(run, event)

    def show(self, run: RunProgress, event: Event) -> None:
        """Draw ``event`` of ``run`` (the subclasses' part)."""

    def say(self, text: str = "") -> None:
        print(fmt.for_terminal(text), file=self.out, flush=True)

    def note(self, text: str) -> None:
        """A line about a run that is no event (``resuming run ...``) with the progress,
        on stderr; shown even by a quiet display."""
        print(fmt.for_terminal(text), file=sys.stderr, flush=True)

    def close(self) -> None:
        """Stop drawing (a live display leaves its last state on the screen)."""

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class QuietDisplay(Display):
    """Follows the runs and prints nothing of them."""


def _tag(run: RunProgress) -> str:
    rid = run.run_id if len(run.run_id) <= 28 else run.run_id[:24] + "..."
    return f"[{run.workflow} {rid}]"


class PlainDisplay(Display):
    """One line per event on ``stream`` (stderr by default): for logs and pipes."""

    def __init__(self, stream: IO[str] | None = None, out: IO[str] | None = None) -> None:
        super().__init__(out)
        self.stream = stream if stream is not None else sys.stderr

    def note(self, text: str) -> None:
        self._write(text)

    def _write(self, line: str) -> None:
        # Lines hold node names and error messages: no escape sequence reaches the terminal
        try:
            self.stream.write(fmt.for_terminal(line) + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe must not break the run
            pass

    def show(self, run: RunProgress, event: Event) -> None:
        kind = event.kind
        if kind is EventKind.RUN_STARTED:
            total = f"{run.total} nodes" if run.total is not None else "started"
            extra = f", {run.restored} restored from the store" if run.restored else ""
            self._write(f"{_tag(run)} run started ({total}{extra})")
            return
        if kind is EventKind.RUN_FINISHED:
            self._write(f"{_tag(run)} run {run.status} in {fmt.duration(run.elapsed())}: "
                        f"{run.summary()}")
            return
        if kind is EventKind.READY:
            return  # every node that starts says so: "ready" would double the lines
        big = run.total is not None and run.total > PLAIN_EVENTS_UP_TO
        if big and kind not in (EventKind.FAILED, EventKind.RETRYING):
            now = time.monotonic()
            if now < run._next_line:
                return
            run._next_line = now + 1.0
            at = fmt.duration(run.elapsed())
            self._write(f"{_tag(run)} {at:>7} {run.done}/{run.total} nodes done, "
                        f"{len(run.running)} running, {run.counts['failed']} failed, "
                        f"{run.retries} retries")
            return
        at = fmt.duration(max(0.0, event.time - run.started))
        line = f"{_tag(run)} {at:>7} {kind!s:<10} {event.node}"
        if event.item is not None:
            line += f"[{event.item}]"
        if kind is EventKind.STARTED and event.attempt > 1:
            line += f" (attempt {event.attempt})"
        elif kind is EventKind.RETRYING:
            line += f": attempt {event.attempt} failed: {fmt.error_text(event.error)}"
        elif kind is EventKind.FAILED:
            attempts = f" after {event.attempt} attempts" if event.attempt > 1 else ""
            line += f"{attempts}: {fmt.error_text(event.error)}"
        elif kind is EventKind.COMPENSATION_FAILED:
            line += f": {fmt.error_text(event.error)}"
        self._write(line)


def rich_available() -> bool:
    """Whether ``rich`` (the ``cli`` extra) can be imported."""
    try:
        import rich  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


class LiveDisplay(Display):
    """A display redrawn in place on a terminal, with ``rich``.

    One line per active run: a spinner, the workflow and run id, a bar of the nodes
    done, the nodes running now, retries, failures and the time so far. When a run
    finishes, a line saying how it ended is printed above the live area.
    """

    def __init__(self, stream: IO[str] | None = None, out: IO[str] | None = None) -> None:
        super().__init__(out)
        from rich.console import Console  # type: ignore[import-not-found,unused-ignore]
        from rich.live import Live  # type: ignore[import-not-found,unused-ignore]

        stream = stream if stream is not None else sys.stderr
        self.console = Console(file=stream, stderr=stream is sys.stderr)
        self._spinners: dict[str, Any] = {}
        # Narration goes through the live console when both are the same terminal;
        # to stdout otherwise (redirected to a file, it must not get the live area).
        self._say_live = _isatty(self.out) and _isatty(stream)
        self._live = Live(get_renderable=self._render, console=self.console,
                          refresh_per_second=8, transient=True, redirect_stdout=False,
                          redirect_stderr=False)
        self._live.start()
        self._closed = False

    def _render(self) -> Any:
        from rich.console import Group  # type: ignore[import-not-found,unused-ignore]
        from rich.progress_bar import ProgressBar  # type: ignore[import-not-found,unused-ignore]
        from rich.spinner import Spinner  # type: ignore[import-not-found,unused-ignore]
        from rich.table import Table  # type: ignore[import-not-found,unused-ignore]
        from rich.text import Text  # type: ignore[import-not-found,unused-ignore]

        now = time.time()
        with self._lock:
            rows = [(run, run.done, list(run.running.items()), run.retries,
                     run.counts["failed"]) for run in self.runs.values() if run.status is None]
        if not rows:
            return Group()
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=1, no_wrap=True)
        grid.add_column(no_wrap=True, max_width=36, overflow="ellipsis")
        grid.add_column(width=20, no_wrap=True)
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        for run, done, running, retries, failed in rows:
            spinner = self._spinners.get(run.run_id)
            if spinner is None:
                spinner = self._spinners[run.run_id] = Spinner("dots", style="cyan")
            total = run.total
            bar = ProgressBar(total=float(total or max(done, 1)), completed=float(done),
                              width=20, pulse=total is None)
            name = Text.assemble((fmt.for_terminal(run.workflow), "bold"), " ",
                                 (fmt.for_terminal(run.run_id), "dim"))
            info = Text(f"{done}/{total}" if total is not None else f"{done} done")
            info.append(f" {fmt.duration(run.elapsed(now))}", style="dim")
            if retries:
                info.append(f" {retries} retr{'y' if retries == 1 else 'ies'}", style="yellow")
            if failed:
                info.append(f" {failed} failed", style="bold red")
            if running:
                shown = ", ".join(n if a <= 1 else f"{n} (attempt {a})" for n, a in running[:4])
                if len(running) > 4:
                    shown += f" +{len(running) - 4}"
                info.append(f"  running: {fmt.for_terminal(shown)}", style="cyan")
            grid.add_row(spinner, name, bar, info)
        return grid

    def show(self, run: RunProgress, event: Event) -> None:
        kind = event.kind
        if kind is EventKind.RUN_FINISHED:
            style = {"succeeded": "green", "failed": "red"}.get(run.status or "", "yellow")
            mark = {"succeeded": "✔", "failed": "✖"}.get(run.status or "", "■")
            self.console.print(f"[{style}]{mark}[/] [bold]{_markup(run.workflow)}[/] "
                               f"[dim]{_markup(run.run_id)}[/] [{style}]{run.status}[/] in "
                               f"{fmt.duration(run.elapsed())}: {_markup(run.summary())}",
                               highlight=False)
            for node, error in run.errors:
                self.console.print(f"    [red]{_markup(node)}[/]: {_markup(error)}",
                                   highlight=False)
        elif kind is EventKind.RETRYING:
            self.console.print(f"  [yellow]retrying[/] {_markup(str(event.node))} after "
                               f"attempt {event.attempt}: "
                               f"{_markup(fmt.error_text(event.error))}", highlight=False)

    def say(self, text: str = "") -> None:
        if self._say_live and not self._closed:
            self.console.print(fmt.for_terminal(text), highlight=False, markup=False)
        else:
            super().say(text)

    def note(self, text: str) -> None:
        if not self._closed:
            self.console.print(fmt.for_terminal(text), highlight=False, markup=False)
        else:
            super().note(text)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._live.stop()


def _markup(text: str) -> str:
    """Text from a run (node names, errors) inside rich markup: shown as it is, never
    read as markup (an error saying ``[/]`` would end the style, or fail to print)."""
    from rich.markup import escape  # type: ignore[import-not-found,unused-ignore]

    return str(escape(fmt.for_terminal(text)))


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def make_display(mode: str = "auto", stream: IO[str] | None = None,
                 out: IO[str] | None = None) -> Display:
    """A display: ``mode`` is "auto" (live on a terminal with rich, else plain), "live",
    "plain" or "off"."""
    stream = stream if stream is not None else sys.stderr
    if mode == "off":
        return QuietDisplay(out)
    if mode == "live" or (mode == "auto" and _isatty(stream)):
        if rich_available():
            return LiveDisplay(stream, out)
        if mode == "live":
            print("flowrt: the live display needs rich (pip install 'flowrt[cli]'); "
                  "showing plain progress", file=stream)
    return PlainDisplay(stream, out)
