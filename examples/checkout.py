"""E-commerce checkout: a flaky payment gateway, retries, and compensation.

    order (validate) -> reservation (inventory) || payment -> allocation
        -> invoice || shipment -> confirmation
    reservation: compensate=restock; payment: compensate=refund (a saga: run only when
    a later step fails, each with its node's output, the latest first)

The shop is an SQLite database (products and stock, orders, a payments ledger); the
invoice, the shipping label and the confirmation e-mail are files. Two orders go
through the same workflow:

- A-1001 ships to Portugal. The payment gateway times out on the first call of every new
  payment (the sandbox gateway here does so on purpose); the node retries with the same
  idempotency key and the card is charged once. Every step succeeds; the compensations
  are skipped.
- A-1002 ships to Antarctica, where the carrier does not deliver. The shipment fails
  after the card was charged and the stock reserved, so the run rolls back: ``refund``
  gives the money back (the payment is COMPENSATED) and ``restock`` puts the items back
  on the shelf (the reservation is COMPENSATED); the confirmation is skipped and the run
  ends FAILED, with the books balanced.

Run it: ``python examples/checkout.py`` (or ``python -m flowrt examples checkout``).
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import anyio

import flowrt

wf = flowrt.Workflow("checkout")

#: where the carrier delivers
CARRIER_COUNTRIES = {"PT", "ES", "FR", "DE", "NL", "BE", "IT", "IE"}
WAREHOUSES = {"PT": "LIS-1", "ES": "MAD-2"}


class InvalidOrder(ValueError):
    """The order cannot be processed as it is."""


class OutOfStock(Exception):
    """Not enough of a product on the shelf."""


class GatewayTimeout(ConnectionError):
    """The payment gateway did not answer in time; retrying with the same key is safe."""


class CarrierRejected(Exception):
    """The carrier refused the parcel."""


@contextlib.contextmanager
def shop_db(shop: str) -> Iterator[sqlite3.Connection]:
    """A connection to the shop's database (one per node call: nodes run in threads)."""
    conn = sqlite3.connect(shop, timeout=10, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


# -- compensations (docs/compensation.md) ---------------------------------------------------
# When a later step fails, the run is rolled back: each succeeded node with a
# ``compensate=`` is undone, the latest first, with its own output. The run inputs are
# in the run's data (``ctx.data``).


def restock(reserved: int, ctx: flowrt.Context) -> None:
    """Undo ``reservation``: put the reserved items back on the shelf."""
    order_id = ctx.data["order_id"]
    with shop_db(ctx.data["shop"]) as db, transaction(db):
        rows = db.execute("SELECT sku, qty FROM reservations WHERE order_id = ?",
                          (order_id,)).fetchall()
        for sku, qty in rows:
            db.execute("UPDATE products SET stock = stock + ? WHERE sku = ?", (qty, sku))
        db.execute("DELETE FROM reservations WHERE order_id = ?", (order_id,))
    if sum(qty for _, qty in rows) != reserved:
        raise RuntimeError(f"restocked {rows} for order {order_id}, expected {reserved} items")


def refund(paid: dict[str, Any], ctx: flowrt.Context) -> None:
    """Undo ``payment``: give the captured amount back (once: the key is the payment's)."""
    with shop_db(ctx.data["shop"]) as db, transaction(db):
        db.execute("INSERT INTO payments (order_id, kind, amount_cents, key) "
                   "VALUES (?, 'refund', ?, ?) ON CONFLICT (key) DO NOTHING",
                   (paid["order_id"], -paid["amount_cents"], f"refund/{paid['payment_id']}"))
        db.execute("UPDATE orders SET status = 'refunded' WHERE id = ?", (paid["order_id"],))


# -- the workflow -------------------------------------------------------------------------


@wf.node
def order(order_id: str, shop: str) -> dict[str, Any]:
    """Validate: the order exists, names real products in sane quantities, has an address."""
    with shop_db(shop) as db:
        row = db.execute("SELECT id, email, country FROM orders WHERE id = ?",
                         (order_id,)).fetchone()
        if row is None:
            raise InvalidOrder(f"no order {order_id!r}")
        lines = db.execute(
            "SELECT l.sku, l.qty, p.price_cents FROM order_lines l "
            "LEFT JOIN products p ON p.sku = l.sku WHERE l.order_id = ? ORDER BY l.sku",
            (order_id,)).fetchall()
    problems = [f"unknown product {sku}" for sku, _, price in lines if price is None]
    problems += [f"bad quantity {qty} of {sku}" for sku, qty, _ in lines if not 0 < qty <= 50]
    if not lines:
        problems.append("no lines")
    if not row[1] or "@" not in row[1]:
        problems.append("no e-mail address")
    if problems:
        raise InvalidOrder(f"order {order_id}: " + "; ".join(problems))
    return {
        "id": row[0], "email": row[1], "country": row[2],
        "lines": [{"sku": s, "qty": q, "price_cents": p} for s, q, p in lines],
        "total_cents": sum(q * p for _, q, p in lines),
    }


@wf.node(compensate=restock)
def reservation(order: dict[str, Any], shop: str) -> int:
    """Inventory: take the items off the shelf, all or none."""
    with shop_db(shop) as db, transaction(db):
        for line in order["lines"]:
            taken = db.execute("UPDATE products SET stock = stock - ? "
                               "WHERE sku = ? AND stock >= ?",
                               (line["qty"], line["sku"], line["qty"])).rowcount
            if not taken:
                raise OutOfStock(f"not enough {line['sku']} for order {order['id']}")
            db.execute("INSERT INTO reservations VALUES (?, ?, ?)",
                       (order["id"], line["sku"], line["qty"]))
    return sum(line["qty"] for line in order["lines"])


def charge_card(shop: str, key: str, order_id: str, amount_cents: int) -> int:
    """The sandbox payment gateway: idempotent by ``key``; times out on a key's first call."""
    with shop_db(shop) as db, transaction(db):
        db.execute("INSERT INTO gateway_calls VALUES (?, 1) "
                   "ON CONFLICT (key) DO UPDATE SET calls = calls + 1", (key,))
        calls = db.execute("SELECT calls FROM gateway_calls WHERE key = ?", (key,)).fetchone()[0]
        if calls == 1:
            timed_out = True
        else:
            timed_out = False
            done = db.execute("SELECT id FROM payments WHERE key = ?", (key,)).fetchone()
            if done is not None:
                return int(done[0])
            cursor = db.execute("INSERT INTO payments (order_id, kind, amount_cents, key) "
                                "VALUES (?, 'capture', ?, ?)", (order_id, amount_cents, key))
            payment_id = cursor.lastrowid
    if timed_out:
        raise GatewayTimeout(f"payment gateway timed out (key {key})")
    assert payment_id is not None
    return payment_id


@wf.node(retry=flowrt.Retry(attempts=3, delay=0.05, on=GatewayTimeout), limit="gateway",
         compensate=refund)
def payment(order: dict[str, Any], shop: str, ctx: flowrt.Context) -> dict[str, Any]:
    """Charge the card. The key is the same on every attempt: a retry never charges twice."""
    key = f"{ctx.run_id}/{order['id']}"
    payment_id = charge_card(shop, key, order["id"], order["total_cents"])
    return {"payment_id": payment_id, "order_id": order["id"],
            "amount_cents": order["total_cents"], "attempts": ctx.attempt}


@wf.node
def allocation(order: dict[str, Any], reservation: int, payment: dict[str, Any],
               shop: str) -> str:
    """Allocate: the warehouse that ships the order."""
    warehouse = WAREHOUSES.get(order["country"], "RTM-1")
    with shop_db(shop) as db, transaction(db):
        db.execute("UPDATE orders SET status = 'allocated', warehouse = ? WHERE id = ?",
                   (warehouse, order["id"]))
    return warehouse


@wf.node
async def invoice(order: dict[str, Any], payment: dict[str, Any], allocation: str,
                  out_dir: str) -> str:
    """Write the invoice (an async node: file I/O through anyio)."""
    lines = [f"INVOICE {order['id']}   payment #{payment['payment_id']}   "
             f"shipped from {allocation}", ""]
    for line in order["lines"]:
        lines.append(f"{line['sku']:<10} {line['qty']:>3} x {line['price_cents'] / 100:>8.2f}"
                     f" = {line['qty'] * line['price_cents'] / 100:>9.2f}")
    lines += ["", f"{'TOTAL EUR':<27} {order['total_cents'] / 100:>9.2f}", ""]
    path = anyio.Path(out_dir) / f"invoice-{order['id']}.txt"
    await path.write_text("\n".join(lines), encoding="utf-8")
    return str(path)


@wf.node
def shipment(order: dict[str, Any], allocation: str, out_dir: str, shop: str) -> str:
    """Book the carrier and print the label; fails where the carrier does not deliver."""
    if order["country"] not in CARRIER_COUNTRIES:
        raise CarrierRejected(f"the carrier does not deliver to {order['country']} "
                              f"(order {order['id']})")
    tracking = "TRK" + hashlib.sha256(order["id"].encode()).hexdigest()[:10].upper()
    label = Path(out_dir) / f"label-{order['id']}.txt"
    label.write_text(f"{tracking}\nfrom {allocation}\nto {order['email']} "
                     f"({order['country']})\n", encoding="utf-8")
    with shop_db(shop) as db, transaction(db):
        db.execute("INSERT INTO shipments VALUES (?, ?)", (order["id"], tracking))
    return tracking


@wf.node
def confirmation(order: dict[str, Any], invoice: str, shipment: str, out_dir: str,
                 shop: str) -> str:
    """E-mail the customer (to the outbox folder) and mark the order confirmed."""
    mail = EmailMessage()
    mail["To"] = order["email"]
    mail["From"] = "shop@example.com"
    mail["Subject"] = f"Your order {order['id']} is on its way"
    mail.set_content(f"Tracking number: {shipment}\nTotal: "
                     f"{order['total_cents'] / 100:.2f} EUR\n")
    mail.add_attachment(Path(invoice).read_bytes(), maintype="text", subtype="plain",
                        filename=Path(invoice).name)
    outbox = Path(out_dir) / "outbox"
    outbox.mkdir(exist_ok=True)
    path = outbox / f"{order['id']}.eml"
    path.write_bytes(bytes(mail))
    with shop_db(shop) as db, transaction(db):
        db.execute("UPDATE orders SET status = 'confirmed' WHERE id = ?", (order["id"],))
    return str(path)


# -- the scenario -------------------------------------------------------------------------


def create_shop(shop: str) -> None:
    """The shop's database: three products, two orders."""
    with shop_db(shop) as db:
        db.executescript("""
            CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT, price_cents INTEGER,
                                   stock INTEGER);
            CREATE TABLE orders (id TEXT PRIMARY KEY, email TEXT, country TEXT,
                                 status TEXT DEFAULT 'new', warehouse TEXT);
            CREATE TABLE order_lines (order_id TEXT, sku TEXT, qty INTEGER);
            CREATE TABLE reservations (order_id TEXT, sku TEXT, qty INTEGER);
            CREATE TABLE payments (id INTEGER PRIMARY KEY, order_id TEXT, kind TEXT,
                                   amount_cents INTEGER, key TEXT UNIQUE);
            CREATE TABLE gateway_calls (key TEXT PRIMARY KEY, calls INTEGER);
            CREATE TABLE shipments (order_id TEXT PRIMARY KEY, tracking TEXT);
            INSERT INTO products VALUES ('MUG-01', 'Mug', 1250, 40),
                                        ('TEE-02', 'T-shirt', 2400, 15),
                                        ('CAP-03', 'Cap', 1800, 8);
            INSERT INTO orders (id, email, country) VALUES
                ('A-1001', 'ana@example.com', 'PT'),
                ('A-1002', 'penguin@example.com', 'AQ');
            INSERT INTO order_lines VALUES ('A-1001', 'MUG-01', 2), ('A-1001', 'TEE-02', 1),
                                           ('A-1002', 'CAP-03', 3);
        """)


def _query(shop: str, sql: str, *args: Any) -> Any:
    with shop_db(shop) as db:
        return db.execute(sql, args).fetchone()[0]


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise RuntimeError(f"the checkout example did not do what it shows: {what}")


async def demo(on_event: Callable[[flowrt.Event], Any] | None = None,
               say: Callable[[str], Any] = print) -> list[flowrt.RunResult]:
    """Run both orders; raise if the workflow did not behave as described above."""
    results = []
    with tempfile.TemporaryDirectory(prefix="flowrt-checkout-") as tmp:
        shop = str(Path(tmp) / "shop.db")
        out_dir = Path(tmp) / "out"
        out_dir.mkdir()
        create_shop(shop)
        for order_id in ("A-1001", "A-1002"):
            result = await wf.run({"order_id": order_id, "shop": shop, "out_dir": str(out_dir)},
                                  run_id=f"order-{order_id}", limits={"gateway": 1},
                                  on_event=on_event)
            results.append(result)
            statuses = {name: str(node.status) for name, node in result.nodes.items()}
            say(f"order {order_id}: {result.status}")
            if result.ok:
                paid = result["payment"]
                say(f"  paid {paid['amount_cents'] / 100:.2f} EUR (payment attempts: "
                    f"{result.nodes['payment'].attempts}), tracking {result['shipment']}, "
                    f"confirmation e-mail {Path(result['confirmation']).name}")
            else:
                for name, error in result.errors.items():
                    say(f"  {name} failed: {type(error).__name__}: {error}")
                refunded = -_query(shop, "SELECT COALESCE(SUM(amount_cents), 0) FROM payments "
                                   "WHERE order_id = ? AND kind = 'refund'", order_id)
                undone = ", ".join(f"{name} {status}"
                                   for name, status in result.compensation.items())
                say(f"  rolled back: {undone}; refund: {refunded / 100:.2f} EUR; "
                    f"confirmation {statuses['confirmation']}")

        happy, failed = results
        _check(happy.ok, "order A-1001 should succeed")
        _check(happy.nodes["payment"].attempts == 2, "the payment should take two attempts")
        _check(happy.compensation == {}, "nothing to undo for A-1001")
        _check(str(failed.status) == "failed", "order A-1002 should fail at the shipment")
        _check(str(failed.nodes["shipment"].status) == "failed", "the shipment should fail")
        _check({n: str(s) for n, s in failed.compensation.items()} == {
            "reservation": "compensated", "payment": "compensated"},
            "A-1002's payment should be refunded and its reservation restocked")
        _check(_query(shop, "SELECT SUM(amount_cents) FROM payments WHERE order_id = ?",
                      "A-1002") == 0, "the ledger of A-1002 should balance")
        _check(_query(shop, "SELECT COUNT(*) FROM payments WHERE kind = 'capture'") == 2,
               "each order should be charged exactly once")
        _check(_query(shop, "SELECT stock FROM products WHERE sku = 'CAP-03'") == 8,
               "the caps should be back in stock")
        say(f"ledger: {_query(shop, 'SELECT COUNT(*) FROM payments')} entries, balance "
            f"{_query(shop, 'SELECT SUM(amount_cents) FROM payments') / 100:.2f} EUR "
            "(A-1001's payment)")
    return results


if __name__ == "__main__":
    anyio.run(demo)
