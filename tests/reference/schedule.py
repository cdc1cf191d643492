"""Brute-force layer scheduling, written from the problem statement (docs/scheduling.md);
slow and obvious on purpose.

Resources: ``num_tc`` tensor cores, ``num_vc`` vector cores, one link. Single-core mode:
TC holds 1 tensor core, VC 1 vector core, TC_VC one of each, COMM the link. All-cores mode
(not COMM): every tensor core, every vector core and the link -- the operator runs alone.

Optimum: the least makespan over every mode vector (each non-COMM operator single or all
cores) x every precedence-feasible priority list, each list decoded by the serial
schedule-generation scheme (place the next operator at its earliest start where its
predecessors have finished and its resources are free for its whole duration). The serial
SGS over all lists generates every active schedule, and some active schedule is optimal.
"""

from __future__ import annotations

import itertools

TC, TC_VC, VC, COMM = 0, 1, 2, 3


def demand(kind: int, all_cores: bool, num_tc: int, num_vc: int) -> tuple[int, int, int]:
    """(tensor cores, vector cores, link) held by an operator."""
    if all_cores:
        return (num_tc, num_vc, 1)
    return {TC: (1, 0, 0), TC_VC: (1, 1, 0), VC: (0, 1, 0), COMM: (0, 0, 1)}[kind]


def linear_extensions(n: int, edges) -> list[tuple[int, ...]]:
    """Every ordering of 0..n-1 in which each edge's source comes first."""
    preds = {j: {a for a, b in edges if b == j} for j in range(n)}
    out = []

    def rec(prefix: list[int], left: set[int]) -> None:
        if not left:
            out.append(tuple(prefix))
            return
        for j in sorted(left):
            if preds[j] <= set(prefix):
                rec(prefix + [j], left - {j})

    rec([], set(range(n)))
    return out


def serial_sgs(n, edges, kinds, durations, modes, order, num_tc, num_vc):
    """Decode ``order`` with the serial SGS; returns (makespan, starts)."""
    cap = (num_tc, num_vc, 1)
    start = [None] * n
    finish = [None] * n
    for j in order:
        ready = max([finish[a] for a, b in edges if b == j], default=0.0)
        need = demand(kinds[j], modes[j], num_tc, num_vc)
        d = durations[j]
        candidates = sorted({ready} | {f for f in finish if f is not None and f > ready})
        for t in candidates:
            # resource usage is constant between events; check every event in [t, t + d)
            events = {t} | {s for s in start if s is not None and t < s < t + d}
            ok = True
            for e in events if d > 0 else ():
                for r in range(3):
                    used = sum(
                        demand(kinds[k], modes[k], num_tc, num_vc)[r]
                        for k in range(n)
                        if start[k] is not None and start[k] <= e < finish[k]
                    )
                    if used + need[r] > cap[r]:
                        ok = False
            if ok:
                start[j], finish[j] = t, t + d
                break
    return max(finish, default=0.0), start


def brute_force(n, edges, kinds, lat_one, lat_all, num_tc, num_vc):
    """Least makespan by exhaustive enumeration; returns (makespan, modes, starts)."""
    best = (float("inf"), None, None)
    choices = [(False,) if kinds[i] == COMM else (False, True) for i in range(n)]
    orders = linear_extensions(n, edges)
    for modes in itertools.product(*choices):
        durations = [lat_all[i] if modes[i] else lat_one[i] for i in range(n)]
        for order in orders:
            ms, starts = serial_sgs(n, edges, kinds, durations, modes, order, num_tc, num_vc)
            if ms < best[0]:
                best = (ms, modes, starts)
    return best


def count_linear_extensions(n: int, edges) -> int:
    """Number of precedence-feasible orders (dynamic programme over subsets)."""
    pred_mask = [0] * n
    for a, b in edges:
        pred_mask[b] |= 1 << a
    ways = [0] * (1 << n)
    ways[0] = 1
    for mask in range(1 << n):
        if ways[mask]:
            for j in range(n):
                if not mask >> j & 1 and pred_mask[j] & mask == pred_mask[j]:
                    ways[mask | 1 << j] += ways[mask]
    return ways[(1 << n) - 1]
