"""Real-world scenarios end to end: checkout, ETL, API orchestration, approval.

The seed's "Real-world scenarios" (e-commerce, ETL processing, API orchestration),
measured on the bundled examples (``examples/``: the workflows ``python -m flowrt
examples`` runs), plus an approval workflow written here. Each flowrt figure is the
example's own workflow run with ``await wf.run(...)``, exactly as its ``demo()`` runs it;
beside it, a hand-written ``asyncio`` equivalent that calls *the same node functions* in
the same order with the same parallelism, retries and limits (sync steps in
``asyncio.to_thread``, as flowrt runs them in worker threads). The difference between the
two is what flowrt's orchestration costs (or saves) on real work.

- ``Scenario/checkout``: ``examples/checkout.py``, both orders (A-1001: the payment
  gateway times out once and the node retries after ~50 ms; A-1002: the shipment fails,
  the refund and the restock compensate). A fresh SQLite shop per op (not timed).
- ``Scenario/etl``: ``examples/etl.py``, four CSV files of 5,000 rows -> validate ->
  transform || enrich -> aggregate -> load into SQLite -> report. The sources are written
  once per process; each op loads a fresh warehouse file (created outside the timing).
- ``Scenario/api``: ``examples/api.py`` against its local HTTP server (started once per
  process; its failure state reset before each op, outside the timing): 11 GET calls, 3
  of them failing once with 503, at most 3 in flight, then a POST.
- ``Scenario/approval``: 16 purchase requests, run concurrently, each through
  request -> credit || fraud || budget checks (each awaits a 1 ms "remote call") ->
  approve (all checks passed) or reject (``Trigger.ONE_FAILED``) -> notify
  (``Trigger.ONE_SUCCESS``). 6 of the 16 are rejected by one check.

Times are per op (the whole scenario), each op checked for the scenario's outcome.

    python perf/bench_scenarios.py [--quick] [pyperf options]
"""

from __future__ import annotations

import asyncio
import functools
import random
import shutil
import sys
import tempfile
import types
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from _common import Harness, clock, python_line

import flowrt
from flowrt import Trigger

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the repository's examples/ package
    sys.path.insert(0, str(ROOT))

from examples import api, checkout, etl  # noqa: E402

SCENARIOS = ("checkout", "etl", "api", "approval")
RUNNERS = ("flowrt", "asyncio")


@functools.cache
def workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="flowrt-bench-scenarios-"))
    import atexit

    atexit.register(shutil.rmtree, path, True)
    return path


def fresh_dir() -> Path:
    path = workdir() / uuid.uuid4().hex
    path.mkdir()
    return path


async def _thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


def _backoff(policy: flowrt.Retry, attempt: int) -> float:
    """The same schedule as the example's ``Retry``: delay * factor**(k-1), +-jitter."""
    base = min(policy.delay * policy.factor ** (attempt - 1), policy.max_delay)
    return base * (1.0 + policy.jitter * (2.0 * random.random() - 1.0))


# -- e-commerce checkout ---------------------------------------------------------------

#: the payment node's policy in examples/checkout.py, retried by hand on the asyncio side
CHECKOUT_RETRY = flowrt.Retry(attempts=3, delay=0.05, on=checkout.GatewayTimeout)


def checkout_setup() -> dict[str, str]:
    tmp = fresh_dir()
    shop = str(tmp / "shop.db")
    out_dir = tmp / "out"
    out_dir.mkdir()
    checkout.create_shop(shop)
    return {"shop": shop, "out_dir": str(out_dir)}


async def checkout_flowrt(env: dict[str, str]) -> Any:
    results = []
    for order_id in ("A-1001", "A-1002"):
        results.append(await checkout.wf.run({"order_id": order_id, **env},
                                             run_id=f"order-{order_id}",
                                             limits={"gateway": 1}))
    return results


async def _checkout_order(order_id: str, shop: str, out_dir: str, run_id: str) -> str:
    """checkout.wf by hand: same steps, same parallelism, same retry, same compensations."""
    ck = checkout
    try:
        order = await _thread(ck.order, order_id, shop)
    except Exception:
        return "failed"

    async def payment() -> dict[str, Any]:
        key = f"{run_id}/{order['id']}"
        for attempt in range(1, CHECKOUT_RETRY.attempts + 1):
            try:
                pid = await _thread(ck.charge_card, shop, key, order["id"],
                                    order["total_cents"])
                return {"payment_id": pid, "order_id": order["id"],
                        "amount_cents": order["total_cents"], "attempts": attempt}
            except ck.GatewayTimeout:
                if attempt == CHECKOUT_RETRY.attempts:
                    raise
            await asyncio.sleep(_backoff(CHECKOUT_RETRY, attempt))
        raise AssertionError("unreachable")

    failed: set[str] = set()
    reservation, paid = await asyncio.gather(_thread(ck.reservation, order, shop), payment(),
                                             return_exceptions=True)
    if isinstance(reservation, BaseException):
        failed.add("reservation")
    if isinstance(paid, BaseException):
        failed.add("payment")
    if not failed:
        try:
            allocation = await _thread(ck.allocation, order, reservation, paid, shop)
        except Exception:
            failed.add("allocation")
        else:
            invoice, shipment = await asyncio.gather(
                ck.invoice(order, paid, allocation, out_dir),
                _thread(ck.shipment, order, allocation, out_dir, shop),
                return_exceptions=True)
            if isinstance(invoice, BaseException):
                failed.add("invoice")
            if isinstance(shipment, BaseException):
                failed.add("shipment")
            if not failed:
                await _thread(ck.confirmation, order, invoice, shipment, out_dir, shop)
                return "succeeded"
    # The saga by hand: undo what succeeded, as the example's compensate= does (both are
    # on one level of its graph: concurrently), with what a Context would give them.
    ctx = types.SimpleNamespace(data={"order_id": order_id, "shop": shop})
    compensations = []
    if "reservation" not in failed:
        compensations.append(_thread(ck.restock, reservation, ctx))
    if "payment" not in failed:
        compensations.append(_thread(ck.refund, paid, ctx))
    await asyncio.gather(*compensations)
    return "failed"


async def checkout_asyncio(env: dict[str, str]) -> Any:
    return [await _checkout_order(order_id, env["shop"], env["out_dir"], f"order-{order_id}")
            for order_id in ("A-1001", "A-1002")]


def checkout_check(runner: str, out: Any, env: dict[str, str]) -> None:
    shop = env["shop"]
    charged = checkout._query(shop, "SELECT COUNT(*) FROM payments WHERE kind = 'capture'")
    balance = checkout._query(shop, "SELECT SUM(amount_cents) FROM payments "
                                    "WHERE order_id = 'A-1002'")
    caps = checkout._query(shop, "SELECT stock FROM products WHERE sku = 'CAP-03'")
    if runner == "flowrt":
        statuses = [str(r.status) for r in out]
        ok = (statuses == ["succeeded", "failed"] and out[0].nodes["payment"].attempts == 2
              and str(out[1].nodes["payment"].status) == "compensated")
    else:
        ok = out == ["succeeded", "failed"]
    if not (ok and charged == 2 and balance == 0 and caps == 8):
        raise RuntimeError(f"checkout ({runner}) did not do the scenario's work: {out!r}")


# -- ETL ------------------------------------------------------------------------------

@functools.cache
def etl_sources() -> str:
    source = workdir() / "etl-in"
    source.mkdir()
    etl.write_sources(source)
    return str(source)


def etl_setup() -> dict[str, str]:
    out = fresh_dir()
    return {"source": etl_sources(), "warehouse": str(out / "warehouse.db"),
            "out_dir": str(out)}


async def etl_flowrt(env: dict[str, str]) -> Any:
    return await etl.wf.run(dict(env), run_id="etl-bench")


async def etl_asyncio(env: dict[str, str]) -> Any:
    source, warehouse, out_dir = env["source"], env["warehouse"], env["out_dir"]
    paths = await _thread(etl.discover, source)
    gate = asyncio.Semaphore(4)  # the example's map runs 4 files at a time

    async def extract(path: str) -> Any:
        async with gate:
            return await _thread(etl.extract, path)

    parts = await asyncio.gather(*(extract(p) for p in paths))
    validated = await _thread(etl.validate, list(parts))
    rows, extra = await asyncio.gather(_thread(etl.transform, validated),
                                       _thread(etl.enrich, validated, source))
    totals = await _thread(etl.aggregate, rows, extra)
    loaded = await _thread(etl.load, rows, extra, totals, warehouse)
    return await _thread(etl.report, loaded, validated, warehouse, out_dir)


def etl_check(runner: str, out: Any, env: dict[str, str]) -> None:
    report = out["report"] if runner == "flowrt" else out
    if runner == "flowrt" and not out.ok:
        raise RuntimeError(f"etl (flowrt) failed: {out.errors}")
    if not (report["sales"] > 19_000 and Path(report["path"]).exists()):
        raise RuntimeError(f"etl ({runner}) did not load the warehouse: {report!r}")


# -- API orchestration ----------------------------------------------------------------

REGION_CALLS = {region: api.region_sales(region) for region in api.REGIONS}


@functools.cache
def api_server() -> api.SalesApi:
    server = api.SalesApi(capacity=api.CAPACITY)
    server.__enter__()
    import atexit

    atexit.register(server.__exit__, None, None, None)
    return server


def api_setup() -> dict[str, Any]:
    server = api_server()
    with server.lock:
        server.failed_once.clear()
        server.statuses.clear()
        server.reports.clear()
        server.max_in_flight = 0
    return {"api": server.url, "day": "2024-05-01"}


async def api_flowrt(env: dict[str, Any]) -> Any:
    return await api.wf.run(dict(env), limits={"api": api.CAPACITY})


async def api_asyncio(env: dict[str, Any]) -> Any:
    url, day = env["api"], env["day"]
    policy = api.API_RETRY
    limit = asyncio.Semaphore(api.CAPACITY)

    async def call(fn: Callable[..., Any], *args: Any) -> Any:
        for attempt in range(1, policy.attempts + 1):
            async with limit:
                try:
                    return await _thread(fn, *args)
                except policy.on:
                    if attempt == policy.attempts:
                        raise
            await asyncio.sleep(_backoff(policy, attempt))
        raise AssertionError("unreachable")

    catalog, fx, *sales = await asyncio.gather(
        call(api.catalog, url), call(api.fx, url),
        *(call(REGION_CALLS[r], url, day) for r in api.REGIONS))
    summary = await _thread(api.summarize, catalog, fx, *sales)
    return await call(api.publish, summary, url)


def api_check(runner: str, out: Any, env: dict[str, Any]) -> None:
    server = api_server()
    if runner == "flowrt" and not out.ok:
        raise RuntimeError(f"api (flowrt) failed: {out.errors}")
    if not (len(server.reports) == 1 and server.statuses[503] == len(api.FLAKY)
            and server.max_in_flight <= api.CAPACITY):
        raise RuntimeError(f"api ({runner}) did not do the scenario's work: "
                           f"{dict(server.statuses)}, {len(server.reports)} reports")


# -- approval (written here) -----------------------------------------------------------


class Rejected(Exception):
    """A check turned the request down."""


BLOCKED = {"mallory"}
BUDGETS = {"ops": 20_000, "rnd": 60_000, "sales": 8_000}
CALL = 0.001  # seconds of "remote call" per check and per notification


async def request(request_id: str, amount: int, requester: str, department: str
                  ) -> dict[str, Any]:
    if amount <= 0:
        raise ValueError(f"bad amount {amount}")
    return {"id": request_id, "amount": amount, "requester": requester,
            "department": department}


async def credit_check(request: dict[str, Any]) -> int:
    await anyio.sleep(CALL)
    if request["amount"] > 50_000:
        raise Rejected(f"{request['id']}: over the credit line")
    return 50_000 - request["amount"]


async def fraud_check(request: dict[str, Any]) -> float:
    await anyio.sleep(CALL)
    if request["requester"] in BLOCKED:
        raise Rejected(f"{request['id']}: requester blocked")
    return 0.01


async def budget_check(request: dict[str, Any]) -> int:
    await anyio.sleep(CALL)
    left = BUDGETS.get(request["department"], 0) - request["amount"]
    if left < 0:
        raise Rejected(f"{request['id']}: over the {request['department']} budget")
    return left


async def approve(request: dict[str, Any], credit: int, fraud: float, budget: int
                  ) -> dict[str, Any]:
    return {"id": request["id"], "decision": "approved", "budget_left": budget}


async def reject(request: dict[str, Any]) -> dict[str, Any]:
    return {"id": request["id"], "decision": "rejected"}


async def send(decision: dict[str, Any]) -> str:
    await anyio.sleep(CALL)
    return f"{decision['id']}: {decision['decision']}"


async def notify(ctx: flowrt.Context) -> str:
    decision = ctx.data.get("approve") or ctx.data.get("reject")
    return await send(decision)


CHECKS = ("credit_check", "fraud_check", "budget_check")
approval = flowrt.Workflow("approval")
approval.add("request", request)
approval.add("credit_check", credit_check, deps=["request"])
approval.add("fraud_check", fraud_check, deps=["request"])
approval.add("budget_check", budget_check, deps=["request"])
approval.add("approve", approve, deps=["request", *CHECKS])
approval.add("reject", reject, deps=["request"], after=list(CHECKS),
             trigger=Trigger.ONE_FAILED)
approval.add("notify", notify, after=["approve", "reject"], trigger=Trigger.ONE_SUCCESS)

REQUESTS = [
    {"request_id": f"PR-{i:03d}", "amount": amount, "requester": who, "department": dept}
    for i, (amount, who, dept) in enumerate([
        (1_200, "ana", "ops"), (18_000, "bo", "ops"), (25_000, "chen", "ops"),
        (4_000, "dee", "sales"), (9_000, "eli", "sales"), (55_000, "fay", "rnd"),
        (30_000, "gus", "rnd"), (700, "mallory", "ops"), (2_500, "hal", "rnd"),
        (7_900, "ivy", "sales"), (61_000, "jo", "rnd"), (12_000, "kai", "ops"),
        (3_300, "lee", "sales"), (100, "mallory", "sales"), (45_000, "max", "rnd"),
        (15_000, "ned", "ops")])
]
APPROVED = 10  # of the 16: PR-002, 004, 005, 007, 010, 013 are rejected


def approval_setup() -> None:
    return None


async def approval_flowrt(env: None) -> Any:
    return await asyncio.gather(*(approval.run(r) for r in REQUESTS))


async def _approval_by_hand(r: dict[str, Any]) -> str:
    req = await request(r["request_id"], r["amount"], r["requester"], r["department"])
    checks = await asyncio.gather(credit_check(req), fraud_check(req), budget_check(req),
                                  return_exceptions=True)
    if any(isinstance(c, BaseException) for c in checks):
        decision = await reject(req)
    else:
        decision = await approve(req, *checks)  # type: ignore[arg-type]
    return await send(decision)


async def approval_asyncio(env: None) -> Any:
    return await asyncio.gather(*(_approval_by_hand(r) for r in REQUESTS))


def approval_check(runner: str, out: Any, env: None) -> None:
    messages = [r["notify"] for r in out] if runner == "flowrt" else out
    approved = sum(m.endswith("approved") for m in messages)
    if len(messages) != len(REQUESTS) or approved != APPROVED:
        raise RuntimeError(f"approval ({runner}): {approved} approved, expected {APPROVED}")


# -- timing ---------------------------------------------------------------------------

SETUP: dict[str, Callable[[], Any]] = {
    "checkout": checkout_setup, "etl": etl_setup, "api": api_setup,
    "approval": approval_setup}
RUN: dict[tuple[str, str], Callable[[Any], Awaitable[Any]]] = {
    ("checkout", "flowrt"): checkout_flowrt, ("checkout", "asyncio"): checkout_asyncio,
    ("etl", "flowrt"): etl_flowrt, ("etl", "asyncio"): etl_asyncio,
    ("api", "flowrt"): api_flowrt, ("api", "asyncio"): api_asyncio,
    ("approval", "flowrt"): approval_flowrt, ("approval", "asyncio"): approval_asyncio,
}
CHECK: dict[str, Callable[[str, Any, Any], None]] = {
    "checkout": checkout_check, "etl": etl_check, "api": api_check,
    "approval": approval_check}


def time_scenario(loops: int, scenario: str, runner: str) -> float:
    """``loops`` ops in one event loop; only the scenario's run is timed, every op checked."""
    setup, run, check = SETUP[scenario], RUN[(scenario, runner)], CHECK[scenario]

    async def main() -> float:
        total = 0.0
        for _ in range(loops):
            env = setup()
            t0 = clock()
            out = await run(env)
            total += clock() - t0
            check(runner, out, env)
        return total

    return asyncio.run(main())


def main() -> None:
    h = Harness(__doc__.split("\n\n")[0])
    for scenario in SCENARIOS:
        for runner in RUNNERS:
            h.bench(f"Scenario/{scenario}/{runner}", time_scenario, scenario, runner)
    if h.worker:
        return
    print(f"\n{python_line()}")
    rows = []
    for scenario in SCENARIOS:
        rows += [(f"{scenario:<9} flowrt", f"Scenario/{scenario}/flowrt",
                  f"Scenario/{scenario}/asyncio"),
                 (f"{scenario:<9} asyncio by hand", f"Scenario/{scenario}/asyncio", None)]
    h.summary("Real-world scenarios end to end, time per op", rows, unit="ms",
              note="ratio against the hand-written asyncio equivalent")


if __name__ == "__main__":
    main()
