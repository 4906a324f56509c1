"""What every command shares: exit codes, errors, the workflow a TARGET names, run
inputs from the command line, opening a store, tables and JSON on stdout, argument types.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import os
import shlex
import sys
import traceback
import types
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from ..._engine.result import jsonable
from ...durable import PostgresStore, SQLiteStore, Store, StoredRun
from ...durable._open import POSTGRES_SCHEMES
from ...errors import GraphError, StoreError
from ...workflow import Plan, Workflow
from .._format import error_text, for_terminal

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "UsageError",
           "compile_or_fail", "echo", "err", "format_table", "load_run", "load_workflow",
           "nonempty", "open_store", "parse_inputs", "parse_value", "positive_float",
           "positive_int", "print_json", "prog", "resume_command", "split_target"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad input from the command line: printed as a message, exit status 2."""


def prog() -> str:
    """How the user called us: ``python -m flowrt`` or ``flowrt`` (for messages)."""
    base = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "python -m flowrt" if base in ("__main__.py", "-m", "", "-c") else "flowrt"


def err(message: str) -> None:
    """A message for the user on stderr, prefixed with the program's name (control
    characters made visible: messages quote stores and user code)."""
    print(for_terminal(f"{prog()}: {message}"), file=sys.stderr, flush=True)


def resume_command(target: str, store: str, run_id: str) -> str:
    """The command that resumes run ``run_id`` of ``target`` (arguments quoted for a
    POSIX shell when they need it)."""
    return (f"{prog()} run {shlex.quote(target)} --store {shlex.quote(store)} "
            f"--run-id {shlex.quote(run_id)}")


def echo(text: str = "") -> None:
    """A line for people on stdout. What the tools print comes from stores, node names
    and exceptions: control characters are made visible (``\\x1b``), never sent to the
    terminal as escape sequences."""
    print(for_terminal(text))


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


def compile_or_fail(wf: Workflow) -> Plan:
    """``wf.compile()``; UsageError naming the culprit when the workflow is invalid."""
    try:
        return wf.compile()
    except (GraphError, TypeError) as error:
        raise UsageError(f"workflow {wf.name!r} is invalid: {error}") from None


# -- inputs --------------------------------------------------------------------------------


def parse_value(raw: str) -> Any:
    """JSON when it parses (``3``, ``true``, ``[1,2]``, ``"x"``), else the string."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return raw


def parse_inputs(pairs: Sequence[str], json_file: str | None) -> dict[str, Any]:
    """Run inputs from ``--inputs-json FILE`` (``-`` reads stdin), then ``-i KEY=VALUE``."""
    inputs: dict[str, Any] = {}
    if json_file is not None:
        try:
            text = sys.stdin.read() if json_file == "-" else Path(json_file).read_text("utf-8")
        except OSError as error:
            raise UsageError(f"--inputs-json: cannot read {json_file}: "
                             f"{error.strerror or error}") from None
        except UnicodeDecodeError as error:
            raise UsageError(f"--inputs-json: {json_file} is not UTF-8 text: {error}") from None
        try:
            loaded = json.loads(text)
        except (ValueError, RecursionError) as error:
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


def open_store(path_text: str, *, must_exist: bool) -> Store:
    """The store ``--store`` names: an SQLiteStore at a path, a PostgresStore for a
    ``postgresql://`` URL; UsageError when it is none (the file untouched)."""
    if not path_text.strip():
        raise UsageError("--store takes the path of a store file, got an empty string")
    if path_text.startswith(POSTGRES_SCHEMES):
        try:
            return PostgresStore(path_text)
        except (StoreError, ValueError, ImportError) as error:
            raise UsageError(str(error)) from None
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


def load_run(store: Store, run_id: str, store_path: str) -> StoredRun:
    """The stored run ``run_id``; UsageError naming the latest ones when there is none."""
    stored = store.load(run_id)
    if stored is None:
        ids = [r.run_id for r in store.runs()][-5:]
        hint = (f"; the latest: {', '.join(ids)}" if ids else "; the store has no runs")
        raise UsageError(f"no run {run_id!r} in {store_path}{hint}")
    return stored


# -- output helpers ------------------------------------------------------------------------


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
                 right: Iterable[int] = ()) -> str:
    """Rows as aligned plain-text columns (columns in ``right`` aligned right)."""
    text_rows = [[for_terminal(str(c)) for c in row] for row in rows]
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


def print_json(data: Any, out: IO[str] | None = None) -> None:
    """``data`` as indented JSON on stdout (``data`` is JSON-ready: see ``jsonable``).

    Text is written as it is when the stream is UTF-8, escaped to ASCII otherwise; a
    lone surrogate (a file name decoded with ``surrogateescape``) becomes the JSON
    escape ``\\udcXX``, which any JSON reader reads back as the same string.
    """
    out = out or sys.stdout
    data = jsonable(data)  # a damaged store may hold anything
    encoding = (getattr(out, "encoding", None) or "utf-8").lower().replace("-", "")
    if encoding in ("utf8", "utf_8"):
        text = json.dumps(data, indent=2, ensure_ascii=False)
        if not text.isascii():
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    else:
        text = json.dumps(data, indent=2)
    out.write(text + "\n")
    out.flush()


# -- argument types ------------------------------------------------------------------------


def nonempty(text: str) -> str:
    """An argument that must not be empty (``--store ''`` is a mistake, not "none")."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a value, got an empty string")
    return text


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}")
    return value
