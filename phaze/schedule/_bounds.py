"""Serial schedule generation, the lower bound and the list-schedule upper bound.

Internal to :mod:`phaze.schedule`; docs/scheduling.md ("cheap bounds first").
"""

from __future__ import annotations

import numpy as np

from phaze.schedule._problem import COMM, R_LINK, R_TC, R_VC, TC, TC_VC, VC, Problem

__all__ = [
    "earliest_start",
    "heads",
    "list_schedule",
    "lower_bound",
    "makespan_lower_bound",
    "priority_order",
    "sgs",
    "tails",
]


def _fits(t: float, end: float, dem, placed, cap) -> bool:
    """Whether ``dem`` units fit over ``[t, end)`` next to the ``placed`` operators."""
    points = [t]
    for s, _, _ in placed:
        if t < s < end:
            points.append(s)
    for r in (R_TC, R_VC, R_LINK):
        need = dem[r]
        if not need:
            continue
        room = cap[r] - need
        for p in points:
            used = 0
            for s, f, d in placed:
                if s <= p < f:
                    used += d[r]
            if used > room:
                return False
    return True


def earliest_start(est: float, dur: float, dem, placed, cap) -> float:
    """Earliest ``t >= est`` at which an operator of duration ``dur`` holding ``dem`` units
    fits next to ``placed`` (a list of ``(start, finish, demand)``); the serial SGS step.

    Resource usage only drops at finish times, so the candidates are ``est`` and the finish
    times after it; the last candidate always fits. An operator of zero duration occupies
    the empty interval and fits at ``est``.
    """
    if dur <= 0.0 or _fits(est, est + dur, dem, placed, cap):
        return est
    for t in sorted({f for _, f, _ in placed if f > est}):
        if _fits(t, t + dur, dem, placed, cap):
            return t
    raise AssertionError("unreachable: after the last finish every resource is free")


def sgs(prob: Problem, modes, order) -> tuple[float, list[float]]:
    """Serial schedule-generation scheme: place the operators of the precedence-feasible
    list ``order`` one by one, each at its earliest precedence- and resource-feasible start
    in mode ``modes[i]``. Returns ``(makespan, starts)``."""
    n = prob.n
    preds = prob.dag.preds
    starts = [0.0] * n
    fins = [0.0] * n
    placed = []
    cap = prob.cap
    makespan = 0.0
    for i in order:
        est = 0.0
        for p in preds[i]:
            if fins[p] > est:
                est = fins[p]
        m = modes[i]
        dur = prob.duration(i, m)
        dem = prob.demand(i, m)
        t = earliest_start(est, dur, dem, placed, cap)
        starts[i] = t
        fins[i] = t + dur
        placed.append((t, fins[i], dem))
        if fins[i] > makespan:
            makespan = fins[i]
    return makespan, starts


def tails(prob: Problem, durations) -> list[float]:
    """Longest path from each operator's start to the end, with ``durations``."""
    tail = [0.0] * prob.n
    for i in reversed(prob.dag.topo):
        best = 0.0
        for s in prob.dag.succs[i]:
            if tail[s] > best:
                best = tail[s]
        tail[i] = durations[i] + best
    return tail


def heads(prob: Problem, durations) -> list[float]:
    """Earliest start of each operator ignoring resources, with ``durations``."""
    head = [0.0] * prob.n
    for i in prob.dag.topo:
        best = 0.0
        for p in prob.dag.preds[i]:
            v = head[p] + durations[p]
            if v > best:
                best = v
        head[i] = best
    return head


def makespan_lower_bound(topo, preds, kinds, lat_one, lat_all, cap_tc, cap_vc) -> np.ndarray:
    """The one lower bound on a layer's makespan, vectorised over architectures.

    ``max(critical path with min(L1, LA), work / capacity of every resource)``. Work of an
    operator on a resource is its least core-seconds there: ``L1`` on one core, or
    ``cap * LA`` on all of them (intra-op mode); the link carries every COMM operator one at
    a time (a COMM operator has no intra-op mode: its ``LA`` is taken as ``L1``).

    Parameters
    ----------
    topo : sequence of int
        The operators in a topological order.
    preds : sequence of sequences of int
        Predecessors of every operator.
    kinds : int array (n,)
        :class:`~phaze.opcodes.OpKind` codes.
    lat_one, lat_all : float64 arrays (n, A)
        Seconds on one core and on all cores of the operator's kind.
    cap_tc, cap_vc : int arrays (A,) or ints
        Tensor and vector cores available (any capacity at most the cores a schedule can
        use keeps the bound valid).

    Returns
    -------
    float64 array (A,)

    Examples
    --------
    >>> makespan_lower_bound([0, 1], [[], [0]], [0, 0], [[4.0], [4.0]], [[1.0], [1.0]], 4, 1)
    array([2.])
    """
    l1 = np.asarray(lat_one, dtype=np.float64)
    kinds = np.asarray(kinds)
    comm = kinds == COMM
    la = np.where(comm[:, None], l1, np.asarray(lat_all, dtype=np.float64))
    dmin = np.minimum(l1, la)
    finish = np.zeros_like(dmin)
    for j in topo:
        p = preds[j]
        start = finish[list(p)].max(axis=0) if p else 0.0
        finish[j] = start + dmin[j]
    bound = finish.max(axis=0) if len(topo) else np.zeros(l1.shape[1])
    for members, cap in (((TC, TC_VC), cap_tc), ((VC, TC_VC), cap_vc)):
        sel = np.isin(kinds, members)
        if sel.any():
            c = np.asarray(cap, dtype=np.float64)
            bound = np.maximum(bound, np.minimum(l1[sel], c * la[sel]).sum(axis=0) / c)
    if comm.any():
        bound = np.maximum(bound, l1[comm].sum(axis=0))
    return bound


def lower_bound(prob: Problem) -> float:
    """:func:`makespan_lower_bound` of one instance, at its effective capacities."""
    if prob.n == 0:
        return 0.0
    lb = makespan_lower_bound(
        prob.dag.topo,
        prob.dag.preds,
        prob.kinds,
        np.array(prob.l1)[:, None],
        np.array(prob.la)[:, None],
        prob.cap[R_TC],
        prob.cap[R_VC],
    )
    return float(lb[0])


def priority_order(prob: Problem, priority) -> list[int]:
    """Precedence-feasible list: repeatedly the ready operator of highest ``priority``
    (ties: lowest index)."""
    n = prob.n
    preds = prob.dag.preds
    left = [len(preds[i]) for i in range(n)]
    ready = [i for i in range(n) if left[i] == 0]
    order = []
    while ready:
        i = max(ready, key=lambda j: (priority[j], -j))
        ready.remove(i)
        order.append(i)
        for s in prob.dag.succs[i]:
            left[s] -= 1
            if left[s] == 0:
                ready.append(s)
    return order


def _run(prob: Problem, modes) -> tuple[float, list[float], list[int]]:
    durs = [prob.duration(i, modes[i]) for i in range(prob.n)]
    order = priority_order(prob, tails(prob, durs))
    makespan, starts = sgs(prob, modes, order)
    return makespan, starts, order


def list_schedule(prob: Problem) -> tuple[float, tuple[int, ...], list[float]]:
    """Upper bound: a list schedule (serial SGS, longest-tail-first priority) over a few
    mode vectors -- all single-core; intra-op wherever it is faster; one greedy pass of
    single flips from the better of the two. Returns ``(makespan, modes, starts)``."""
    n = prob.n
    if n == 0:
        return 0.0, (), []
    single = [0] * n
    best = (*_run(prob, single)[:2], tuple(single))
    intra = [1 if prob.can_intra(i) else 0 for i in range(n)]
    if any(intra):
        ms, st, _ = _run(prob, intra)
        if ms < best[0]:
            best = (ms, st, tuple(intra))
        modes = list(best[2])
        for i in range(n):
            if not prob.can_intra(i):
                continue
            modes[i] ^= 1
            ms, st, _ = _run(prob, modes)
            if ms < best[0]:
                best = (ms, st, tuple(modes))
            else:
                modes[i] ^= 1
    return best[0], best[2], best[1]
