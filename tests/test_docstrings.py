"""Docstrings: the public API documents its arguments and errors, and its examples run.

- Every public callable -- what ``flowrt`` and its public modules export, with the
  public methods and properties of the classes among it -- has a docstring that names
  each of its parameters and each exception it raises itself (a ``raise X(...)`` in its
  own body). Fields of value classes (attrs classes, named tuples) are named in the
  class docstring or documented by a ``#:`` comment. A method that implements a
  protocol method (``MemoryStore.load`` for ``Store.load``) may rely on the protocol's
  docstring.
- Every ``>>>`` example in a docstring of a ``flowrt`` module runs, as pytest's
  ``--doctest-modules`` would run it, in an empty temporary directory
  (:func:`test_docstring_examples_run`).
"""

from __future__ import annotations

import ast
import doctest
import enum
import importlib
import inspect
import pkgutil
import re
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import flowrt

#: the modules users import names from
PUBLIC_MODULES = ["flowrt", "flowrt.workflow", "flowrt.data", "flowrt.executors",
                  "flowrt.durable", "flowrt.runtime", "flowrt.tools.report",
                  "flowrt.tools.viz", "flowrt.tools.ui"]

#: callables that need not document every parameter, and why
EXEMPT = {
    "RunResult.__init__": "built by the runtime from a run's arrays, never by users",
    "Plan.__init__": "built by Workflow.compile(), never by users",
    # Replaced by claim / write(claim) / finish(claim) / renew on the stores branch (issue 11,
    # item 6: fencing tokens); to be documented with that protocol.
    "Store.begin": "being replaced", "Store.write": "being replaced",
    "Store.finish": "being replaced",
    "MemoryStore.begin": "being replaced", "MemoryStore.write": "being replaced",
    "MemoryStore.finish": "being replaced",
    "SQLiteStore.begin": "being replaced", "SQLiteStore.write": "being replaced",
    "SQLiteStore.finish": "being replaced",
}

#: whole classes whose docstrings another branch is rewriting (none now)
PENDING: set[str] = set()

#: protocol -> the classes that implement it (their methods share its docstrings)
IMPLEMENTS = {
    "Store": ("MemoryStore", "SQLiteStore", "PostgresStore"),
    "Serializer": ("JSONSerializer", "PickleSerializer"),
    "Executor": ("ThreadExecutor", "ProcessExecutor", "DaskExecutor"),
    "RemoteExecutor": ("DaskExecutor",),
}


def public_objects() -> Iterator[tuple[str, Any]]:
    seen: set[int] = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            if name.startswith("__"):
                continue
            obj = getattr(module, name)
            if id(obj) not in seen:
                seen.add(id(obj))
                yield name, obj


def raised_by(fn: Callable[..., Any]) -> set[str]:
    """Exception classes that ``fn`` raises in its own body."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return set()
    top = tree.body[0]
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
            if node is top:  # not the functions nested in it
                self.generic_visit(node)

        visit_AsyncFunctionDef = visit_FunctionDef

        def visit_Lambda(self, node: ast.Lambda) -> None:
            pass

        def visit_Raise(self, node: ast.Raise) -> None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = (exc.id if isinstance(exc, ast.Name)
                    else exc.attr if isinstance(exc, ast.Attribute) else "")
            if name[:1].isupper():  # a class, not 'raise error'
                found.add(name)

    Visitor().visit(tree)
    return found


def undocumented(where: str, fn: Callable[..., Any], doc: str | None) -> list[str]:
    if not doc:
        return [f"{where}: no docstring"]
    problems = []
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = []
    for name in params:
        if name not in ("self", "cls") and not re.search(rf"\b{re.escape(name)}\b", doc):
            problems.append(f"{where}: parameter {name!r} is not in the docstring")
    for exc in sorted(raised_by(fn)):
        if exc not in doc:
            problems.append(f"{where}: raises {exc}, which the docstring does not say")
    return problems


def field_documented(cls: type, name: str) -> bool:
    if re.search(rf"\b{re.escape(name)}\b", cls.__doc__ or ""):
        return True
    lines = inspect.getsource(cls).splitlines()
    for i, line in enumerate(lines):
        if re.match(rf"\s*{re.escape(name)}\s*:", line):
            return "#:" in line or (i > 0 and lines[i - 1].strip().startswith("#:"))
    return False


def protocol_doc(cls: type, method: str) -> str | None:
    """The docstring of ``method`` in the protocol ``cls`` implements, if any."""
    import flowrt.durable
    import flowrt.executors

    for protocol, classes in IMPLEMENTS.items():
        if cls.__name__ in classes:
            home = flowrt.durable if protocol != "Executor" else flowrt.executors
            doc = getattr(getattr(home, protocol), method, None).__doc__ if hasattr(
                getattr(home, protocol), method) else None
            if doc:
                return str(doc)
    return None


def class_problems(name: str, cls: type) -> list[str]:
    problems = [] if cls.__doc__ else [f"{name}: no docstring"]
    if issubclass(cls, BaseException | enum.Enum):
        return problems
    fields = getattr(cls, "__attrs_attrs__", None) or [
        type("F", (), {"name": f, "init": True}) for f in getattr(cls, "_fields", ())]
    if fields:
        problems += [f"{name}: field {f.name!r} is documented nowhere"
                     for f in fields if f.init and not field_documented(cls, f.name)]
    else:
        init = cls.__dict__.get("__init__")
        if (init is not None and inspect.isfunction(init) and f"{name}.__init__" not in EXEMPT
                and not getattr(cls, "_is_protocol", False)):
            problems += undocumented(f"{name}.__init__", init,
                                     (cls.__doc__ or "") + (init.__doc__ or ""))
    for klass in cls.__mro__:
        if not klass.__module__.startswith("flowrt"):
            continue
        for attr, value in vars(klass).items():
            where = f"{name}.{attr}"
            if attr.startswith("_") or where in EXEMPT:
                continue
            if isinstance(value, property):
                if not value.__doc__:
                    problems.append(f"{where}: no docstring")
                continue
            fn = value.__func__ if isinstance(value, classmethod | staticmethod) else value
            if inspect.isfunction(fn):
                doc = fn.__doc__ or protocol_doc(cls, attr)
                problems += undocumented(where, fn, doc)
    return problems


def test_public_callables_document_their_arguments_and_errors() -> None:
    problems: list[str] = []
    for name, obj in public_objects():
        if name in PENDING:
            continue
        if inspect.isclass(obj):
            problems += class_problems(name, obj)
        elif callable(obj):
            problems += undocumented(name, obj, inspect.getdoc(obj))
    assert not problems, "\n".join(sorted(set(problems)))


# -- the examples in docstrings ------------------------------------------------------------


def flowrt_modules() -> list[str]:
    names = ["flowrt"]
    for info in pkgutil.walk_packages(flowrt.__path__, "flowrt."):
        if info.name not in ("flowrt.__main__",) and not info.name.startswith(
                "flowrt.examples"):
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("module_name", flowrt_modules())
def test_docstring_examples_run(module_name: str, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, module_name):
        if test.examples and (test.filename or "").startswith(str(Path(flowrt.__file__).parent)):
            runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} docstring example(s) of {module_name} failed"


def test_the_docstrings_have_examples() -> None:
    # A guard against a finder change that silently finds nothing to run.
    finder = doctest.DocTestFinder(exclude_empty=True)
    examples = sum(len(t.examples) for name in flowrt_modules()
                   for t in finder.find(importlib.import_module(name), name))
    assert examples >= 20
