"""API orchestration: many HTTP calls, some failing, under a server's concurrency cap.

    catalog, fx, sales_<region> x 8  (GET, each with retries, under the limit "api")
        -> summary -> publish (POST)

The example starts a real HTTP server on 127.0.0.1 (an ephemeral port, in a thread of
this process) that behaves like many real APIs:

- it answers **429 Too Many Requests** to a client that has more than 3 requests in
  flight at once;
- it fails the first call to some endpoints with **503 Service Unavailable** (the
  same ones every time, so the example always shows the retries);
- it signs each response with PBKDF2-HMAC, so a call takes it a few milliseconds of
  real work.

The workflow's nodes are plain functions calling the API with ``urllib`` (flowrt runs
them in worker threads). Each call retries on 429 and 5xx with backoff, and every call
names the limit ``"api"``; the run gives that limit the server's capacity,
``limits={"api": 3}``, so the workflow never has more than 3 calls in flight: the
eight region calls queue for the limit instead of being turned away.

Run it: ``python examples/api.py`` (or ``python -m flowrt examples api``).
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio

import flowrt

REGIONS = ("emea-n", "emea-s", "apac-n", "apac-s", "amer-n", "amer-s", "latam", "africa")
CAPACITY = 3  #: requests the server takes at once from this client
FLAKY = {"/fx", "/regions/emea-s/sales", "/regions/amer-n/sales"}  #: fail once with 503


# -- the server ---------------------------------------------------------------------------


class SalesApi(ThreadingHTTPServer):
    """A small JSON API on 127.0.0.1; see the module docs for how it misbehaves."""

    daemon_threads = True

    def __init__(self, capacity: int = CAPACITY) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.capacity = capacity
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.statuses: Counter[int] = Counter()
        self.failed_once: set[str] = set()
        self.reports: list[Any] = []
        self._thread = threading.Thread(target=self.serve_forever, name="sales-api",
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> SalesApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()

    def data(self, path: str, query: dict[str, list[str]]) -> Any:
        """The payload of a GET (real work: sales are generated from a seeded hash)."""
        if path == "/catalog":
            return {"currency": "EUR", "regions": list(REGIONS)}
        if path == "/fx":
            return {"base": "EUR", "rates": {"EUR": 1.0, "USD": 1.08, "JPY": 168.9,
                                             "BRL": 5.52, "ZAR": 20.1}}
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "regions" and parts[2] == "sales":
            region = parts[1]
            if region not in REGIONS:
                return None
            currency = {"apac": "JPY", "amer": "USD", "latam": "BRL",
                        "africa": "ZAR"}.get(region.split("-")[0], "EUR")
            day = query.get("day", ["2024-05-01"])[0]
            seed = hashlib.sha256(f"{region}/{day}".encode()).digest()
            orders = [int.from_bytes(seed[i:i + 2], "big") % 500 + 20 for i in range(0, 32, 2)]
            return {"region": region, "day": day, "currency": currency,
                    "orders": len(orders), "amount": sum(orders) * (100 if currency == "JPY"
                                                                    else 1)}
        return None


class _Handler(BaseHTTPRequestHandler):
    server: SalesApi

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the example narrates
        pass

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, method: str) -> None:
        api = self.server
        with api.lock:
            api.in_flight += 1
            api.max_in_flight = max(api.max_in_flight, api.in_flight)
            over = api.in_flight > api.capacity
            if over:
                api.in_flight -= 1
        if over:
            api.statuses[429] += 1
            self._send(429, {"error": "too many requests in flight"}, {"Retry-After": "0"})
            return
        try:
            status, payload = self._work(method)
        finally:
            # Counted out before the answer leaves: a client that got its answer may
            # send the next request at once.
            with api.lock:
                api.in_flight -= 1
                api.statuses[status] += 1
        self._send(status, payload, {"X-Signature": self._sign(payload)})

    def _work(self, method: str) -> tuple[int, Any]:
        api = self.server
        url = urlsplit(self.path)
        with api.lock:
            flaky = url.path in FLAKY and url.path not in api.failed_once
            if flaky:
                api.failed_once.add(url.path)
        self._sign(url.path)  # the server's own work for the call
        if flaky:
            return 503, {"error": "upstream busy, try again"}
        if method == "POST" and url.path == "/reports":
            length = int(self.headers.get("Content-Length", "0"))
            report = json.loads(self.rfile.read(length) or b"null")
            with api.lock:
                api.reports.append(report)
                number = len(api.reports)
            return 201, {"id": f"report-{number}"}
        payload = api.data(url.path, parse_qs(url.query)) if method == "GET" else None
        if payload is None:
            return 404, {"error": f"no such resource: {method} {url.path}"}
        return 200, payload

    @staticmethod
    def _sign(payload: Any) -> str:
        digest = hashlib.pbkdf2_hmac("sha256", json.dumps(payload).encode(), b"sales-api",
                                     20_000)
        return digest.hex()[:16]

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")


# -- the client ---------------------------------------------------------------------------


class Retryable(Exception):
    """A call worth trying again: 429, or a 5xx from the server."""


#: no proxies: the server is on this machine
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(base: str, path: str, body: Any = None) -> Any:
    """GET (or POST ``body``) JSON; raise Retryable for 429 and 5xx, HTTPError otherwise."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with _opener.open(request, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        if error.code == 429 or error.code >= 500:
            raise Retryable(f"{error.code} {error.reason} from {path}") from None
        raise


API_RETRY = flowrt.Retry(attempts=5, delay=0.02, factor=2.0, on=(Retryable, ConnectionError))

wf = flowrt.Workflow("api")


@wf.node(retry=API_RETRY, limit="api")
def catalog(api: str) -> dict[str, Any]:
    return call(api, "/catalog")


@wf.node(retry=API_RETRY, limit="api")
def fx(api: str) -> dict[str, float]:
    return call(api, "/fx")["rates"]


def region_sales(region: str) -> Callable[[str, str], dict[str, Any]]:
    def sales(api: str, day: str) -> dict[str, Any]:
        return call(api, f"/regions/{region}/sales?day={day}")

    return sales


for _region in REGIONS:
    wf.add(f"sales_{_region}", region_sales(_region), retry=API_RETRY, limit="api")


def summarize(catalog: dict[str, Any], fx: dict[str, float], *sales: dict[str, Any]
              ) -> dict[str, Any]:
    """Every region's sales in EUR, ranked."""
    if sorted(s["region"] for s in sales) != sorted(catalog["regions"]):
        raise ValueError("the regions fetched are not the catalog's")
    eur = {s["region"]: round(s["amount"] / fx[s["currency"]], 2) for s in sales}
    ranking = sorted(eur, key=eur.__getitem__, reverse=True)
    return {"day": sales[0]["day"], "total_eur": round(sum(eur.values()), 2),
            "orders": sum(s["orders"] for s in sales), "by_region": eur, "ranking": ranking}


wf.add("summary", summarize,
       deps=["catalog", "fx", *(f"sales_{r}" for r in REGIONS)])


@wf.node(retry=API_RETRY, limit="api")
def publish(summary: dict[str, Any], api: str) -> str:
    return call(api, "/reports", body=summary)["id"]


# -- the scenario -------------------------------------------------------------------------


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise RuntimeError(f"the API example did not do what it shows: {what}")


async def demo(on_event: Callable[[flowrt.Event], Any] | None = None,
               say: Callable[[str], Any] = print) -> list[flowrt.RunResult]:
    """Start the server, run the workflow against it, check what the server saw."""
    with SalesApi(capacity=CAPACITY) as server:
        say(f"API server on {server.url}: at most {CAPACITY} requests in flight, "
            f"{len(FLAKY)} endpoints fail their first call")
        result = await wf.run({"api": server.url, "day": "2024-05-01"}, run_id="api-2024-05-01",
                              limits={"api": CAPACITY}, on_event=on_event)
        result.raise_for_status()
        retried = {n: r.attempts for n, r in result.nodes.items() if r.attempts > 1}
        summary = result["summary"]
        say(f"published {result['publish']}: {summary['orders']} orders, "
            f"{summary['total_eur']:,.2f} EUR; best region {summary['ranking'][0]}")
        say(f"server saw {sum(server.statuses.values())} requests "
            f"({', '.join(f'{k}: {v}' for k, v in sorted(server.statuses.items()))}), at most "
            f"{server.max_in_flight} in flight; retried: "
            + ", ".join(f"{n} ({a} attempts)" for n, a in retried.items()))
        _check(server.max_in_flight <= CAPACITY, "the limit should keep calls under the cap")
        _check(server.statuses[429] == 0, "no call should be turned away with 429")
        _check(server.statuses[503] == len(FLAKY), "each flaky endpoint fails once")
        _check(len(retried) == len(FLAKY), "each flaky call should be retried once")
        _check(len(server.reports) == 1 and server.reports[0] == summary,
               "the summary should be posted once")
    return [result]


if __name__ == "__main__":
    anyio.run(demo)
