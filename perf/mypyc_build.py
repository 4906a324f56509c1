"""Build flowrt with some of its modules compiled by mypyc, beside the pure-Python package.

The evaluation of issue 18's last item (docs/decisions/028-mypyc-compiled-engine.md):
this script makes the compiled build that the record measures, so that a later engineer
can repeat the measurement. flowrt does not ship it: the pure-Python package is the
only one installed, tested and supported.

What it does:

1. copies the repository's tracked files (the package, its tests, examples and docs) to
   ``OUT/src/``, and makes the edits in ``PATCHES`` there (``--no-patch``: none);
2. compiles the chosen modules there with mypyc (``mypyc.build.mypycify``, through
   setuptools' ``build_ext --inplace``; ``--compiler cython``: Cython 3 in pure-Python
   mode instead): each compiled module's ``.py`` stays beside a ``.so`` that Python
   imports first; the other modules stay interpreted;
3. prints the build's wall and CPU time and the size of what it made; with ``--wheel``
   also builds the wheel a ``pip install`` would (``pip wheel``, no build isolation: the
   venv's mypy and setuptools) and prints its size beside the pure-Python wheel's.

Use the build from ``OUT/src`` (``python -m`` and ``python -c`` put the current
directory first on the path; the tests find the repository from their own path, so the
copy's tests, subprocesses included, import the compiled modules)::

    python perf/mypyc_build.py --modules engine,build,data     # -> build/mypyc/src
    cd build/mypyc/src && python -c 'import flowrt._engine.supervisor as s; print(s.__file__)'
    cd build/mypyc/src && python -m pytest -q -p no:cacheprovider
    python perf/mypyc_compare.py --build build/mypyc/src       # CPU time against pure

``--modules`` takes module paths under ``flowrt/`` (``_engine/supervisor.py``) or the
names of the sets below, comma-separated. Needs ``mypy`` (which ships mypyc) or
``cython``, setuptools and a C compiler; ``--wheel`` needs ``wheel`` too with
setuptools < 70.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: named sets of modules (paths under flowrt/). Left out, because compiled they break:
#: workflow/_plan.py (a native class has no __dict__, so functools.cached_property computes
#: Plan.indegree, read once per settle, on every read: a 10,000-node run 32x slower);
#: data/_interner.py (``__call__ = intern`` in the class body: importing it raises
#: KeyError 'intern'); data/_workflow_data.py (mypyc refuses ``cls = ...`` in __new__).
SETS = {
    # the run's hot path: the runner loop, succeed, settle; the node call; the limits;
    # and the maps, whose item supervisor subclasses the Supervisor (an interpreted class
    # cannot subclass a compiled one)
    "engine": ["_engine/supervisor.py", "_engine/invoke.py", "_engine/limits.py",
               "_engine/state.py", "_engine/mapping.py"],
    # building a workflow: Workflow.add, signatures, options
    "build": ["workflow/_workflow.py", "workflow/_signature.py", "workflow/_options.py"],
    # the status board (the data store is left out: see above)
    "data": ["data/_status_board.py"],
}


def modules_of(spec: str) -> list[str]:
    """The module paths named by ``spec`` (set names and paths, comma-separated)."""
    out: list[str] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        for path in SETS.get(part, [part]):
            if not (REPO / "flowrt" / path).is_file():
                sys.exit(f"no module flowrt/{path} (sets: {', '.join(SETS)})")
            if path not in out:
                out.append(path)
    return out


def copy_tree(src: Path) -> None:
    """The repository's files (tracked, as the work tree has them): the package, its
    tests and examples, so that the tests run against the copy (they find the
    repository from their own path)."""
    if src.exists():
        shutil.rmtree(src)
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)


#: Edits made to the copy before compiling (``--no-patch`` skips them), each measured in
#: docs/decisions/028-mypyc-compiled-engine.md: mypyc reads a module-level name from the
#: module's dict at every use unless it is ``Final`` (then it is a C static), where
#: CPython caches the lookup; the supervisor's status constants are read per edge.
#: And mypyc boxes a native int anew for ``is``: Workflow.add's duplicate test compares
#: the id it inserted by identity, which a compiled module sees fail past 256 nodes.
PATCHES = [
    ("_engine/supervisor.py", r"(?m)^([A-Z]+) = (Status\.[A-Z]+\.value)$", r"\1: Final = \2"),
    ("workflow/_workflow.py", r"index\.setdefault\(name, i\) is not i:",
     "index.setdefault(name, i) != i:"),
    # A native attribute checks its declared type on every assignment: _Chain.state is
    # declared _ItemState through a cast of None (it is set later); compiled, every map
    # failed with "TypeError: _ItemState object expected; got None".
    ("_engine/mapping.py", r'self\.state = cast\("_ItemState", state\)',
     "self.state: Any = state"),
]


def patch(src: Path, modules: list[str]) -> int:
    """Apply PATCHES to the compiled modules of the copy; how many lines changed."""
    changed = 0
    for module, pattern, repl in PATCHES:
        if module not in modules:
            continue
        path = src / "flowrt" / module
        text, k = re.subn(pattern, repl, path.read_text())
        if not k:
            sys.exit(f"patch {pattern!r} matches nothing in flowrt/{module}: update PATCHES")
        path.write_text(text)
        changed += k
    return changed


def write_setup(src: Path, modules: list[str], opt_level: str, compiler: str) -> None:
    paths = [f"flowrt/{m}" for m in modules]
    if compiler == "cython":  # Cython 3 in pure-Python mode: the .py files as they are
        ext = (f"cythonize({paths!r}, compiler_directives={{'language_level': 3}})\n"
               f"for e in ext_modules:\n    e.extra_compile_args.append('-O{opt_level}')")
        head = "from Cython.Build import cythonize"
    else:
        ext = f"mypycify({paths!r}, opt_level={opt_level!r})"
        head = "from mypyc.build import mypycify"
    (src / "setup.py").write_text(
        f"# Written by perf/mypyc_build.py: flowrt with {len(paths)} modules compiled by "
        f"{compiler}.\n{head}\nfrom setuptools import setup\n\next_modules = {ext}\n"
        "setup(ext_modules=ext_modules)\n")


def timed(cmd: list[str], cwd: Path, log: Path) -> tuple[float, float, int]:
    """Run ``cmd``; its wall time, its CPU time (children included) and exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with log.open("w") as out:
        rc = subprocess.call(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, rc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", default="engine",
                        help=f"sets ({', '.join(SETS)}) or paths under flowrt/, comma-separated")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "mypyc")
    parser.add_argument("--opt-level", default="3", help="mypyc's (and the C compiler's) -O")
    parser.add_argument("--compiler", choices=("mypyc", "cython"), default="mypyc",
                        help="cython: Cython 3 in pure-Python mode, for comparison")
    parser.add_argument("--no-patch", action="store_true",
                        help="compile the modules exactly as they are (no PATCHES)")
    parser.add_argument("--wheel", action="store_true",
                        help="also build both wheels (compiled and pure) and compare sizes")
    args = parser.parse_args()
    modules = modules_of(args.modules)
    out = args.out.resolve()
    src = out / "src"
    out.mkdir(parents=True, exist_ok=True)
    copy_tree(src)
    changed = 0 if args.no_patch else patch(src, modules)
    write_setup(src, modules, args.opt_level, args.compiler)
    print(f"load {os.getloadavg()[0]:.2f}; {args.compiler}: compiling {len(modules)} modules: "
          + ", ".join(modules) + f"; {changed} lines patched")
    wall, cpu, rc = timed([sys.executable, "setup.py", "build_ext", "--inplace"], src,
                          out / "build_ext.log")
    if rc:
        sys.exit(f"{args.compiler} build failed (exit {rc}); see {out / 'build_ext.log'}")
    libs = sorted(p for p in src.rglob("*.so") if "build" not in p.relative_to(src).parts)
    size = sum(p.stat().st_size for p in libs)
    print(f"build_ext --inplace: wall {wall:.1f} s, CPU {cpu:.1f} s; {len(libs)} .so files, "
          f"{size / 1e6:.2f} MB (log: {out / 'build_ext.log'})")
    for p in libs:
        print(f"  {p.relative_to(src)}  {p.stat().st_size / 1e3:.0f} kB")
    if args.wheel:
        dist = out / "dist"
        shutil.rmtree(dist, ignore_errors=True)
        for label, project in (("compiled", src), ("pure", REPO)):
            pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                   "--no-build-isolation", "-w", str(dist / label), str(project)]
            wall, cpu, rc = timed(pip, out, out / f"wheel_{label}.log")
            if rc:
                sys.exit(f"pip wheel ({label}) failed (exit {rc}); see {out}/wheel_{label}.log")
            wheel = next((dist / label).glob("*.whl"))
            print(f"{label} wheel: {wheel.name}, {wheel.stat().st_size / 1e3:.0f} kB; "
                  f"pip wheel wall {wall:.1f} s, CPU {cpu:.1f} s")
    print(f"use it: cd {src} && PYTHONPATH={src} python ...")


if __name__ == "__main__":
    main()
