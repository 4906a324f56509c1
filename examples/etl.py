"""ETL: CSV files in, an SQLite warehouse and a report out.

    discover -> extract (mapped: once per file found) -> validate (merges them)
        -> transform || enrich -> aggregate -> load (SQLite) -> report

The example first writes a day's worth of point-of-sale exports: four CSV files of
sales (about 20,000 rows, a few of them broken: a negative quantity, a date that does not
exist, an unknown product, a missing field), a product catalogue and a list of stores.
The workflow discovers the sales files in the folder, reads them in parallel (a mapped
node: one item per file, however many there are), merges them and rejects the broken
rows (and says why),
computes revenue (transform) while it looks up categories, regions and costs (enrich),
sums everything per day, region and category, loads facts and totals into an SQLite
database in one transaction, and writes a Markdown report from SQL queries.

Every step is a plain (sync) function: flowrt runs it in a worker thread, so the event
loop stays free, and independent steps (the files' extracts; transform and enrich) run
at the same time.

Run it: ``python examples/etl.py`` (or ``python -m flowrt examples etl``).
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import sqlite3
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

import flowrt

PARTS = ("north", "south", "east", "west")

wf = flowrt.Workflow("etl")


# -- the steps ----------------------------------------------------------------------------


@wf.node
def discover(source: str) -> list[str]:
    """The sales files of the day, however many the tills exported."""
    return [str(p) for p in sorted(Path(source).glob("sales-*.csv"))]


@wf.map(path="discover", concurrency=4, retries=1)
def extract(path: str) -> list[dict[str, Any]]:
    """Read one sales file (called once per file ``discover`` found)."""
    file = Path(path)
    with file.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        row["_where"] = f"{file.name}:{line}"
    return rows


def validate(extract: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Merge the files' rows; parse and check every row, keep the good ones, say why the
    others are rejected."""
    good: list[dict[str, Any]] = []
    rejected: list[dict[str, str]] = []
    seen: set[str] = set()
    for rows in extract:
        for row in rows:
            problem = None
            if any(not (row.get(k) or "").strip() for k in
                   ("sale_id", "day", "store", "sku", "qty", "unit_price")):
                problem = "empty field"
            elif row["sale_id"] in seen:
                problem = "duplicate sale"
            else:
                try:
                    day = dt.date.fromisoformat(row["day"])
                except ValueError:
                    problem = f"bad date {row['day']!r}"
                try:
                    qty = int(row["qty"])
                    price = round(float(row["unit_price"]) * 100)
                except ValueError:
                    problem = problem or "bad number"
                else:
                    if qty <= 0:
                        problem = problem or f"bad quantity {qty}"
                    elif price <= 0:
                        problem = problem or f"bad price {row['unit_price']}"
            if problem is not None:
                rejected.append({"where": row["_where"], "reason": problem})
                continue
            seen.add(row["sale_id"])
            good.append({"sale_id": row["sale_id"], "day": day.isoformat(),
                         "store": row["store"], "sku": row["sku"], "qty": qty,
                         "unit_price_cents": price})
    return {"rows": good, "rejected": rejected}


def transform(validated: dict[str, Any]) -> list[dict[str, Any]]:
    """Revenue per row, and the ISO week of the day."""
    out = []
    for row in validated["rows"]:
        day = dt.date.fromisoformat(row["day"])
        out.append({**row, "revenue_cents": row["qty"] * row["unit_price_cents"],
                    "week": f"{day.isocalendar().year}-W{day.isocalendar().week:02d}"})
    return out


def enrich(validated: dict[str, Any], source: str) -> list[dict[str, Any] | None]:
    """Category, region and cost of each row, from the catalogue and the store list.

    A row whose product or store is unknown gets None (aggregate drops it, and says so).
    """
    with (Path(source) / "products.csv").open(newline="", encoding="utf-8") as f:
        products = {r["sku"]: r for r in csv.DictReader(f)}
    with (Path(source) / "stores.csv").open(newline="", encoding="utf-8") as f:
        stores = {r["store"]: r for r in csv.DictReader(f)}
    out: list[dict[str, Any] | None] = []
    for row in validated["rows"]:
        product, store = products.get(row["sku"]), stores.get(row["store"])
        if product is None or store is None:
            out.append(None)
            continue
        out.append({"category": product["category"], "region": store["region"],
                    "cost_cents": row["qty"] * int(product["unit_cost_cents"])})
    return out


def aggregate(rows: list[dict[str, Any]], extra: list[dict[str, Any] | None]
              ) -> dict[str, Any]:
    """Totals per day, region and category (rows that enrich could not place are dropped)."""
    totals: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    unplaced = 0
    for row, more in zip(rows, extra, strict=True):
        if more is None:
            unplaced += 1
            continue
        t = totals[(row["day"], more["region"], more["category"])]
        t[0] += 1
        t[1] += row["qty"]
        t[2] += row["revenue_cents"]
        t[3] += more["cost_cents"]
    daily = [{"day": d, "region": r, "category": c, "sales": v[0], "units": v[1],
              "revenue_cents": v[2], "cost_cents": v[3]}
             for (d, r, c), v in sorted(totals.items())]
    return {"daily": daily, "unplaced": unplaced}


def load(rows: list[dict[str, Any]], extra: list[dict[str, Any] | None],
         totals: dict[str, Any], warehouse: str) -> dict[str, int]:
    """Facts and daily totals into the warehouse, in one transaction."""
    facts = [(r["sale_id"], r["day"], r["week"], r["store"], r["sku"], e["region"],
              e["category"], r["qty"], r["revenue_cents"], e["cost_cents"])
             for r, e in zip(rows, extra, strict=True) if e is not None]
    db = sqlite3.connect(warehouse, isolation_level=None)
    try:
        db.execute("BEGIN")
        db.execute("CREATE TABLE IF NOT EXISTS sales (sale_id TEXT PRIMARY KEY, day TEXT, "
                   "week TEXT, store TEXT, sku TEXT, region TEXT, category TEXT, qty INTEGER, "
                   "revenue_cents INTEGER, cost_cents INTEGER)")
        db.execute("CREATE TABLE IF NOT EXISTS daily_sales (day TEXT, region TEXT, "
                   "category TEXT, sales INTEGER, units INTEGER, revenue_cents INTEGER, "
                   "cost_cents INTEGER, PRIMARY KEY (day, region, category))")
        db.executemany("INSERT OR REPLACE INTO sales VALUES (?,?,?,?,?,?,?,?,?,?)", facts)
        db.executemany("INSERT OR REPLACE INTO daily_sales VALUES (?,?,?,?,?,?,?)",
                       [(d["day"], d["region"], d["category"], d["sales"], d["units"],
                         d["revenue_cents"], d["cost_cents"]) for d in totals["daily"]])
        db.execute("COMMIT")
    finally:
        db.close()
    return {"sales": len(facts), "daily_rows": len(totals["daily"])}


def report(loaded: dict[str, int], validated: dict[str, Any], warehouse: str,
           out_dir: str) -> dict[str, Any]:
    """A Markdown report, from SQL queries on the warehouse."""
    db = sqlite3.connect(warehouse)
    try:
        by_region = db.execute(
            "SELECT region, SUM(revenue_cents), SUM(revenue_cents - cost_cents), SUM(units) "
            "FROM daily_sales GROUP BY region ORDER BY 2 DESC").fetchall()
        top = db.execute("SELECT category, SUM(revenue_cents) FROM sales GROUP BY category "
                         "ORDER BY 2 DESC LIMIT 3").fetchall()
        total = db.execute("SELECT COUNT(*), SUM(revenue_cents) FROM sales").fetchone()
    finally:
        db.close()
    reasons = Counter(" ".join(r["reason"].split()[:2]) for r in validated["rejected"])
    lines = ["# Sales report", "",
             f"{total[0]:,} sales, revenue {total[1] / 100:,.2f} EUR "
             f"({len(validated['rejected'])} rows rejected).", "",
             "| region | revenue | margin | units |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {r} | {rev / 100:,.2f} | {m / 100:,.2f} | {u:,} |" for r, rev, m, u in by_region]
    lines += ["", "Top categories: " + ", ".join(f"{c} ({v / 100:,.2f})" for c, v in top), "",
              "Rejected rows by reason: " + ", ".join(f"{k} {v}" for k, v in reasons.items())]
    path = Path(out_dir) / "sales-report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"path": str(path), "sales": total[0], "revenue_cents": total[1],
            "regions": [r for r, *_ in by_region], "top_category": top[0][0],
            "rejected": len(validated["rejected"])}


wf.add("validate", validate, deps=["extract"])
wf.add("transform", transform, deps=["validate"])
wf.add("enrich", enrich, deps=["validate"])
wf.add("aggregate", aggregate, deps=["transform", "enrich"])
wf.add("load", load, deps=["transform", "enrich", "aggregate"])
wf.add("report", report, deps=["load", "validate"])


# -- the sources --------------------------------------------------------------------------

CATEGORIES = {"coffee": (18, 6), "tea": (9, 3), "pastry": (4, 1), "merch": (25, 11)}


def write_sources(folder: Path, rows_per_file: int = 5000, seed: int = 2024) -> int:
    """The day's exports: 4 sales files, a catalogue and a store list; some rows broken."""
    rng = random.Random(seed)
    products = []
    with (folder / "products.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["sku", "category", "unit_cost_cents"])
        for category, (price, cost) in CATEGORIES.items():
            for k in range(6):
                sku = f"{category[:3].upper()}-{k:02d}"
                products.append((sku, price + k))
                w.writerow([sku, category, (cost + k // 2) * 100])
    stores = {part: [f"{part[0].upper()}{k}" for k in range(5)] for part in PARTS}
    with (folder / "stores.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["store", "region"])
        for part, ids in stores.items():
            for s in ids:
                w.writerow([s, part])
    written = 0
    for part in PARTS:
        with (folder / f"sales-{part}.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["sale_id", "day", "store", "sku", "qty", "unit_price"])
            for i in range(rows_per_file):
                sku, price = rng.choice(products)
                row = [f"{part}-{i:05d}", f"2024-05-{rng.randint(1, 7):02d}",
                       rng.choice(stores[part]), sku, str(rng.choice((1, 1, 1, 2, 3))),
                       f"{price:.2f}"]
                broken = rng.random()
                if broken < 0.002:
                    row[4] = "-1"
                elif broken < 0.004:
                    row[1] = "2024-02-30"
                elif broken < 0.006:
                    row[3] = "XXX-99"  # not in the catalogue: enrich cannot place it
                elif broken < 0.008:
                    row[2] = ""
                w.writerow(row)
                written += 1
    return written


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise RuntimeError(f"the ETL example did not do what it shows: {what}")


async def demo(on_event: Callable[[flowrt.Event], Any] | None = None,
               say: Callable[[str], Any] = print) -> list[flowrt.RunResult]:
    """Write the sources, run the pipeline, check the warehouse against the files."""
    with tempfile.TemporaryDirectory(prefix="flowrt-etl-") as tmp:
        source, out = Path(tmp) / "in", Path(tmp) / "out"
        source.mkdir()
        out.mkdir()
        written = write_sources(source)
        warehouse = str(out / "warehouse.db")
        say(f"wrote {written:,} sales rows in {len(PARTS)} CSV files")
        result = await wf.run({"source": str(source), "warehouse": warehouse,
                               "out_dir": str(out)}, run_id="etl-2024-05",
                              on_event=on_event)
        result.raise_for_status()
        summary = result["report"]
        rejected = result["validate"]["rejected"]
        unplaced = result["aggregate"]["unplaced"]
        say(f"loaded {summary['sales']:,} sales (revenue {summary['revenue_cents'] / 100:,.2f}"
            f" EUR); rejected {len(rejected)} rows, e.g. {rejected[0]['where']}: "
            f"{rejected[0]['reason']}; {unplaced} rows name an unknown product")
        say(f"report: {Path(summary['path']).name}, best region {summary['regions'][0]}, "
            f"top category {summary['top_category']}")
        extracted = sum(len(rows) for rows in result["extract"])
        _check(len(result.items("extract")) == len(PARTS), "one extract item per file")
        db = sqlite3.connect(warehouse)
        try:
            facts = db.execute("SELECT COUNT(*), SUM(revenue_cents) FROM sales").fetchone()
            daily = db.execute("SELECT SUM(sales), SUM(revenue_cents) FROM daily_sales").fetchone()
        finally:
            db.close()
        _check(extracted == written, "every written row should be extracted")
        _check(extracted == len(result["validate"]["rows"]) + len(rejected),
               "every row is either kept or rejected")
        _check(0 < len(rejected) < written // 50, "a few rows should be rejected")
        _check(unplaced > 0, "rows with unknown products should be dropped")
        _check(tuple(facts) == tuple(daily), "the daily totals should add up to the facts")
        _check(facts[0] == len(result["validate"]["rows"]) - unplaced,
               "every placed row should be loaded")
        _check(Path(summary["path"]).read_text(encoding="utf-8").startswith("# Sales report"),
               "the report should be written")
    return [result]


if __name__ == "__main__":
    anyio.run(demo)
