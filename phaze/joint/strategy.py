"""Orders in which architectures are visited, and the throughput/area frontier.

* :func:`phaze_walk`: the paper's outer loop (docs/search.md): architectures are
  bucketed by ``floor(area / 10,000 um^2)`` (0.01 mm^2), buckets are explored from the
  largest area down, every architecture of a bucket is evaluated, and the walk stops once
  the best throughputs of the last ``patience`` explored buckets form a non-increasing
  sequence (no bucket improved on the one before it).
* :func:`pareto_frontier`: architectures that no other architecture beats with less or
  equal area.
* :func:`exact_search`, :func:`phaze_search`: the search strategies, driving a
  :class:`~phaze.joint.run_state.SearchRun` (docs/search.md says why ``exact`` is exact);
  ``exact`` runs :func:`best_first_pass`, then :func:`frontier_pass`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from phaze.joint.run_state import Design, SearchRun

__all__ = [
    "BATCH",
    "BUCKET_UM2",
    "LOOKAHEAD",
    "area_buckets",
    "area_order",
    "best_first_order",
    "best_first_pass",
    "better",
    "evaluated_frontier",
    "exact_search",
    "frontier_pass",
    "pareto_frontier",
    "phaze_search",
    "phaze_walk",
]

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
    value_of: Callable[[np.ndarray], np.ndarray],
    patience: int = 5,
    bucket_um2: float = BUCKET_UM2,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the paper's bucketed walk.

    Parameters
    ----------
    area_um2 : float64 array (A,)
    value_of : callable
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
        tp = np.asarray(value_of(bucket), dtype=np.float64)
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


def better(a: Design | None, b: Design, area: np.ndarray) -> bool:
    """Whether ``b`` beats incumbent ``a`` (value, then smaller area, index, HBM)."""
    if a is None:
        return b.value > 0
    ka = (-a.value, area[a.arch], a.arch, a.hbm_bytes)
    kb = (-b.value, area[b.arch], b.arch, b.hbm_bytes)
    return kb < ka


#: Architectures scheduled per vectorised call.
BATCH = 64


def exact_search(
    run: SearchRun,
    area: np.ndarray,
    exhaustive: bool,
    frontier: bool = True,
    incumbent: Design | None = None,
) -> tuple:
    """The ``exact`` (or, with ``exhaustive``, the unpruned) strategy: the best design,
    then the frontier; returns ``(best, frontier indices, frontier values)``.

    ``incumbent``: an exactly evaluated design of ``run`` to start from (it only prunes:
    the best design is the same with or without it). Once there is an incumbent, a
    design's settings that cannot reach its value are skipped (``floor``)."""
    # pass 1: the optimum, most promising designs first
    best = best_first_pass(run, area, best_first_order(area, run.design_ub), exhaustive, incumbent)
    if not frontier:
        return best, np.zeros(0, np.int64), np.zeros(0)
    # pass 2: the frontier, by increasing area
    arch_value, evaluated, _ = frontier_pass(run, area_order(area), exhaustive)
    run.counters["designs_pruned"] = int(area.shape[0] - evaluated.sum())
    idx = evaluated_frontier(area, arch_value, evaluated)
    return best, idx, arch_value[idx]


def best_first_order(area: np.ndarray, design_ub: np.ndarray) -> list[int]:
    """The best-first pass's order: by decreasing bound, then area, then index."""
    return np.lexsort((np.arange(area.shape[0]), area, -design_ub)).tolist()


def area_order(area: np.ndarray) -> list[int]:
    """The frontier pass's order: by increasing area, then index."""
    return np.lexsort((np.arange(area.shape[0]), area)).tolist()


def evaluated_frontier(area: np.ndarray, arch_value: np.ndarray, evaluated: np.ndarray):
    """Indices on the frontier (:func:`pareto_frontier`) among the architectures the
    frontier pass evaluated (``evaluated``, with values ``arch_value``)."""
    keep = evaluated & (arch_value >= 0)
    return np.flatnonzero(keep)[pareto_frontier(area[keep], arch_value[keep])]


def best_first_pass(
    run: SearchRun,
    area: np.ndarray,
    order: list[int],
    exhaustive: bool,
    best: Design | None = None,
) -> Design | None:
    """The best design among the architectures ``order`` (visited in that order: by
    decreasing bound, for pruning to stop early), starting from incumbent ``best``.

    HBM sizes from the largest: a smaller HBM never gives a faster plan (fewer plans fit),
    so for plain throughput it is evaluated only when the largest reaches the incumbent (a
    tie on value is broken towards the smaller HBM); under a power budget or an energy
    objective a slower plan may score higher, and every HBM size is evaluated."""
    ub = run.design_ub
    hbm_desc = sorted(run.hbm, reverse=True)
    for k, arch in enumerate(order):
        if not exhaustive and best is not None and ub[arch] < best.value:
            break  # every later design has a lower bound still
        if not exhaustive and ub[arch] <= 0:
            break  # no plan fits in memory here or later: a value of 0 is never the best
        if k % BATCH == 0:
            limit = 0.0 if exhaustive or best is None else best.value
            run.prefetch([a for a in order[k : k + BATCH] if ub[a] >= limit and ub[a] > 0])
        # a design below the incumbent's value cannot win: its settings that cannot
        # reach it are skipped (the value is then only known to be below it)
        floor = 0.0 if exhaustive or best is None else best.value
        top = run.design(arch, hbm_desc[0], prune=not exhaustive, floor=floor)
        if better(best, top, area):
            best = top
        for h in hbm_desc[1:]:
            if not exhaustive and run.hbm_monotone and top.value < best.value:
                break
            floor = 0.0 if exhaustive or best is None else best.value
            d = run.design(arch, h, prune=not exhaustive, floor=floor)
            if better(best, d, area):
                best = d
    return best


def frontier_pass(
    run: SearchRun, by_area: list[int], exhaustive: bool, reached: float = 0.0
) -> tuple[np.ndarray, np.ndarray, float]:
    """Evaluate the architectures ``by_area`` (by increasing area) that may be on the
    frontier; returns ``(value per architecture, whether evaluated, reached)``.

    At the largest HBM size (which bounds the others for plain throughput; else at every
    HBM size). An architecture whose bound is below the best value ``reached`` with no
    more area cannot be on the frontier; ``reached`` starts from the given value (a value
    reached by architectures before ``by_area``'s first) and is returned updated."""
    ub = run.design_ub
    hbm_desc = sorted(run.hbm, reverse=True)
    n = ub.shape[0]
    arch_value = np.zeros(n)
    evaluated = np.zeros(n, dtype=bool)
    ahead = 0  # architectures before this position of by_area have been scheduled ahead
    bound = ub.tolist()  # (Python floats: the windows below cover every architecture)
    for k in range(0, len(by_area), BATCH):
        # an architecture whose bound is below `reached` now stays below it (`reached`
        # only grows), so each window keeps only the ones that may still reach it
        window = by_area[k : k + BATCH]
        if not exhaustive:
            window = [a for a in window if bound[a] >= reached and bound[a] > 0]
            later: list[int] = []
            if window and k >= ahead:
                later, ahead = _candidates_ahead(by_area, ub, k, reached)
            run.prefetch(window, schedule_also=later)
        for arch in window:
            if not exhaustive and bound[arch] < reached:
                continue
            floor = 0.0 if exhaustive else reached
            v = run.design(arch, hbm_desc[0], prune=not exhaustive, floor=floor).value
            if exhaustive or not run.hbm_monotone:
                v = max(
                    [
                        v,
                        *(
                            run.design(arch, h, prune=not exhaustive, floor=floor).value
                            for h in hbm_desc[1:]
                        ),
                    ]
                )
            arch_value[arch], evaluated[arch] = v, True
            reached = max(reached, v)
    return arch_value, evaluated, reached


#: Architectures the frontier pass schedules at once (their layer latencies only).
LOOKAHEAD = 256


def _candidates_ahead(by_area: list, ub: np.ndarray, k: int, reached: float) -> tuple:
    """The next :data:`LOOKAHEAD` architectures from position ``k`` of ``by_area`` whose
    bound reaches ``reached`` now, and the position after the last one scanned.

    Few architectures of a window of :data:`BATCH` pass the frontier pass's bound, so
    their layers are scheduled ahead in larger vectorised calls (which architectures get
    rows is unchanged: an architecture skipped later was only scheduled)."""
    found: list[int] = []  # positions in by_area
    pos = k
    step = 4 * LOOKAHEAD
    while pos < len(by_area) and len(found) < LOOKAHEAD:
        block = np.asarray(by_area[pos : pos + step], dtype=np.int64)
        ok = np.flatnonzero((ub[block] >= reached) & (ub[block] > 0))
        if len(found) + ok.size > LOOKAHEAD:
            ok = ok[: LOOKAHEAD - len(found)]
            found.extend((pos + ok).tolist())
            pos += int(ok[-1]) + 1
            break
        found.extend((pos + ok).tolist())
        pos += block.size
    return [by_area[p] for p in found], pos


def phaze_search(run: SearchRun, area: np.ndarray) -> tuple:
    """The paper's walk for every setting; returns ``(best, frontier indices, frontier
    values)`` over the architectures it visited."""
    best: Design | None = None
    arch_value = np.zeros(area.shape[0])
    for m in run.mbs:
        for h in run.hbm:
            for r in run.rc:

                def value_of(idx, m=m, h=h, r=r):
                    out = np.empty(len(idx))
                    for j, a in enumerate(np.asarray(idx).tolist()):
                        d = run.design(a, h, prune=False, settings=[(m, r)])
                        out[j] = d.value
                        arch_value[a] = max(arch_value[a], d.value)
                    return out

                visited, _ = phaze_walk(area, value_of)
                for a in visited.tolist():
                    d = run.design(a, h, prune=False, settings=[(m, r)])
                    if better(best, d, area):
                        best = d
    seen = np.flatnonzero(arch_value > 0)
    front = seen[pareto_frontier(area[seen], arch_value[seen])]
    return best, front, arch_value[front]
