"""Orders in which architectures are visited, and the throughput/area frontier.

* :func:`phaze_walk`: the paper's outer loop (paper.md, "outer search"): architectures are
  bucketed by ``floor(area / 10,000 um^2)`` (0.01 mm^2), buckets are explored from the
  largest area down, every architecture of a bucket is evaluated, and the walk stops once
  the best throughputs of the last ``patience`` explored buckets form a non-increasing
  sequence (no bucket improved on the one before it).
* :func:`pareto_frontier`: architectures that no other architecture beats with less or
  equal area.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["BUCKET_UM2", "area_buckets", "pareto_frontier", "phaze_walk"]

#: Bucket width of the paper's walk: 0.01 mm^2.
BUCKET_UM2 = 10_000.0


def area_buckets(area_um2: np.ndarray, bucket_um2: float = BUCKET_UM2) -> list[np.ndarray]:
    """Architecture indices grouped by area bucket, largest bucket first; within a bucket,
    in index order."""
    key = np.floor(np.asarray(area_um2, dtype=np.float64) / bucket_um2).astype(np.int64)
    order = np.lexsort((np.arange(key.size), -key))
    keys = key[order]
    cuts = np.flatnonzero(np.diff(keys)) + 1
    return np.split(order, cuts)


def phaze_walk(
    area_um2: np.ndarray,
    evaluate: Callable[[np.ndarray], np.ndarray],
    patience: int = 5,
    bucket_um2: float = BUCKET_UM2,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the paper's bucketed walk.

    Parameters
    ----------
    area_um2 : float64 array (A,)
    evaluate : callable
        Takes architecture indices and returns their throughputs (0 when infeasible).
    patience : int
        Stop when the best throughputs of the last ``patience`` explored buckets are
        non-increasing.

    Returns
    -------
    visited : int64 array
        Indices evaluated, in visiting order.
    throughput : float64 array
        Their throughputs.

    Examples
    --------
    >>> area = np.array([5e4, 4e4, 3e4, 2e4, 1e4, 0.5e4])
    >>> visited, _ = phaze_walk(area, lambda idx: 10.0 - idx, patience=3)
    >>> visited.tolist()
    [0, 1, 2]
    """
    visited: list[np.ndarray] = []
    values: list[np.ndarray] = []
    bucket_best: list[float] = []
    for bucket in area_buckets(area_um2, bucket_um2):
        tp = np.asarray(evaluate(bucket), dtype=np.float64)
        visited.append(bucket)
        values.append(tp)
        bucket_best.append(float(tp.max()))
        last = bucket_best[-patience:]
        if len(last) == patience and all(a >= b for a, b in zip(last, last[1:])):
            break
    return (
        np.concatenate(visited) if visited else np.zeros(0, np.int64),
        np.concatenate(values) if values else np.zeros(0),
    )


def pareto_frontier(area_um2: np.ndarray, throughput: np.ndarray) -> np.ndarray:
    """Indices on the throughput/area frontier, by increasing area.

    An architecture is on the frontier when every architecture with less or equal area has
    a lower throughput (ties go to the smaller area, then the smaller index); architectures
    with zero throughput (infeasible) never are.

    Examples
    --------
    >>> pareto_frontier(np.array([1.0, 2.0, 3.0, 4.0]), np.array([5.0, 4.0, 7.0, 7.0]))
    array([0, 2])
    """
    area = np.asarray(area_um2, dtype=np.float64)
    tp = np.asarray(throughput, dtype=np.float64)
    order = np.lexsort((np.arange(area.size), -tp, area))
    keep, best = [], 0.0
    for i in order.tolist():
        if tp[i] > best:
            keep.append(i)
            best = tp[i]
    return np.array(keep, dtype=np.int64)
