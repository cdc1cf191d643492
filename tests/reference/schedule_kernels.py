"""Plain-Python references of the scheduler kernels (:mod:`phaze._kernels.schedule`).

These are the scheduler's original pure-Python bounds, serial schedule-generation scheme,
list schedule and branch-and-bound enumeration, kept slow and obvious: lists and tuples,
one instance at a time, recursion for the enumeration tree, a Python set of exact partial
schedules. The kernels must agree with them exactly (same floats, same schedules, same
node counts).

An instance: ``n`` operators, ``preds`` / ``succs`` (lists of lists), ``topo`` (a
topological order), ``kinds`` (OpKind codes), ``l1`` / ``la`` (seconds on one core and on
all cores; ``la`` equals ``l1`` on COMM operators), ``cap`` = (tensor cores, vector cores,
1 link) effective capacities.
"""

from __future__ import annotations

TC, TC_VC, VC, COMM = 0, 1, 2, 3
R_TC, R_VC, R_LINK = 0, 1, 2
SINGLE_DEMAND = {TC: (1, 0, 0), TC_VC: (1, 1, 0), VC: (0, 1, 0), COMM: (0, 0, 1)}


def lower_bound(n, preds, topo, kinds, l1, la, cap_tc, cap_vc) -> float:
    """``max(critical path with min(L1, LA), work / capacity of every resource)``: the work
    of an operator on a core resource is its least core-seconds (``L1`` on one core or
    ``cap * LA`` on all); the link carries every COMM operator one at a time."""
    if n == 0:
        return 0.0
    dmin = [min(l1[i], l1[i] if kinds[i] == COMM else la[i]) for i in range(n)]
    finish = [0.0] * n
    for j in topo:
        finish[j] = max((finish[p] for p in preds[j]), default=0.0) + dmin[j]
    bound = max(finish)
    for members, cap in (((TC, TC_VC), cap_tc), ((VC, TC_VC), cap_vc)):
        rows = [i for i in range(n) if kinds[i] in members]
        if rows:
            c = float(cap)
            total = 0.0
            for i in rows:
                total += min(l1[i], c * la[i])
            bound = max(bound, total / c)
    comm = [i for i in range(n) if kinds[i] == COMM]
    if comm:
        total = 0.0
        for i in comm:
            total += l1[i]
        bound = max(bound, total)
    return bound


def can_intra(kinds, l1, la, i) -> bool:
    return kinds[i] != COMM and la[i] < l1[i]


def demand(kinds, cap, i, mode):
    return cap if mode else SINGLE_DEMAND[kinds[i]]


def fits(t, end, dem, placed, cap) -> bool:
    """Whether ``dem`` units fit over ``[t, end)`` next to ``placed`` (start, finish,
    demand) triples."""
    points = [t] + [s for s, _, _ in placed if t < s < end]
    for r in (R_TC, R_VC, R_LINK):
        need = dem[r]
        if not need:
            continue
        for p in points:
            used = sum(d[r] for s, f, d in placed if s <= p < f)
            if used > cap[r] - need:
                return False
    return True


def earliest_start(est, dur, dem, placed, cap) -> float:
    """Earliest ``t >= est`` (``est`` or a later finish) where the operator fits."""
    if dur <= 0.0 or fits(est, est + dur, dem, placed, cap):
        return est
    for t in sorted({f for _, f, _ in placed if f > est}):
        if fits(t, t + dur, dem, placed, cap):
            return t
    raise AssertionError("unreachable: after the last finish every resource is free")


def tails(n, succs, topo, durations) -> list[float]:
    tail = [0.0] * n
    for i in reversed(topo):
        tail[i] = durations[i] + max((tail[s] for s in succs[i]), default=0.0)
    return tail


def priority_order(n, preds, succs, priority) -> list[int]:
    """Repeatedly the ready operator of highest priority (ties: lowest index)."""
    left = [len(preds[i]) for i in range(n)]
    ready = [i for i in range(n) if left[i] == 0]
    order = []
    while ready:
        i = max(ready, key=lambda j: (priority[j], -j))
        ready.remove(i)
        order.append(i)
        for s in succs[i]:
            left[s] -= 1
            if left[s] == 0:
                ready.append(s)
    return order


def sgs(n, preds, kinds, durations, modes, order, cap):
    """Serial SGS of ``order``: (makespan, starts)."""
    starts, fins, placed = [0.0] * n, [0.0] * n, []
    makespan = 0.0
    for i in order:
        est = max((fins[p] for p in preds[i]), default=0.0)
        dem = demand(kinds, cap, i, modes[i])
        t = earliest_start(est, durations[i], dem, placed, cap)
        starts[i], fins[i] = t, t + durations[i]
        placed.append((t, fins[i], dem))
        makespan = max(makespan, fins[i])
    return makespan, starts


def list_schedule(n, preds, succs, topo, kinds, l1, la, cap):
    """(makespan, modes, starts) of the best of: all single-core; intra-op wherever
    faster; one greedy pass of single flips from the better of the two."""
    if n == 0:
        return 0.0, (), []

    def run(modes):
        durs = [la[i] if modes[i] else l1[i] for i in range(n)]
        order = priority_order(n, preds, succs, tails(n, succs, topo, durs))
        return sgs(n, preds, kinds, durs, modes, order, cap)

    single = (0,) * n
    ms, st = run(single)
    best = (ms, single, st)
    intra = tuple(1 if can_intra(kinds, l1, la, i) else 0 for i in range(n))
    if any(intra):
        ms, st = run(intra)
        if ms < best[0]:
            best = (ms, intra, st)
        modes = list(best[1])
        for i in range(n):
            if not intra[i]:
                continue
            modes[i] ^= 1
            ms, st = run(modes)
            if ms < best[0]:
                best = (ms, tuple(modes), st)
            else:
                modes[i] ^= 1
    return best


class _Limit(Exception):
    pass


def enumerate_exact(n, preds, succs, topo, kinds, l1, la, cap, ub, ub_modes, ub_starts, lb,
                    node_limit=None):  # fmt: skip
    """Branch and bound over serial SGS schedules (see the kernel's docstring):
    (makespan, modes, starts, complete, nodes)."""
    dmin = [min(l1[i], la[i]) for i in range(n)]
    tail = tails(n, succs, topo, dmin)
    mode_opts = [((1, 0) if can_intra(kinds, l1, la, i) else (0,)) for i in range(n)]
    area = [[0.0] * n, [0.0] * n]
    for r in (R_TC, R_VC):
        for i in range(n):
            if SINGLE_DEMAND[kinds[i]][r]:
                w = l1[i]
                if can_intra(kinds, l1, la, i) and cap[r] * la[i] < w:
                    w = cap[r] * la[i]
                area[r][i] = w / cap[r]
    rank = sorted(range(n), key=lambda i: (-tail[i], i))
    best = [ub, tuple(ub_modes), tuple(ub_starts)]
    starts, fins, modes = [0.0] * n, [0.0] * n, [0] * n
    placed: list = []
    seen: set = set()
    count = [0]
    done = [False]

    def bound(mask, cur):
        b = cur
        est = [0.0] * n
        first = [float("inf"), float("inf")]
        work = [0.0, 0.0]
        for i in topo:
            if mask >> i & 1:
                continue
            e = 0.0
            for p in preds[i]:
                e = max(e, fins[p] if mask >> p & 1 else est[p] + dmin[p])
            est[i] = e
            b = max(b, e + tail[i])
            for r in (R_TC, R_VC):
                if area[r][i]:
                    work[r] += area[r][i]
                    first[r] = min(first[r], e)
        for r in (R_TC, R_VC):
            if work[r] and first[r] + work[r] > b:
                b = first[r] + work[r]
        return b

    def dfs(mask, cur, left):
        if left == 0:
            if cur < best[0]:
                best[0], best[1], best[2] = cur, tuple(modes), tuple(starts)
                if cur <= lb:
                    done[0] = True
            return
        for i in rank:
            if mask >> i & 1 or not all(mask >> p & 1 for p in preds[i]):
                continue
            est = max((fins[p] for p in preds[i]), default=0.0)
            for m in mode_opts[i]:
                count[0] += 1
                if node_limit is not None and count[0] > node_limit:
                    raise _Limit
                dur = la[i] if m else l1[i]
                dem = demand(kinds, cap, i, m)
                t = earliest_start(est, dur, dem, placed, cap)
                new_mask = mask | (1 << i)
                starts[i], fins[i], modes[i] = t, t + dur, m
                key = (
                    new_mask,
                    tuple((starts[j], modes[j]) for j in range(n) if new_mask >> j & 1),
                )
                if key in seen:
                    continue
                seen.add(key)
                new_cur = max(cur, t + dur)
                if bound(new_mask, new_cur) >= best[0]:
                    continue
                placed.append((t, t + dur, dem))
                dfs(new_mask, new_cur, left - 1)
                placed.pop()
                if done[0]:
                    return

    complete = True
    if best[0] > lb:
        try:
            dfs(0, 0.0, n)
        except _Limit:
            complete = False
    return best[0], best[1], best[2], complete, count[0]
