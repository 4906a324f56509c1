"""Old import paths, kept working with a DeprecationWarning.

Before 0.2 flowrt was one flat package (``flowrt.graph``, ``flowrt.store``,
``flowrt.report``...). Those modules now live in the layers of decision 008; importing
an old path gives the module that holds its public names today, once, with a warning
that names the new path. Removed in 0.4.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Any

__all__ = ["MOVED_MODULES", "MOVED_NAMES", "install"]

#: old module -> the module that has its public names now
MOVED_MODULES = {
    "flowrt.cli": "flowrt.tools.cli",
    "flowrt.report": "flowrt.tools.report",
    "flowrt.viz": "flowrt.tools.viz",
    "flowrt.dask": "flowrt.executors",
    "flowrt.store": "flowrt.durable",
    "flowrt.sqlite_store": "flowrt.durable",
    "flowrt.serialize": "flowrt.durable",
    "flowrt.graph": "flowrt.workflow",
    "flowrt.plan": "flowrt.workflow",
    "flowrt.context": "flowrt.workflow",
    "flowrt.intern": "flowrt.data",
    "flowrt.status": "flowrt",
    "flowrt.trigger": "flowrt",
    "flowrt.retry": "flowrt",
    "flowrt.result": "flowrt",
    "flowrt.events": "flowrt",
}

#: top-level names that were public by accident -> their module now
MOVED_NAMES = {
    "Plan": "flowrt.workflow",
    "NodeSpec": "flowrt.workflow",
    "NodeOptions": "flowrt.workflow",
    "StatusBoard": "flowrt.data",
}


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Sequence[str] | None, target: Any = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED_MODULES[spec.name]
        warnings.warn(f"{spec.name} is deprecated: import from {new} instead "
                      "(the old path goes away in flowrt 0.4)", DeprecationWarning,
                      stacklevel=_caller_level())
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        pass  # the module is the new one, already executed


def _caller_level() -> int:
    # Point the warning at the importing line: skip importlib's own frames.
    frame, level = sys._getframe(1), 1
    while frame is not None and (frame.f_code.co_filename.startswith("<frozen")
                                 or frame.f_code.co_filename == __file__):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level


def install() -> None:
    """Make the old module paths importable (done once, by ``import flowrt``)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())


def moved_name(name: str) -> Any:
    """A top-level name that moved: the object, with a DeprecationWarning."""
    home = MOVED_NAMES[name]
    warnings.warn(f"flowrt.{name} is deprecated: use {home}.{name} "
                  "(the old name goes away in flowrt 0.4)", DeprecationWarning, stacklevel=3)
    return getattr(importlib.import_module(home), name)
