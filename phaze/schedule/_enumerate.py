"""Exact enumeration for small instances: branch and bound over serial SGS schedules.

Internal to :mod:`phaze.schedule`. Every intra-op assignment x every precedence-feasible
priority list, run through the serial schedule-generation scheme, reaches an optimal
active schedule of this multi-mode problem with renewable resources. The enumeration is
organised as a depth-first tree (a node = a list prefix with the modes of its operators,
scheduled by the SGS), which shares prefixes between lists, and is pruned exactly:

* a node is cut when a lower bound of every completion (precedence heads + tails with the
  faster mode; remaining work per resource) is not below the incumbent;
* two prefixes that produce the same partial schedule (same operators, starts and modes)
  have the same completions: the second is skipped;
* intra-op mode is tried only where it is strictly faster (dominance, see
  :meth:`Problem.can_intra`);
* the search stops as soon as the incumbent meets the instance's lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from phaze.schedule._bounds import earliest_start, tails
from phaze.schedule._problem import R_TC, R_VC, Problem, resource_users

__all__ = ["EnumResult", "enumerate_exact"]


@dataclass(frozen=True, slots=True)
class EnumResult:
    makespan: float
    modes: tuple[int, ...]
    starts: tuple[float, ...]
    complete: bool  #: the search finished (the result is optimal)
    nodes: int


class _Limit(Exception):
    pass


def enumerate_exact(
    prob: Problem, ub: float, ub_modes, ub_starts, lb: float, *, node_limit: int | None = None
) -> EnumResult:
    """Least makespan of ``prob`` by branch and bound over serial SGS schedules.

    Parameters
    ----------
    prob : Problem
    ub, ub_modes, ub_starts
        An incumbent schedule (e.g. the list schedule); returned when nothing is better.
    lb : float
        A lower bound of the optimum; the search stops when the incumbent reaches it.
    node_limit : int, optional
        Stop after this many tree nodes with ``complete=False``.
    """
    n = prob.n
    dag = prob.dag
    preds, topo = dag.preds, dag.topo
    dmin = [prob.dmin(i) for i in range(n)]
    tail = tails(prob, dmin)
    mode_opts = [((1, 0) if prob.can_intra(i) else (0,)) for i in range(n)]
    durs = [(prob.l1[i], prob.la[i]) for i in range(n)]
    dems = [(prob.demand(i, 0), prob.demand(i, 1)) for i in range(n)]
    cap = prob.cap
    tc_users, vc_users, _ = resource_users(dag, prob.kinds)
    area = [[0.0] * n, [0.0] * n]
    for r, users in ((R_TC, tc_users), (R_VC, vc_users)):
        for i in users:
            w = prob.l1[i]
            if prob.can_intra(i) and cap[r] * prob.la[i] < w:
                w = cap[r] * prob.la[i]
            area[r][i] = w / cap[r]
    rank = sorted(range(n), key=lambda i: (-tail[i], i))

    best = [ub, tuple(ub_modes), tuple(ub_starts)]
    stop_at = lb
    starts = [0.0] * n
    fins = [0.0] * n
    modes = [0] * n
    placed: list = []
    seen: set = set()
    count = [0]
    done = [False]

    def bound(mask: int, cur: float) -> float:
        b = cur
        est = [0.0] * n
        first = [float("inf"), float("inf")]
        work = [0.0, 0.0]
        for i in topo:
            if mask >> i & 1:
                continue
            e = 0.0
            for p in preds[i]:
                v = fins[p] if mask >> p & 1 else est[p] + dmin[p]
                if v > e:
                    e = v
            est[i] = e
            if e + tail[i] > b:
                b = e + tail[i]
            for r in (R_TC, R_VC):
                if area[r][i]:
                    work[r] += area[r][i]
                    if e < first[r]:
                        first[r] = e
        for r in (R_TC, R_VC):
            if work[r] and first[r] + work[r] > b:
                b = first[r] + work[r]
        return b

    def dfs(mask: int, cur: float, left: int) -> None:
        if left == 0:
            if cur < best[0]:
                best[0], best[1], best[2] = cur, tuple(modes), tuple(starts)
                if cur <= stop_at:
                    done[0] = True
            return
        for i in rank:
            if mask >> i & 1:
                continue
            ready = True
            est = 0.0
            for p in preds[i]:
                if not mask >> p & 1:
                    ready = False
                    break
                if fins[p] > est:
                    est = fins[p]
            if not ready:
                continue
            for m in mode_opts[i]:
                count[0] += 1
                if node_limit is not None and count[0] > node_limit:
                    raise _Limit
                dur = durs[i][m]
                dem = dems[i][m]
                t = earliest_start(est, dur, dem, placed, cap)
                f = t + dur
                new_mask = mask | (1 << i)
                starts[i], fins[i], modes[i] = t, f, m
                key = (
                    new_mask,
                    tuple((starts[j], modes[j]) for j in range(n) if new_mask >> j & 1),
                )
                if key in seen:
                    continue
                seen.add(key)
                new_cur = f if f > cur else cur
                if bound(new_mask, new_cur) >= best[0]:
                    continue
                placed.append((t, f, dem))
                dfs(new_mask, new_cur, left - 1)
                placed.pop()
                if done[0]:
                    return

    complete = True
    if best[0] > stop_at:
        try:
            dfs(0, 0.0, n)
        except _Limit:
            complete = False
    return EnumResult(best[0], best[1], best[2], complete, count[0])
