"""The docs' examples are run, and what they print is compared with what the page shows.

The convention, for every ``docs/*.md`` and ``README.md`` (docs/guide.md, "About these
docs", says the same for writers):

- **An example with output** is a fenced ``python`` block followed, with nothing but
  blank lines between, by a fenced ``text`` block. The Python block runs as a script
  (``python example.py``, so its ``if __name__ == "__main__":`` part runs too) in a
  subprocess, in a new empty directory, and its stdout must match the text block.
- **A shell transcript** is a fenced ``text`` block whose first line starts with ``$ ``.
  Each ``$ command`` runs in ``bash`` and is followed by what it prints (stdout and stderr
  together, as on a terminal). The transcripts of a page run in order, in one directory
  of the page's own, where every ``python`` block whose first line names a file
  (``# flows.py``) has been written under that name first. ``python`` is this
  interpreter; ``$?`` is the status of the command before.
- Any other block (a ``python`` block without output, ``sh`` commands, diagrams) is not
  run; every ``python`` block must still compile.
- A block that shows output but cannot be run here (a Ctrl-C at a terminal) is preceded
  by ``<!-- not run: the reason -->``; this file lists the reasons it accepts, so that
  the exceptions stay few and visible.

Comparing, the output and the block are normalised by these rules, and only these:

1. trailing spaces and trailing blank lines are dropped, and any run of spaces counts
   as one (a table's columns move when a duration gets a digit longer);
2. a duration such as ``0.062s`` reads ``<t>s``; a date and time such as
   ``2026-11-26 19:53:38`` reads ``<time>``; a 12-hex-digit run id such as
   ``27aa4363c165`` reads ``<id>`` (the CLI makes them up);
3. ``...`` in the block matches any text, across lines too (as doctest's ELLIPSIS).
"""

from __future__ import annotations

import difflib
import itertools
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
TIMEOUT = 180.0  # seconds for one example or one command (the Dask ones start a cluster)

#: the only reasons a block showing output may give for not being run
NOT_RUN_REASONS = frozenset({"Ctrl-C at a terminal"})

FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>\S*)\s*$")
FILE_HEADER = re.compile(r"^#\s*(?P<name>[\w.-]+\.py)\b")
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(?P<reason>.*?)\s*-->$")


@attrs.frozen
class Block:
    page: Path
    line: int  # the line of the opening fence, from 1
    lang: str
    text: str
    #: the non-blank lines between the previous block and this one
    before: tuple[str, ...]

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def file_name(self) -> str | None:
        """The file a ``python`` block says it is (``# flows.py``), or None."""
        first = self.text.split("\n", 1)[0]
        m = FILE_HEADER.match(first)
        return m["name"] if m and self.lang == "python" else None

    @property
    def is_transcript(self) -> bool:
        return self.lang == "text" and self.text.startswith("$ ")

    @property
    def not_run(self) -> str | None:
        """The reason given in ``<!-- not run: ... -->`` right above the block."""
        m = NOT_RUN.match(self.before[-1].strip()) if self.before else None
        return m["reason"] if m else None


def blocks(page: Path) -> list[Block]:
    """Every fenced block of a Markdown page, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    before: list[str] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            if lines[i].strip():
                before.append(lines[i])
            i += 1
            continue
        indent = len(m["indent"])
        j = i + 1
        while not re.match(r"^\s*```\s*$", lines[j]):
            j += 1
        body = "\n".join(line[indent:] for line in lines[i + 1 : j])
        found.append(Block(page, i + 1, m["lang"], body, tuple(before)))
        before = []
        i = j + 1
    return found


def examples() -> Iterator[tuple[Block, Block]]:
    """Every (python block, text block of its output) pair of every page."""
    for page in PAGES:
        found = blocks(page)
        for code, out in itertools.pairwise(found):
            if (code.lang == "python" and out.lang == "text" and not out.before
                    and not out.is_transcript and out.not_run is None):
                yield code, out


def transcript_pages() -> list[Path]:
    return [p for p in PAGES if any(b.is_transcript and b.not_run is None for b in blocks(p))]


# -- comparing -----------------------------------------------------------------------------

_RULES = [
    (re.compile(r"\b\d+\.\d+s\b"), "<t>s"),
    (re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\b"), "<time>"),
    (re.compile(r"\b[0-9a-f]{12}\b"), "<id>"),
    (re.compile(r"[ \t]+"), " "),
]


def normalise(text: str) -> str:
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return "\n".join(line.rstrip() for line in text.splitlines()).rstrip("\n").lstrip("\n")


def matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` output is what the ``expected`` block shows (the rules above)."""
    expected, actual = normalise(expected), normalise(actual)
    if "..." not in expected:
        return expected == actual
    pattern = ".*?".join(map(re.escape, expected.split("...")))
    return re.fullmatch(pattern, actual, re.DOTALL) is not None


def explain(where: str, expected: str, actual: str, stderr: str = "") -> str:
    diff = "\n".join(difflib.unified_diff(
        expected.splitlines(), actual.splitlines(), "shown in the docs", "printed", lineterm=""))
    return (f"{where}: the output differs from what the page shows\n{diff}"
            + (f"\n--- stderr ---\n{stderr}" if stderr else ""))


def environment() -> dict[str, str]:
    env = dict(os.environ)
    # 'python' in a transcript is this interpreter; output comes as it is written.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env["COLUMNS"] = "200"
    env.pop("PYTHONWARNINGS", None)
    return env


# -- the tests -----------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "out"), list(examples()), ids=lambda b: b.where)
def test_example_prints_what_the_page_shows(code: Block, out: Block) -> None:
    with tempfile.TemporaryDirectory(prefix="flowrt-docs-") as work:
        script = Path(work, code.file_name or "example.py")
        script.write_text(code.text + "\n", encoding="utf-8")
        proc = subprocess.run([sys.executable, script.name], cwd=work, env=environment(),
                              capture_output=True, text=True, timeout=TIMEOUT)
    if proc.returncode != 0:
        pytest.fail(f"{code.where} exited {proc.returncode}:\n{proc.stderr}", pytrace=False)
    if not matches(out.text, proc.stdout):
        pytest.fail(explain(code.where, out.text, proc.stdout, proc.stderr), pytrace=False)


@pytest.mark.parametrize("page", transcript_pages(), ids=lambda p: p.name)
def test_transcripts_print_what_the_page_shows(page: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="flowrt-docs-") as work:
        status = 0
        for block in blocks(page):
            if block.file_name:
                Path(work, block.file_name).write_text(block.text + "\n", encoding="utf-8")
            if not block.is_transcript or block.not_run is not None:
                continue
            for line, command, expected in commands(block):
                proc = subprocess.run(["bash", "-c", f"(exit {status}); {command}"], cwd=work,
                                      env=environment(), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)
                status = proc.returncode
                where = f"{block.where} (line {line}: $ {command})"
                if not matches(expected, proc.stdout):
                    pytest.fail(explain(where, expected, proc.stdout), pytrace=False)


def commands(block: Block) -> Iterator[tuple[int, str, str]]:
    """``(line, command, expected output)`` for each ``$ command`` of a transcript."""
    lines = block.text.split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith("$ ")]
    for k, i in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        yield block.line + 1 + i, lines[i][2:], "\n".join(lines[i + 1 : end])


def test_blocks_not_run_say_why_in_few_words() -> None:
    for page in PAGES:
        for block in blocks(page):
            if block.not_run is not None:
                assert block.not_run in NOT_RUN_REASONS, (
                    f"{block.where}: '<!-- not run: {block.not_run} -->' is not one of the "
                    f"accepted reasons {sorted(NOT_RUN_REASONS)}")


def test_every_python_block_compiles() -> None:
    for page in PAGES:
        for block in blocks(page):
            if block.lang == "python":
                compile(block.text, block.where, "exec")


def test_the_docs_have_examples_to_check() -> None:
    # A guard against a parser change that silently finds nothing to run.
    pairs = list(examples())
    assert len(pairs) >= 50
    assert {code.page.name for code, _ in pairs} >= {
        "guide.md", "defining-workflows.md", "running.md", "failures.md", "limits.md",
        "embedding.md", "workflow-data.md", "durable.md", "executors.md", "README.md"}
    assert {p.name for p in transcript_pages()} >= {"cli.md", "durable.md",
                                                    "getting-started.md"}


@pytest.mark.parametrize(("expected", "actual", "same"), [
    ("a  b\n", "a b", True),
    ("took 0.062s", "took 10.125s", True),
    ("[orders 27aa4363c165] started", "[orders 0123456789ab] started", True),
    ("at 2026-11-26 19:53:38", "at 2024-01-02 03:04:05", True),
    ("seconds=...", "seconds=0.0012", True),
    ("first\n...\nlast", "first\nsecond\nthird\nlast", True),
    ("a 1", "a 2", False),
    ("a\nb", "b\na", False),
    ("seconds=...!", "seconds=3", False),
])
def test_the_normalisation_rules(expected: str, actual: str, same: bool) -> None:
    assert matches(expected, actual) is same


# -- facts the docs state about the code -------------------------------------------------

TABLE_LINE = re.compile(r"^\s*(?P<table>\w+)\((?P<columns>[^)]*)\)")


def documented_tables(text: str) -> dict[str, tuple[str, ...]]:
    """``table(col, col, ...)`` lines of a fenced block (a line may go on on the next)."""
    tables: dict[str, tuple[str, ...]] = {}
    joined = re.sub(r",\s*\n\s*", ", ", text)
    for line in joined.split("\n"):
        m = TABLE_LINE.match(line)
        if m:
            tables[m["table"]] = tuple(c.strip() for c in m["columns"].split(","))
    return tables


def test_durable_md_states_the_sqlite_schema_this_flowrt_writes() -> None:
    """docs/durable.md says which schema_version a store file has and its tables; they
    were stale for four versions once (the page said 2 when the code wrote 6)."""
    from flowrt.durable import _sqlite

    page = (ROOT / "docs" / "durable.md").read_text(encoding="utf-8")
    section = page[page.index("**Schema and versions.**"):]
    section = section[: section.index("\n- **")]  # up to the next bullet
    stated = re.search(r"This version of flowrt writes schema version (\d+)", section)
    assert stated is not None, "docs/durable.md no longer says which version it writes"
    assert int(stated[1]) == _sqlite.SCHEMA_VERSION
    history = [int(v) for v in re.findall(r"^\s*\| (\d+) \|", section, re.M)]
    assert history == list(range(1, _sqlite.SCHEMA_VERSION + 1)), (
        "the table of schema versions in docs/durable.md misses a version")
    block = section[section.index("```") + 3:]
    block = block[: block.index("```")]
    assert documented_tables(block) == _sqlite._COLUMNS[_sqlite.SCHEMA_VERSION]


def test_decision_016_states_the_postgres_schema_version() -> None:
    from flowrt.durable import _postgres

    page = (ROOT / "docs" / "decisions" / "016-postgres.md").read_text(encoding="utf-8")
    stated = re.findall(r"schema_version = (\d+)|`meta\.schema_version` \((\d+)", page)
    assert len(stated) == 2
    assert {int(a or b) for a, b in stated} == {_postgres.SCHEMA_VERSION}
