"""Why flowrt is behind where it is: analysis, not figures.

The report's section "Where flowrt is behind a Python baseline (or misses a target), and
why" lists the rows of the run where flowrt is behind or misses a target, grouped by the
first :class:`Note` whose patterns match the benchmark's name, and prints the note's why
and what would close the gap beside them. A row that no note matches is listed under
"Not analysed yet". The report's figures come from the run; a figure quoted in a note
is from the quick runs the analysis was written from (the 2-core dev machine).

Also here: the seed's benchmarks the suite does not reproduce, and why.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass


@dataclass(frozen=True)
class Note:
    """Why flowrt is behind (or misses a target) on the benchmarks ``patterns`` match."""

    patterns: tuple[str, ...]
    title: str
    why: str
    close: str


#: Analysis written from the code and the figures of quick runs on the 2-core dev machine;
#: the report prints each note beside the figures of the run that wrote it.
NOTES: tuple[Note, ...] = (
    Note(("postgres/sleep1ms-1000/postgres",),
         "Durable on PostgreSQL: the claim and the last commit are round trips",
         "A durable run claims its run before its first node (one transaction that waits "
         "for the server's disk: an fsync, ~3 ms on the dev machine's disk and more under "
         "load, and a claim must wait for it -- a claim a server crash forgets could hand "
         "one run to two holders) and waits at its end for its last group commit; node "
         "records go in between, in the writer thread (one statement per commit, ~16 us "
         "a row of server time on the loaded 2-core machine, on the same two cores as the "
         "run). A 50 ms run pays the two round trips and the fsync in full; SQLite pays "
         "none (a local file, no fsync with synchronous=NORMAL).",
         "Cheaper node rows (one row per commit and run instead of one per node, at the "
         "price of the per-node table), or a claim that starts the run while its commit "
         "reaches the disk (unsafe across a server crash); on a server with fast fsync "
         "(a battery-backed controller) the claim costs a fraction of a millisecond."),
    Note(("postgres/noop-10000/postgres",),
         "10,000 no-op nodes on PostgreSQL: the server's work per row",
         "Each node record is a row of `nodes` (a heap tuple, a primary-key entry, WAL): "
         "the server's insert costs a few microseconds a row on an idle machine; the "
         "writer thread's part (building the arrays, binary) about 3 us a row under the "
         "GIL. On 2 cores the run, the writer and the server share the CPUs.",
         "Fewer rows (see above), or COPY into a temporary table for large batches."),
    Note(("Fleet/fleet/steps-*/flowrt_pg",),
         "Sequential steps on PostgreSQL against the same run in memory",
         "The in-memory column is flowrt's own run without a store: the difference is the "
         "durable overhead per step. A chain of no-op nodes runs in one turn of the event "
         "loop; what a durable run adds is per run, not per step -- the claim (a "
         "transaction that waits for the server's disk) and the wait for the last group "
         "commit, divided here by the number of steps -- plus each node's record, "
         "serialized on the loop and written by the writer thread in one statement. DBOS "
         "writes each step's result in a transaction of its own before the next step "
         "starts.",
         "See \"Durable on PostgreSQL\" above: the per-run round trips."),
    Note(("Fleet/fleet/throughput-*/flowrt_pg",),
         "The queue on PostgreSQL versus one SQLite file",
         "Taking a run is a claim: a transaction that waits for the server's disk (see "
         "above), one per run; a worker takes runs one claim at a time. On one machine "
         "SQLite's claims cost no fsync.",
         "Claim several due runs in one transaction (`claim_next` taking up to the free "
         "slots), which the store protocol does not offer yet."),
    Note(("DAGConstruction/*", "DAGTopologyCreation/*"), "Build + compile",
         "Per node, `wf.add` validates the call (name, deps, the cached signature and its "
         "arity, options) and appends to flat lists: the callable, the number of deps and "
         "the dep names; no object per node. `compile()` then resolves every name in one "
         "C-level pass, checks with one comparison per edge that each dependency came "
         "first (so the order is topological and there is no cycle) and counts the "
         "dependents out into CSR arrays (docs/decisions/002). `graphlib` builds a "
         "`_NodeInfo` and a list per node and walks the graph for cycles. Behind only at "
         "10 nodes, where the fixed cost of a `Workflow` and a `Plan` (~10 us) dominates.",
         "A smaller `Plan` constructor for tiny graphs (most of its fixed cost is arrays "
         "and dicts sized for the general case)."),
    Note(("Execution/*",), "Running small graphs; building every time",
         "`sequential_await` is a floor: one coroutine after another, no concurrency, no "
         "statuses, no result object. A `run_sync()` has a fixed cost (an anyio event "
         "loop, the supervisor's arrays, a new `WorkflowData` with its interner and status "
         "board, the run's metrics, the `RunResult`) that a 100-node graph spreads over "
         "only 100 nodes; from 1,000 nodes on flowrt is near the floor or below it, "
         "because a node that does not suspend costs neither a task nor a trip through "
         "the loop (docs/decisions/003). The cold row adds build + compile (see that "
         "section).",
         "A smaller fixed cost per run: reuse the per-plan arrays and a reset "
         "`WorkflowData` between runs of the same plan instead of allocating them (resets "
         "are O(used)), and build the `RunResult` views on first access."),
    Note(("FocusedConcurrency/*",), "Many short sleeps (FocusedConcurrency)",
         "A node that suspends stays with its runner, which awaits the rest of it through "
         "`actor.Resume`, a Python-level trampoline that forwards every step inside the "
         "node's own context copy (`Context.run` per step), while a new runner task is "
         "started for the rest of the queue (docs/decisions/003); each node also pays for "
         "its status changes, timing and result slot, and the run for its fixed cost. "
         "`asyncio.gather` wraps each coroutine in a C task and does nothing else. The "
         "whole run lasts about one sleep (asyncio rounds the 0.1 ms sleep up to its "
         "millisecond timer), so flowrt's per-node costs are a large share of it, most "
         "at 100 nodes; these figures also have the widest spread of the suite. With a "
         "limit, blocked nodes wait in the limit's queue without a task, and the same "
         "costs are small next to the queueing.",
         "Hand a suspended node's coroutine to `loop.create_task(..., context=ctx)` "
         "behind a one-step prologue (a `types.coroutine` generator that yields the "
         "pending future once, then `yield from` the coroutine, so the forwarding is done "
         "in C), instead of forwarding each step through `Resume` in Python; and the "
         "smaller fixed cost per run (see Execution)."),
    Note(("IOScaling/*",), "I/O scaling at the largest worker counts",
         "At W = 256, 8,192 nodes sleep 10 ms each in 32 waves of 256. Every wave wakes "
         "256 timers; the loop's own work (a `TimerHandle` pushed on a heap whose "
         "comparisons are a Python `__lt__`, the callbacks, anyio's sleep) and flowrt's "
         "per-node work (settle, hand the freed slot over, start the next node) run on one "
         "thread between waves, so each wave ends a little late, and 32 waves add that "
         "up. The floor column -- W bare asyncio tasks doing the same sleeps, nothing else "
         "-- is itself about 15% over the ideal on the standard loop here: the target is "
         "below what the loop alone costs, and flowrt adds 1-5% to the floor. On uvloop "
         "(the 'on uvloop' rows, `backend_options={\"use_uvloop\": True}`) the loop's part "
         "is done in C and flowrt stays well inside the target (docs/decisions/007). "
         "The hand-written `Semaphore(W)` pays more (all 8,192 tasks exist from the start "
         "and queue on the semaphore).",
         "On the standard loop nothing above the floor is left to gain but flowrt's few "
         "percent: settle all the nodes that finished in one loop turn in one pass, and "
         "skip the limit hand-over when only `max_concurrency` applies."),
    Note(("DependencyResolution/*",), "Dependency resolution on small graphs",
         "The time per node is flat from 1,000 to 10,000 nodes (O(1) per status change, "
         "as the growth check shows); what makes 10 and 100 nodes cost more per node is "
         "the fixed cost of a run (the supervisor's arrays, a new `WorkflowData`, the "
         "run's metrics, the result), which `graphlib_sync` and `naive_scan` do not have: "
         "they keep no statuses, no timings and no result. `naive_scan` is O(n^2) and "
         "only cheap at 10 nodes. A sync node on `executor=\"loop\"` costs a little more "
         "than an async no-op because it is wrapped in a coroutine (`actor.in_loop`) that "
         "the runner then steps.",
         "The smaller fixed cost per run (see Execution); for `executor=\"loop\"`, call "
         "the function in the runner and settle it directly, without the `in_loop` "
         "coroutine."),
    Note(("SetGet/*", "SetGetById/*"), "WorkflowData set + get",
         "A `set` resolves the key through two dicts (the plan's node names, then the "
         "store's own keys) to a slot id, stores into the slab list, moves the high-water "
         "mark and bumps a version counter that checkpoints read; a `get` does the two "
         "lookups and checks for the empty-slot sentinel. `DictStore` is one dict "
         "operation per call, `dict` not even a call (a floor). By id skips the lookups "
         "but keeps two method calls with their checks. Metrics on times every operation "
         "(two `perf_counter_ns` calls each); sampled keeps a tick counter per operation.",
         "One lookup instead of two (a single key -> id dict shared by the plan and the "
         "store's own keys, copied on write), drop the version counter from `set` (a "
         "checkpoint can compare the slab instead), and count operations without timing "
         "them unless sampled; a C implementation (mypyc) of the slab would bring "
         "set + get near `DictStore`."),
    Note(("ArenaReset/*", "ArenaComparison/*"), "Reset and new stores",
         "A new `WorkflowData` creates its own `Interner`, a 64-slot slab and a "
         "`StatusBoard`; `reset()` refills the used slots with the sentinel and resets "
         "the status board; every `set` is the two-lookup path above. A `DictStore` "
         "is one dict, and clearing it is `dict.clear()`. (The slab's point is the "
         "runtime's id-indexed path and memory per node, not a faster `set` by name.)",
         "Create the interner and the status board lazily (on the first set and on "
         "attaching to a plan), and the cheaper `set` above."),
    Note(("Snapshot/*",), "Snapshot and restore",
         "`snapshot()` walks the slab and maps each id back to its name through the "
         "interner, builds a values dict and a statuses dict (node statuses as strings) "
         "inside a versioned, JSON-ready envelope; `from_snapshot()` checks the version "
         "and `set`s every key. `dict(d)` is one C-level copy and is only a floor.",
         "Build the values dict with one `zip` over the interner's key list and the slab "
         "(no per-item generator), and restore with one bulk intern plus a slice "
         "assignment into the slab instead of a `set` per key."),
    Note(("FocusedStringInterning/*",), "Interning",
         "Steady state, flowrt is on par with a dict of key -> id (one dict lookup each; "
         "the batch call adds a list of ids). Cold, `Interner()` sets up its base, offset "
         "and frozen flag and interns each new key through a method call that checks the "
         "type and the frozen flag and appends to a key list (ids map back to names); "
         "`DictInterner` only stores `len(d)`. `sys.intern` returns the canonical string, "
         "not an id: a floor.",
         "A cold `intern_many` that checks the frozen flag and the types once per batch "
         "and extends the id dict and the key list in bulk."),
    Note(("NodeStatus/*",), "Status board",
         "`board.move` checks the move against the legal-transition table (index "
         "arithmetic on a bytes table) before it stores into the `bytearray`, a method "
         "call each time; `board[id]` turns the stored byte back into a `Status` member. "
         "A plain dict stores and reads the enum members without a check or a call. "
         "Counting is where the board wins (`bytearray.count`, C speed). The runtime "
         "itself does not go through `move`: it writes the board's bytes directly.",
         "Nothing needed for the runtime; for users, a `moves(ids, status)` batch method "
         "and a `raw(id)` read returning the int would cut the per-call cost."),
    Note(("Scenario/*",), "Real-world scenarios",
         "Where the work is real (SQLite, files, HTTP, retries) the orchestration is small "
         "next to it and the two sides are close; checkout's time includes a jittered "
         "~50 ms retry delay drawn at random on both sides, and a quick run takes one op "
         "per value, so a gap of a few percent either way there is noise. In the approval "
         "scenario the work is 1 ms sleeps and 16 runs of 7 nodes share the loop: each "
         "flowrt run spends several times the CPU of the hand-written coroutines (the "
         "run's fixed cost plus seven nodes' statuses, trigger rules, contexts and "
         "results), and the other runs' timers fire that much later.",
         "The smaller fixed cost per run (see Execution); a `Runtime.run_many` that shares "
         "one supervisor's arrays among runs of the same plan."),
    # scaling (issue 18)
    Note(("Scaling/random/*",), "Scaling: the random DAG's run per node grows with N",
         "Only the random DAG grew (linear, fan-out and binary tree stay flat): a FIFO "
         "ready queue handed out node ids far apart (median jump 0.15 N at 1M), so every "
         "per-node array was touched at random; callgrind at 100k counted ~31 last-level "
         "cache misses per node against ~5 in id order, for the same instructions. The "
         "engine now takes ready nodes in id order; what is left at 100k is mostly the "
         "load of the shared machine on a one-value figure, and at 1M compile's name "
         "lookups (2M fresh strings in a 1M-entry dict) and its counting sort (decision "
         "027).",
         "Done: id order (a bytearray of marks and a cursor), CSR arrays as array('i') "
         "for large plans, an inline success path and tuple arguments (10k: 0.155x "
         "graphlib, 1M: 574 MB peak). Next: compile's name lookups at 1M, and compiling "
         "the runner and settle (mypyc or Cython: decision 028)."),
    Note(("Memory/*",), "Memory per node",
         "flowrt keeps what a workflow needs later: per node its name in the index, its "
         "callable, its dep count and dep names in flat lists (docs/decisions/002), and the "
         "compiled `Plan`'s CSR arrays (dependencies and dependents), per-node option "
         "arrays and modes; a run adds the status board, counters, output slots and "
         "timings. `graphlib`'s `prepare()` keeps one `_NodeInfo` and a successor list per "
         "node; `graphlib_wait` keeps the outputs dict, and its tasks only while they run.",
         "Share the plan's dependency ids with the workflow instead of keeping the dep "
         "names twice; `array('l')` for the arrays a run reads rarely."),
    Note(("Executors/*",), "Executors",
         "With threads, 64 pure-Python CPU nodes run one at a time under the GIL; plain "
         "Dask uses two processes. On Dask, each flowrt node is one `client.submit` and "
         "its completion comes back through flowrt's event loop, while `client.get` ships "
         "the whole graph to the scheduler at once: a round trip per node, visible with "
         "no-op nodes (the 200-node row) and small next to 50 ms of real work.",
         "Use `ProcessExecutor` or `DaskExecutor` for CPU-bound nodes (the rows show it); "
         "for Dask, submit each ready wave in one `client.map`/graph submission and keep "
         "intermediate results on the cluster (already done for outputs, "
         "docs/decisions/006)."),
    Note(("durable/*", "postgres/sleep1ms-1000/sqlite", "postgres/noop-10000/sqlite"),
         "Durable runs",
         "Every finished node's output is serialized (JSON) on the loop thread and handed "
         "to the store's writer thread, which commits what has arrived every 5 ms in one "
         "transaction (docs/decisions/005). Per run there is also a fixed cost: a trip to "
         "a worker thread to open the run and take its lease, and one to wait for the "
         "final commit, noticeable on a run this short. On two cores the writer thread's "
         "Python work competes with the loop for the GIL. `store=path` on `wf.run` also "
         "opens the file, checks the schema and starts a writer thread on every run; a "
         "`Runtime` holding the store pays that once.",
         "Open the run through the store's writer thread already running (no extra "
         "to-thread trip), let `store=path` reuse one open store per path in the process, "
         "and serialize outputs in the writer thread when they are immutable values."),
)


def note_for(key: str) -> Note | None:
    """The first note whose patterns match benchmark ``key``."""
    for note in NOTES:
        if any(fnmatch.fnmatchcase(key, p) for p in note.patterns):
            return note
    return None



#: The seed's benchmarks that have no counterpart here, and why (the report's section
#: "The seed's figures not reproduced").
NOT_REPRODUCED: tuple[str, ...] = (
    "`BenchmarkArenaAllocation/Size_*/{Standard,Arena}`: Go's allocator against an arena "
    "for raw byte blocks. Python has no user-level allocation to compare; flowrt's arena is "
    "the `WorkflowData` slab, measured above (ArenaReset, ArenaComparison) and in Memory "
    "per node.",
    "`FocusedStringInterning/ArenaStringPool*`: an arena-backed string pool. Python "
    "strings are already shared objects (`sys.intern`, in the interning table as a floor); "
    "flowrt interns to dense ids instead.",
    "`WorkflowDataConfigurations/{ReadOptimized,HighConcurrency}_Size_10`: lock-tuning "
    "configurations that have no meaning for an asyncio store; the metrics variants "
    "(Default / MetricsDisabled / MetricsSampled) are the SetGet configurations above.",
    "Memory pooling and lock contention: listed among the seed's categories without "
    "figures.",
)
