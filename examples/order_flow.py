"""An order flow with a branch and a saga: express or standard shipping, merged again
to ship; a shipment that fails undoes the booking and refunds the payment.

    order -> payment -> route (a branch) -> express  | standard -> ship -> confirmation
                                             (the untaken one is BYPASSED)

The orders, their payments and their shipments are rows of an SQLite database; the
shipping label is a file. ``route`` is a branch (``@wf.branch``): it returns the name of
the direct successor to take, ``"express"`` for orders over 100 EUR, else
``"standard"``. The other successor ends BYPASSED -- not a failure, the run is ok -- and
``ship``, the merge, runs under ``Trigger.NONE_FAILED_MIN_ONE_SUCCESS``, taking the
output of whichever path ran (the other parameter gets its default, None).

The saga: ``payment``, ``express`` and ``standard`` each say how to undo themselves
(``compensate=``: refund the payment, cancel the courier or the post). When a later step
fails, the run is rolled back: the steps that succeeded are undone in reverse order --
the booking first, then the payment -- and end COMPENSATED.

Three orders go through the same workflow, each a durable run in an SQLite store: B-2001
(180 EUR) goes express, B-2002 (35 EUR) standard, and B-2003 (240 EUR) goes express to a
PO box, which the courier does not deliver to: ``ship`` fails, the courier booking is
cancelled and the payment refunded. The store keeps each branch's choice (``route``'s
output), so a resumed run would take the same path without asking again, and each
compensation as it ends, so a crash during the rollback resumes the rollback. The HTML
report of each run (``flowrt report``) draws the untaken path dashed and grey, and the
compensated steps in their own colour.

Run it: ``python examples/order_flow.py`` (or ``python -m flowrt examples order_flow``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio

import flowrt
from flowrt import Trigger

wf = flowrt.Workflow("order_flow")

#: orders above this many cents go express
EXPRESS_FROM_CENTS = 100_00


@contextlib.contextmanager
def shop_db(shop: str) -> Iterator[sqlite3.Connection]:
    """A connection to the shop's database (one per node call: nodes run in threads)."""
    conn = sqlite3.connect(shop, timeout=10, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


@wf.node
def order(order_id: str, shop: str) -> dict[str, Any]:
    """Read the order and its total."""
    with shop_db(shop) as db:
        row = db.execute("SELECT email, total_cents, address FROM orders WHERE id = ?",
                         (order_id,)).fetchone()
    if row is None:
        raise LookupError(f"no order {order_id}")
    email, total, address = row
    return {"id": order_id, "email": email, "total_cents": total, "address": address}


def refund(payment: int, ctx: flowrt.Context) -> None:
    """Undo ``payment``: a refund row for the payment's ledger id (once, even when a
    resumed rollback calls it again: the ledger id is the key)."""
    with shop_db(ctx.data["shop"]) as db:
        db.execute("INSERT OR IGNORE INTO refunds (payment_id) VALUES (?)", (payment,))


@wf.node(compensate=refund)
def payment(order: dict[str, Any], shop: str) -> int:
    """Capture the payment; returns its ledger id."""
    with shop_db(shop) as db:
        cur = db.execute("INSERT INTO payments (order_id, amount_cents) VALUES (?, ?)",
                         (order["id"], order["total_cents"]))
        return int(cur.lastrowid or 0)


#: the bookings cancelled by a rollback (the carriers' APIs, in this example)
CANCELLED_BOOKINGS: list[str] = []


async def cancel_booking(booking: dict[str, str]) -> None:
    """Undo ``express`` or ``standard``: cancel the booking at its carrier."""
    await anyio.sleep(0.01)  # the carrier's cancellation API
    CANCELLED_BOOKINGS.append(booking["tracking"])


@wf.branch(after=[payment])
def route(order: dict[str, Any]) -> str:
    """Express for big orders, standard otherwise (the name of the path to take)."""
    return "express" if order["total_cents"] > EXPRESS_FROM_CENTS else "standard"


@wf.node(after=[route], compensate=cancel_booking)
async def express(order: dict[str, Any]) -> dict[str, str]:
    """Book a courier for tomorrow."""
    await anyio.sleep(0.01)  # the courier's booking API
    return {"carrier": "courier", "service": "next day", "tracking": f"EX-{order['id']}"}


@wf.node(after=[route], compensate=cancel_booking)
async def standard(order: dict[str, Any]) -> dict[str, str]:
    """Book the postal service."""
    await anyio.sleep(0.01)
    return {"carrier": "post", "service": "3-5 days", "tracking": f"ST-{order['id']}"}


@wf.node(trigger=Trigger.NONE_FAILED_MIN_ONE_SUCCESS)
def ship(order: dict[str, Any], shop: str, out_dir: str,
         express: dict[str, str] | None = None,
         standard: dict[str, str] | None = None) -> str:
    """The merge: print the label of whichever path ran and record the shipment."""
    booking = express or standard
    assert booking is not None  # the rule holds only when one of them succeeded
    if booking["carrier"] == "courier" and order["address"].startswith("PO Box"):
        raise ValueError(f"the courier does not deliver to a PO box ({order['address']})")
    label = Path(out_dir) / f"label-{order['id']}.txt"
    label.write_text(f"{order['address']}\n{booking['carrier']} ({booking['service']})\n"
                     f"{booking['tracking']}\n")
    with shop_db(shop) as db:
        db.execute("INSERT INTO shipments VALUES (?, ?, ?)",
                   (order["id"], booking["carrier"], booking["tracking"]))
    return booking["tracking"]


@wf.node
def confirmation(order: dict[str, Any], ship: str) -> str:
    """The e-mail to the customer."""
    return f"To: {order['email']}\nYour order {order['id']} ships: tracking {ship}."


def create_shop(shop: str) -> None:
    """The shop's database: three orders."""
    with shop_db(shop) as db:
        db.executescript("""
            CREATE TABLE orders (id TEXT PRIMARY KEY, email TEXT, total_cents INTEGER,
                                 address TEXT);
            CREATE TABLE payments (id INTEGER PRIMARY KEY, order_id TEXT,
                                   amount_cents INTEGER);
            CREATE TABLE shipments (order_id TEXT PRIMARY KEY, carrier TEXT, tracking TEXT);
            CREATE TABLE refunds (payment_id INTEGER PRIMARY KEY);
            INSERT INTO orders VALUES
                ('B-2001', 'ines@example.com', 18000, 'Rua Augusta 1, Lisboa'),
                ('B-2002', 'tom@example.com', 3500, 'Keizersgracht 2, Amsterdam'),
                ('B-2003', 'ola@example.com', 24000, 'PO Box 12, Oslo');
        """)


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise RuntimeError(f"the order_flow example did not do what it shows: {what}")


async def demo(on_event: Callable[[flowrt.Event], Any] | None = None,
               say: Callable[[str], Any] = print) -> list[flowrt.RunResult]:
    """Run the three orders; raise if the workflow did not behave as described above."""
    from flowrt.tools import report

    CANCELLED_BOOKINGS.clear()
    results = []
    with tempfile.TemporaryDirectory(prefix="flowrt-order-flow-") as tmp:
        shop = str(Path(tmp) / "shop.db")
        out_dir = Path(tmp) / "out"
        out_dir.mkdir()
        create_shop(shop)
        store = flowrt.SQLiteStore(Path(tmp) / "runs.db")
        try:
            for order_id in ("B-2001", "B-2002", "B-2003"):
                result = await wf.run({"order_id": order_id, "shop": shop,
                                       "out_dir": str(out_dir)},
                                      run_id=f"order-{order_id}", store=store,
                                      on_event=on_event)
                results.append(result)
                bypassed = [n for n, s in result.statuses().items()
                            if s is flowrt.Status.BYPASSED]
                if result.ok:
                    say(f"order {order_id}: {result.status}, took {result['route']!r} "
                        f"(bypassed: {', '.join(bypassed)}), tracking {result['ship']}")
                else:
                    undone = ", ".join(f"{name} {status}"
                                       for name, status in result.compensation.items())
                    say(f"order {order_id}: {result.status} ({result.errors['ship']}); "
                        f"rolled back: {undone}")
                page = Path(tmp) / f"{order_id}.html"
                report.write(store.load(result.run_id) or result, page)
                _check('class="untaken"' in page.read_text(),
                       "the report should draw the untaken path dashed")
            stored = {r.run_id: store.load(r.run_id) for r in results}
        finally:
            store.close()

        fast, slow, po_box = results
        _check(fast.ok and slow.ok, "the first two orders should ship")
        _check(fast["route"] == "express" and slow["route"] == "standard",
               "B-2001 should go express, B-2002 standard")
        _check(str(fast.nodes["standard"].status) == "bypassed", "no post for B-2001")
        _check(str(slow.nodes["express"].status) == "bypassed", "no courier for B-2002")
        for run_id, record in stored.items():
            _check(record is not None and record.outputs()["route"] in (
                "express", "standard"), f"the store should keep {run_id}'s choice")
        _check(not po_box.ok and po_box.compensation == {
            "payment": flowrt.Status.COMPENSATED, "express": flowrt.Status.COMPENSATED},
            "B-2003's booking and payment should be undone")
        _check(CANCELLED_BOOKINGS == ["EX-B-2003"], "only B-2003's courier is cancelled")
        labels = sorted(p.name for p in out_dir.iterdir())
        _check(labels == ["label-B-2001.txt", "label-B-2002.txt"], "one label per order")
        with shop_db(shop) as db:
            carriers = dict(db.execute("SELECT order_id, carrier FROM shipments"))
            refunded = [row[0] for row in db.execute(
                "SELECT p.order_id FROM refunds r JOIN payments p ON p.id = r.payment_id")]
        _check(carriers == {"B-2001": "courier", "B-2002": "post"}, "one shipment each")
        _check(refunded == ["B-2003"], "B-2003 refunded, the others not")
        say(f"shipments: {carriers}; refunded: {refunded}")
    return results


if __name__ == "__main__":
    anyio.run(demo)
