"""Dependency graphs the benchmarks share: name -> list of dependency names.

Every graph is a plain mapping, so that flowrt and each baseline are handed the same
structure and build their own representation from it (and the build is measured where
a benchmark says so).
"""

from __future__ import annotations

import random

Graph = dict[str, list[str]]


def random_dag(n: int, seed: int = 1, max_deps: int = 3) -> Graph:
    """Node i depends on 1..max_deps distinct earlier nodes, chosen at random.

    (Node 0 is the only root.) This is the seed's "RandomDAG" and design.md's
    "each node depends on up to 3 earlier nodes".
    """
    rng = random.Random(seed)
    graph: Graph = {}
    for i in range(n):
        k = min(i, rng.randint(1, max_deps))
        graph[f"n{i}"] = [f"n{j}" for j in rng.sample(range(i), k)]
    return graph


def linear(n: int) -> Graph:
    """A chain: node i depends on node i - 1."""
    return {f"n{i}": ([f"n{i - 1}"] if i else []) for i in range(n)}


def fan_out(n: int) -> Graph:
    """One root, n - 2 parallel nodes that depend on it, one sink that depends on all."""
    graph: Graph = {"n0": []}
    middle = [f"n{i}" for i in range(1, max(n - 1, 1))]
    for name in middle:
        graph[name] = ["n0"]
    if n > 1:
        graph[f"n{n - 1}"] = middle or ["n0"]
    return graph


def binary_tree(n: int) -> Graph:
    """Node i depends on its parent (i - 1) // 2: a tree that fans out from the root."""
    return {f"n{i}": ([f"n{(i - 1) // 2}"] if i else []) for i in range(n)}


def diamond(n: int) -> Graph:
    """Stacked diamonds: a -> (b, c) -> d -> (e, f) -> g ... up to n nodes."""
    graph: Graph = {"n0": []}
    i = 1
    top = "n0"
    while i < n:
        left, right = f"n{i}", f"n{i + 1}"
        graph[left] = [top]
        if i + 1 < n:
            graph[right] = [top]
        if i + 2 < n:
            bottom = f"n{i + 2}"
            graph[bottom] = [left, right]
            top = bottom
        i += 3
    return graph


def independent(n: int) -> Graph:
    """n nodes without dependencies."""
    return {f"n{i}": [] for i in range(n)}


TOPOLOGIES = {
    "random": random_dag,
    "linear": linear,
    "fan_out": fan_out,
    "binary_tree": binary_tree,
    "diamond": diamond,
}


def sinks(graph: Graph) -> list[str]:
    """Nodes nothing depends on."""
    used = {d for deps in graph.values() for d in deps}
    return [name for name in graph if name not in used]
