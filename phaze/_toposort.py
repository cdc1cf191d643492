"""Deterministic topological order shared by the model, scheduling and placement code."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence

__all__ = ["toposort"]


def toposort(n: int, succ: Sequence[Iterable[int]]) -> tuple[list[int], list[int]]:
    """Kahn's algorithm taking the smallest ready node first.

    Parameters
    ----------
    n : int
        Nodes ``0 .. n-1``.
    succ : sequence of iterables
        ``succ[i]``: the successors of node ``i`` (no duplicates).

    Returns
    -------
    order : list of int
        A topological order, lexicographically smallest; all ``n`` nodes unless there is a
        cycle.
    stuck : list of int
        Nodes on or behind a cycle (empty for a DAG), increasing.

    Examples
    --------
    >>> toposort(3, [[2], [0], []])
    ([1, 0, 2], [])
    >>> toposort(3, [[1], [0], []])
    ([2], [0, 1])
    """
    indeg = [0] * n
    for i in range(n):
        for j in succ[i]:
            indeg[j] += 1
    ready = [i for i in range(n) if indeg[i] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in succ[i]:
            indeg[j] -= 1
            if indeg[j] == 0:
                heapq.heappush(ready, j)
    return order, [i for i in range(n) if indeg[i] > 0]
