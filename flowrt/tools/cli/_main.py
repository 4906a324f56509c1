"""The command line: ``python -m flowrt`` (or the ``flowrt`` script).

::

    flowrt examples [NAME ...] [--list]
    flowrt run TARGET [-i KEY=VALUE ...] [--inputs-json FILE] [--store PATH] [--run-id ID]
                      [--max-concurrency N] [--timeout S] [--json]
    flowrt graph TARGET [--format mermaid|dot]
    flowrt runs --store PATH
    flowrt show RUN_ID --store PATH
    flowrt report RUN_ID --store PATH -o FILE.html

TARGET is ``path/to/file.py:name`` or ``package.module:name`` (``:name`` may be left
out when the module holds exactly one workflow). Exit status: 0 the run succeeded, 1 it
failed or was cancelled, 2 a usage or input error (a message, never a traceback), 130
interrupted by Ctrl-C (143 by SIGTERM). See docs/cli.md.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import math
import os
import signal
import sys
import threading
import time
import traceback
import types
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import anyio

from ... import __version__
from ...durable import SQLiteStore
from ...errors import FlowError, GraphError, MissingInputError, StoreError
from ...workflow import Workflow
from .._progress import Display, LiveDisplay, error_text, make_display, seconds
from ..report import write as write_report

__all__ = ["main"]

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad input from the command line: printed as a message, exit status 2."""


class Interrupted(Exception):
    """The work was stopped by a signal (Ctrl-C: SIGINT, or SIGTERM)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _prog() -> str:
    base = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "python -m flowrt" if base in ("__main__.py", "-m", "", "-c") else "flowrt"


PROG = "flowrt"


def err(message: str) -> None:
    """A message for the user on stderr, prefixed with the program's name."""
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


# -- running async work that Ctrl-C can stop ----------------------------------------------


def run_interruptible(make: Callable[[], Awaitable[T]]) -> T:
    """Run ``make()`` in a new asyncio event loop; SIGINT/SIGTERM cancel it cleanly.

    The signal cancels the work's cancel scope: every running node is cancelled, a
    durable run's store records the run as cancelled (resumable), then
    :class:`Interrupted` is raised here. Exceptions of the work are raised as they are.
    """
    box: dict[str, Any] = {}

    async def watch(signals: Any, scope: anyio.CancelScope) -> None:
        async for signum in signals:
            box["signal"] = int(signum)
            scope.cancel()
            return

    async def work() -> None:
        try:
            box["value"] = await make()
        except Exception as error:  # raised after the loop, without an exception group
            box["error"] = error

    async def host() -> None:
        try:
            receiver = anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM)
            signals = receiver.__enter__()
        except (NotImplementedError, RuntimeError, ValueError):  # no signals here
            await work()
            return
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch, signals, tg.cancel_scope)
                await work()
                tg.cancel_scope.cancel()
        finally:
            receiver.__exit__(None, None, None)

    anyio.run(host)
    if "error" in box:
        raise box["error"]
    if "value" in box:
        return box["value"]  # type: ignore[no-any-return]
    raise Interrupted(box.get("signal", signal.SIGINT))


def _abandoned_threads(grace: float = 0.5) -> int:
    """Worker threads still running a sync node that a cancelled run gave up on.

    Idle workers stop by themselves once the event loop has ended; give them ``grace``
    seconds to do so, so that only the busy ones are counted.
    """
    workers = [t for t in threading.enumerate()
               if t.name.startswith("AnyIO worker thread") and not t.daemon]
    deadline = time.monotonic() + grace
    for t in workers:
        t.join(max(0.0, deadline - time.monotonic()))
    return sum(1 for t in workers if t.is_alive())


# -- targets -------------------------------------------------------------------------------


def split_target(target: str) -> tuple[str, str | None]:
    """``"a/b.py:wf"`` -> ``("a/b.py", "wf")``; ``"pkg.mod"`` -> ``("pkg.mod", None)``."""
    target = target.strip()
    if not target:
        raise UsageError("the target is empty: give path/to/file.py:name or "
                         "package.module:name")
    left, sep, right = target.rpartition(":")
    if not sep or "/" in right or "\\" in right or right.endswith(".py"):
        return target, None  # no name (or a Windows drive letter, C:\...)
    if not left:
        raise UsageError(f"target {target!r} names no file or module before ':'")
    if not right:
        return left, None
    return left, right


def _looks_like_file(where: str) -> bool:
    return (where.endswith(".py") or "/" in where or os.sep in where
            or (os.altsep is not None and os.altsep in where) or os.path.isfile(where))


def _where_it_failed(error: BaseException, filename: str | None) -> str:
    if isinstance(error, SyntaxError) and error.filename:
        return f" ({error.filename}, line {error.lineno})"
    frames = traceback.extract_tb(error.__traceback__)
    user = [f for f in frames if "importlib" not in f.filename and "<frozen" not in f.filename]
    if filename is not None:
        mine = [f for f in user if os.path.abspath(f.filename) == os.path.abspath(filename)]
        user = mine or user
    if user:
        return f" ({user[-1].filename}, line {user[-1].lineno})"
    return ""


def _import_file(path_text: str) -> types.ModuleType:
    path = Path(path_text)
    if not path.is_file():
        if path.is_dir():
            raise UsageError(f"{path_text} is a directory; the target is path/to/file.py:name")
        raise UsageError(f"no such file: {path_text}")
    stem = path.stem
    name = stem if stem.isidentifier() and stem not in sys.modules else (
        "flowrt_target_" + "".join(c if c.isalnum() else "_" for c in stem))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {path_text} (is it a Python file?)")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # as 'python file.py' does: its neighbours import
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as error:
        sys.modules.pop(name, None)
        raise UsageError(f"importing {path_text} failed: {error_text(error, 500)}"
                         f"{_where_it_failed(error, str(path))}") from None
    return module


def _import_module(name: str) -> types.ModuleType:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)  # as 'python -m' does
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            raise UsageError(
                f"no module named {missing!r}: the target is path/to/file.py:name or "
                "package.module:name (importable from the current directory)") from None
        raise UsageError(f"importing {name} failed: {error_text(error, 500)}"
                         f"{_where_it_failed(error, None)}") from None
    except (Exception, SystemExit) as error:
        raise UsageError(f"importing {name} failed: {error_text(error, 500)}"
                         f"{_where_it_failed(error, None)}") from None


def _describe(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        return "a module"
    if isinstance(obj, type):
        return f"the class {obj.__qualname__}"
    if isinstance(obj, types.FunctionType | types.BuiltinFunctionType | types.MethodType):
        return f"a function ({getattr(obj, '__qualname__', obj)!s})"
    return f"an object of type {type(obj).__qualname__}"


def load_workflow(target: str) -> Workflow:
    """The :class:`~flowrt.Workflow` named by ``target``; UsageError when it is not one."""
    where, name = split_target(target)
    module = _import_file(where) if _looks_like_file(where) else _import_module(where)
    workflows = {k: v for k, v in vars(module).items() if isinstance(v, Workflow)}
    if name is None:
        if len(workflows) == 1:
            return next(iter(workflows.values()))
        if not workflows:
            raise UsageError(f"{where} defines no flowrt.Workflow at module level; "
                             f"name one as {where}:NAME")
        raise UsageError(f"{where} has several workflows ({', '.join(workflows)}): name "
                         f"one, as {where}:{next(iter(workflows))}")
    obj: Any = module
    for part in name.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            hint = (f"; its workflows: {', '.join(workflows)}" if workflows
                    else "; it defines no workflow at module level")
            raise UsageError(f"{where} has no attribute {name!r}{hint}") from None
    if not isinstance(obj, Workflow):
        raise UsageError(f"{where}:{name} is {_describe(obj)}, not a flowrt.Workflow")
    return obj


def compile_or_fail(wf: Workflow) -> Any:
    try:
        return wf.compile()
    except (GraphError, TypeError) as error:
        raise UsageError(f"workflow {wf.name!r} is invalid: {error}") from None


# -- inputs --------------------------------------------------------------------------------


def parse_value(raw: str) -> Any:
    """JSON when it parses (``3``, ``true``, ``[1,2]``, ``"x"``), else the string."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def parse_inputs(pairs: Sequence[str], json_file: str | None) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    if json_file is not None:
        try:
            text = sys.stdin.read() if json_file == "-" else Path(json_file).read_text("utf-8")
        except OSError as error:
            raise UsageError(f"--inputs-json: cannot read {json_file}: "
                             f"{error.strerror or error}") from None
        try:
            loaded = json.loads(text)
        except ValueError as error:
            raise UsageError(f"--inputs-json: {json_file} is not valid JSON: {error}") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"--inputs-json: {json_file} must hold a JSON object "
                             f"(input name -> value), not {type(loaded).__name__}")
        inputs.update(loaded)
    for item in pairs:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"-i takes KEY=VALUE, got {item!r}")
        if not key.isidentifier():
            raise UsageError(f"-i {item!r}: {key!r} is not a valid input name "
                             "(inputs are parameter names)")
        inputs[key] = parse_value(raw)
    return inputs


# -- stores --------------------------------------------------------------------------------


def open_store(path_text: str, *, must_exist: bool) -> Any:
    """An SQLiteStore at ``path_text``; UsageError when it is none (the file untouched)."""
    path = Path(path_text)
    if path.is_dir():
        raise UsageError(f"--store {path_text} is a directory, not a flowrt store file")
    if must_exist:
        if not path.exists():
            raise UsageError(f"no store at {path_text} (the file does not exist)")
        if path.stat().st_size == 0:
            raise UsageError(f"{path_text} is not a flowrt store: the file is empty")
    try:
        return SQLiteStore(path)
    except StoreError as error:
        raise UsageError(str(error)) from None
    except OSError as error:
        raise UsageError(f"cannot open the store {path_text}: {error.strerror or error}") from None


# -- output helpers ------------------------------------------------------------------------


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
                 right: Iterable[int] = ()) -> str:
    """Rows as aligned plain-text columns (columns in ``right`` aligned right)."""
    text_rows = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text_rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    right = set(right)

    def line(cells: Sequence[str]) -> str:
        out = [c.rjust(widths[i]) if i in right else c.ljust(widths[i])
               for i, c in enumerate(cells)]
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]),
                      *(line(r) for r in text_rows)])


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _jsonable(value: Any) -> Any:
    """``value`` as JSON-ready data: containers walked, other types as their repr."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    return repr(value)


def _print_json(data: Any, out: IO[str] | None = None) -> None:
    out = out or sys.stdout
    out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    out.flush()


# -- logging -------------------------------------------------------------------------------

_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
#: flowrt's own lifecycle records: the progress display already shows them
_LIFECYCLE = frozenset({"run started", "run finished", "node failed"})


class _Formatter(logging.Formatter):
    """``LEVEL logger: message key=value ...`` with the values structlog bound."""

    def format(self, record: logging.LogRecord) -> str:
        base = f"{record.levelname.lower()} {record.name}: {record.getMessage()}"
        extras = " ".join(f"{k}={v}" for k, v in vars(record).items()
                          if k not in _STANDARD_ATTRS and not k.startswith("_"))
        text = f"{base} {extras}" if extras else base
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class _SkipLifecycle(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "flowrt" and record.getMessage() in _LIFECYCLE)


def setup_logging(level_name: str, display: Display) -> logging.Handler:
    """Show log records of ``level_name`` and above on stderr (the CLI configures
    logging; the library never does)."""
    level = getattr(logging, level_name.upper())
    handler: logging.Handler
    if isinstance(display, LiveDisplay):
        from rich.logging import RichHandler  # type: ignore[import-not-found,unused-ignore]

        handler = RichHandler(console=display.console, show_path=False, markup=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter())
    if level > logging.DEBUG:
        handler.addFilter(_SkipLifecycle())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    return handler


# -- argument types ------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}")
    return value


# -- subcommands ---------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    wf = load_workflow(args.target)
    plan = compile_or_fail(wf)
    inputs = parse_inputs(args.input or [], args.inputs_json)
    known = set(plan.required_inputs) | set(plan.optional_inputs)
    for key in inputs:
        if key not in known and key not in plan.index:
            err(f"warning: input {key!r} is not a parameter of any node of {wf.name!r}")
    store = open_store(args.store, must_exist=False) if args.store else None
    run_id = args.run_id or uuid.uuid4().hex[:12]
    display = make_display("off" if args.quiet or args.json else args.progress)
    handler = setup_logging(args.log_level, display)
    display.expect(wf.name, len(plan))
    try:
        if store is not None:
            stored = store.load(run_id)
            if stored is not None:
                done = sum(1 for r in stored.nodes.values() if r.status == "succeeded")
                if stored.record.status == "succeeded":
                    msg = f"run {run_id} already succeeded: its stored result, nothing runs"
                else:
                    msg = (f"resuming run {run_id} ({stored.record.status}): {done} of "
                           f"{len(stored.record.structure)} nodes already succeeded and are "
                           "not run again")
                    display.restored(run_id, done)
                if not args.json:
                    err(msg)
        try:
            result = run_interruptible(lambda: wf.run(
                inputs or None, run_id=run_id, store=store,
                max_concurrency=args.max_concurrency, timeout=args.timeout,
                on_event=display))
        except MissingInputError as error:
            names = " ".join(f"-i {k}=VALUE" for k in error.missing)
            raise UsageError(f"{error}; give {'it' if len(error.missing) == 1 else 'them'} "
                             f"with {names}") from None
        except (FlowError, ValueError) as error:
            raise UsageError(str(error)) from None
        finally:
            display.close()
    except Interrupted as stop:
        how = "interrupted" if stop.signum == signal.SIGINT else f"stopped by {stop}"
        hint = ""
        if store is not None:
            hint = (f"; the run is recorded as cancelled in {args.store}: resume it with "
                    f"{PROG} run {args.target} --store {args.store} --run-id {run_id}")
        err(f"{how}: run {run_id} of {wf.name!r} cancelled{hint}")
        _exit_now_if_threads_left(stop.exit_code)
        return stop.exit_code
    finally:
        if store is not None:
            store.close()
        logging.getLogger().removeHandler(handler)

    if args.json:
        _print_json(result_json(result))
    else:
        print_result(result, store_path=args.store, target=args.target, traceback=args.traceback)
    code = EXIT_OK if result.ok else EXIT_FAILED
    if str(result.status) == "cancelled":  # its timeout may have abandoned sync nodes
        _exit_now_if_threads_left(code)
    return code


def _exit_now_if_threads_left(code: int) -> None:
    """Before exiting on a signal: do not wait for abandoned worker threads."""
    left = _abandoned_threads()
    if left:
        err(f"not waiting for {left} sync node{'s' if left > 1 else ''} still running in "
            "worker threads (their results are discarded)")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def result_json(result: Any) -> dict[str, Any]:
    nodes = {}
    for name, node in result.nodes.items():
        nodes[name] = {
            "status": str(node.status),
            "attempts": node.attempts,
            "started": node.started,
            "duration": node.duration,
            "error": None if node.error is None else error_text(node.error, 10_000),
        }
    metrics = result.metrics
    return {
        "workflow": result.workflow,
        "run_id": result.run_id,
        "status": str(result.status),
        "ok": result.ok,
        "started": result.started,
        "duration": result.duration,
        "counts": result.counts(),
        "attempts": metrics.attempts,
        "retries": metrics.retries,
        "nodes": nodes,
        "outputs": {k: _jsonable(v) for k, v in result.outputs.items()},
    }


#: Node tables longer than this show only the nodes that did not succeed.
TABLE_ROWS = 60


def print_result(result: Any, *, store_path: str | None, target: str, traceback: bool) -> None:
    out = sys.stdout
    metrics = result.metrics
    counts = ", ".join(f"{c} {k}" for k, c in result.counts().items())
    retries = (f"; {metrics.retries} retr{'y' if metrics.retries == 1 else 'ies'}"
               if metrics.retries else "")
    n = len(result.plan)
    print(f"run {result.run_id} of {result.workflow!r} {result.status} in "
          f"{seconds(result.duration)} ({n} node{'s' if n != 1 else ''}: {counts}{retries})",
          file=out)
    names = list(result.nodes)
    if len(names) > TABLE_ROWS:
        shown = [n for n in names if str(result.nodes[n].status) != "succeeded"][:TABLE_ROWS]
        left = len(names) - len(shown)
        note = (f"({left} {'more ' if shown else ''}nodes not listed: --json lists every "
                "node)")
    else:
        shown, note = names, ""
    if shown:
        rows = []
        for name in shown:
            node = result.nodes[name]
            rows.append([name, str(node.status), node.attempts, seconds(node.duration),
                         error_text(node.error, 100)])
        print("", file=out)
        print(format_table(["node", "status", "attempts", "duration", "error"], rows,
                           right=(2, 3)), file=out)
    if note:
        print(note, file=out)
    if result.errors and traceback:
        for name, error in result.errors.items():
            text = getattr(error, "traceback_text", None) or "".join(
                _format_exc(error))
            print(f"\n--- {name} ---\n{text.rstrip()}", file=out)
    elif result.errors:
        print(f"\n(--traceback shows where the failed node{'s' if len(result.errors) > 1 else ''}"
              " raised)", file=out)
    sinks = [n for n in names if not result.plan.dependents(n) and n in result.outputs]
    if sinks and len(sinks) <= 10:
        print("", file=out)
        for name in sinks:
            print(f"{name} = {_short(result.outputs[name])}", file=out)
    if store_path:
        print(f"\nstored in {store_path} as run {result.run_id}: "
              f"{PROG} show {result.run_id} --store {store_path}; "
              f"{PROG} report {result.run_id} --store {store_path} -o {result.run_id}.html",
              file=out)
    out.flush()


def _format_exc(error: BaseException) -> list[str]:
    return traceback.format_exception(type(error), error, error.__traceback__)


def cmd_graph(args: argparse.Namespace) -> int:
    wf = load_workflow(args.target)
    compile_or_fail(wf)
    text = wf.to_dot() if args.format == "dot" else wf.to_mermaid()
    sys.stdout.write(text)
    sys.stdout.flush()
    return EXIT_OK


def cmd_runs(args: argparse.Namespace) -> int:
    store = open_store(args.store, must_exist=True)
    try:
        records = store.runs(workflow=args.workflow, status=args.status)
    finally:
        store.close()
    records = sorted(records, key=lambda r: r.created)
    if args.last is not None:
        records = records[-args.last:]
    if args.json:
        _print_json([{"run_id": r.run_id, "workflow": r.workflow, "status": r.status,
                      "created": r.created, "started": r.started, "finished": r.finished,
                      "duration": r.duration, "nodes": len(r.structure),
                      "resumes": r.resumes} for r in records])
        return EXIT_OK
    if not records:
        print(f"no runs in {args.store}")
        return EXIT_OK
    rows = [[r.run_id, r.workflow, r.status, _when(r.created), seconds(r.duration),
             len(r.structure), r.resumes] for r in records]
    print(format_table(["run id", "workflow", "status", "started", "duration", "nodes",
                        "resumes"], rows, right=(4, 5, 6)))
    return EXIT_OK


def _load_run(store: Any, run_id: str, store_path: str) -> Any:
    stored = store.load(run_id)
    if stored is None:
        ids = [r.run_id for r in store.runs()][-5:]
        hint = (f"; the latest: {', '.join(ids)}" if ids else "; the store has no runs")
        raise UsageError(f"no run {run_id!r} in {store_path}{hint}")
    return stored


def cmd_show(args: argparse.Namespace) -> int:
    store = open_store(args.store, must_exist=True)
    try:
        stored = _load_run(store, args.run_id, args.store)
    finally:
        store.close()
    record = stored.record
    names = list(record.structure) + [n for n in stored.nodes if n not in record.structure]
    if args.json:
        nodes = {}
        for name in names:
            rec = stored.nodes.get(name)
            nodes[name] = {
                "status": rec.status if rec else "pending",
                "attempts": rec.attempts if rec else 0,
                "started": rec.started if rec else None,
                "finished": rec.finished if rec else None,
                "duration": (rec.finished - rec.started) if rec and rec.started is not None
                and rec.finished is not None else None,
                "error": rec.error if rec else None,
                "deps": record.structure.get(name, []),
            }
        _print_json({"run_id": record.run_id, "workflow": record.workflow,
                     "status": record.status, "created": record.created,
                     "started": record.started, "finished": record.finished,
                     "duration": record.duration, "resumes": record.resumes,
                     "nodes": nodes})
        return EXIT_OK
    counts: dict[str, int] = {}
    for name in names:
        rec = stored.nodes.get(name)
        status = rec.status if rec else "pending"
        counts[status] = counts.get(status, 0) + 1
    print(f"run {record.run_id} of {record.workflow!r}: {record.status}")
    print(f"  created  {_when(record.created)}")
    print(f"  started  {_when(record.started)}"
          + (f"  (resumed {record.resumes} time{'s' if record.resumes > 1 else ''})"
             if record.resumes else ""))
    print(f"  finished {_when(record.finished)}  duration {seconds(record.duration)}")
    print("  nodes    " + ", ".join(f"{c} {s}" for s, c in counts.items()))
    rows = []
    for name in names:
        rec = stored.nodes.get(name)
        if rec is None:
            rows.append([name, "pending", 0, "-", ""])
            continue
        duration = (rec.finished - rec.started if rec.started is not None
                    and rec.finished is not None else None)
        error = rec.error or ""
        error = " ".join(error.split())
        if len(error) > 100:
            error = error[:97] + "..."
        rows.append([name, rec.status, rec.attempts, seconds(duration), error])
    print()
    print(format_table(["node", "status", "attempts", "duration", "error"], rows,
                       right=(2, 3)))
    if args.traceback:
        for name in names:
            rec = stored.nodes.get(name)
            if rec is not None and rec.traceback:
                print(f"\n--- {name} ---\n{rec.traceback.rstrip()}")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    store = open_store(args.store, must_exist=True)
    try:
        stored = _load_run(store, args.run_id, args.store)
    finally:
        store.close()
    out = args.output or f"{args.run_id}.html"
    try:
        path = write_report(stored, out)
    except OSError as error:
        raise UsageError(f"cannot write {out}: {error.strerror or error}") from None
    print(f"wrote {path} (run {stored.record.run_id} of {stored.record.workflow!r}, "
          f"{stored.record.status}, {len(stored.record.structure)} nodes)")
    return EXIT_OK


# -- examples ------------------------------------------------------------------------------


def examples_package() -> types.ModuleType:
    """``flowrt.examples``, installed with flowrt (packaged from the repository's examples/)."""
    return importlib.import_module("flowrt.examples")


class _Outcome:
    def __init__(self, name: str) -> None:
        self.name = name
        self.status = "not run"
        self.runs: list[Any] = []
        self.wall = 0.0
        self.error: str | None = None


def cmd_examples(args: argparse.Namespace) -> int:
    package = examples_package()
    registry: dict[str, str] = dict(package.EXAMPLES)
    if args.list:
        rows = [[name, text] for name, text in registry.items()]
        print(format_table(["example", "what it shows"], rows))
        print(f"\nrun them: {PROG} examples [NAME ...]; each is also a script: "
              "python examples/NAME.py in a checkout")
        return EXIT_OK
    names = args.names or list(registry)
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise UsageError(f"no example named {', '.join(map(repr, unknown))}; the examples "
                         f"are: {', '.join(registry)}")
    display = make_display("off" if args.quiet else args.progress)
    handler = setup_logging(args.log_level, display)
    outcomes = [_Outcome(n) for n in names]

    async def run_all() -> None:
        for outcome in outcomes:
            name = outcome.name
            module = importlib.import_module(f"{package.__name__}.{name}")
            for obj in vars(module).values():
                if isinstance(obj, Workflow):
                    display.expect(obj.name, len(obj))
            display.say(f"\n== {name}: {registry[name]}")
            outcome.status = "running"
            started = time.perf_counter()
            try:
                outcome.runs = list(await module.demo(on_event=display, say=display.say))
                outcome.status = "succeeded"
            except Exception as error:
                outcome.status = "failed"
                outcome.error = error_text(error, 300)
                display.say(f"example {name} failed: {outcome.error}")
                traceback.print_exception(type(error), error, error.__traceback__,
                                          file=sys.stderr)
            finally:
                outcome.wall = time.perf_counter() - started

    interrupted: Interrupted | None = None
    try:
        run_interruptible(run_all)
    except Interrupted as stop:
        interrupted = stop
        for o in outcomes:
            if o.status == "running":
                o.status = "interrupted"
    finally:
        display.close()
        logging.getLogger().removeHandler(handler)

    table: list[list[Any]] = []
    for o in outcomes:
        nodes = sum(len(r.plan) for r in o.runs)
        retries = sum(r.metrics.retries for r in o.runs)
        table.append([o.name, o.status, len(o.runs), nodes, retries,
                      seconds(o.wall) if o.status != "not run" else "-"])
    print()
    print(format_table(["example", "status", "runs", "nodes", "retries", "wall time"], table,
                       right=(2, 3, 4, 5)))
    ok = sum(1 for o in outcomes if o.status == "succeeded")
    print(f"\n{ok} of {len(outcomes)} example{'s' if len(outcomes) != 1 else ''} succeeded.")
    sys.stdout.flush()
    if interrupted is not None:
        err("interrupted")
        _exit_now_if_threads_left(interrupted.exit_code)
        return interrupted.exit_code
    return EXIT_OK if ok == len(outcomes) else EXIT_FAILED


# -- the parser ----------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # exit 2, as argparse does, with a hint
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n"
                              f"(try: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="flowrt: run workflows (DAGs of Python functions) and look at their runs.",
        epilog="Exit status: 0 the run succeeded, 1 it failed or was cancelled, 2 usage or "
               "input error, 130 interrupted (Ctrl-C). Docs: docs/cli.md.")
    parser.add_argument("--version", action="version", version=f"flowrt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def progress_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--progress", choices=["auto", "live", "plain", "off"], default="auto",
                       help="how progress is shown on stderr: live on a terminal (with rich), "
                            "plain lines otherwise (default: auto)")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
        p.add_argument("--log-level", default="warning",
                       choices=["debug", "info", "warning", "error", "critical"],
                       help="log records shown on stderr (default: warning)")

    p = sub.add_parser("examples", help="run the bundled examples",
                       description="Run the bundled examples (all by default) with live "
                                   "progress, then print a summary.")
    p.add_argument("names", nargs="*", metavar="NAME", help="examples to run (default: all)")
    p.add_argument("--list", action="store_true", help="list the examples and exit")
    progress_options(p)
    p.set_defaults(func=cmd_examples)

    p = sub.add_parser("run", help="run a workflow",
                       description="Run the workflow TARGET (path/to/file.py:name or "
                                   "package.module:name) and print its result.")
    p.add_argument("target", metavar="TARGET")
    p.add_argument("-i", "--input", action="append", metavar="KEY=VALUE",
                   help="a run input; VALUE is parsed as JSON when it parses, else kept as "
                        "a string (repeatable)")
    p.add_argument("--inputs-json", metavar="FILE",
                   help="run inputs from a JSON object in FILE ('-' reads stdin); -i wins")
    p.add_argument("--store", metavar="PATH", help="a durable SQLite store (created if "
                                                   "missing): the run can be resumed")
    p.add_argument("--run-id", metavar="ID", help="the run's id; with --store, an id the "
                                                  "store knows resumes that run")
    p.add_argument("--max-concurrency", type=_positive_int, metavar="N",
                   help="at most N nodes running at once")
    p.add_argument("--timeout", type=_positive_float, metavar="S",
                   help="cancel the run after S seconds (it then ends cancelled, exit 1)")
    p.add_argument("--json", action="store_true",
                   help="print the result as JSON on stdout (no progress)")
    p.add_argument("--traceback", action="store_true",
                   help="print the traceback of each failed node")
    progress_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("graph", help="print a workflow's graph (Mermaid or DOT)",
                       description="Print the graph of workflow TARGET.")
    p.add_argument("target", metavar="TARGET")
    p.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("runs", help="list the runs of a store",
                       description="List the runs kept in a durable store.")
    p.add_argument("--store", metavar="PATH", required=True)
    p.add_argument("--workflow", help="only runs of this workflow")
    p.add_argument("--status", choices=["running", "succeeded", "failed", "cancelled"],
                   help="only runs with this status")
    p.add_argument("--last", type=_positive_int, metavar="N", help="only the N latest runs")
    p.add_argument("--json", action="store_true", help="print the runs as JSON")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("show", help="show one stored run, node by node",
                       description="Show a stored run: per node its status, attempts, "
                                   "duration and error.")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--store", metavar="PATH", required=True)
    p.add_argument("--json", action="store_true", help="print the run as JSON")
    p.add_argument("--traceback", action="store_true",
                   help="print the stored traceback of each failed node")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("report", help="write a stored run as a self-contained HTML page",
                       description="Write the HTML report of a stored run: the graph "
                                   "coloured by status, a timeline and the node table.")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--store", metavar="PATH", required=True)
    p.add_argument("-o", "--output", metavar="FILE.html",
                   help="where to write it (default: RUN_ID.html)")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    global PROG
    PROG = _prog()
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except (UsageError, StoreError) as error:  # a damaged store is a bad input too
        err(f"error: {error}")
        return EXIT_USAGE
    except KeyboardInterrupt:  # before the run's own handler was installed, or after
        err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (| head): not our error
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_FAILED
