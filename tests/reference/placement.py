"""Brute-force device placement, written from the semantics in docs/placement.md (slow on purpose).

Enumerates every plan: every ordered partition of the layers into stages such that each
union of the first stages is a downset (for a chain: every split into runs of
consecutive layers), every tensor width and every data-parallel degree ``d``, and
returns the least time per batch. Nothing here is shared with the kernels.

Device counts: a stage's load and memory do not depend on how many devices it gets
beyond the ``a`` it needs (``t`` with a tensor-parallel layer, else 1), so a device
assignment for one pipeline exists exactly when the stages' ``a`` sum to at most
``devices // d``; that is what is checked.

Conventions (those of the original solver's reference instances): the stages are in
pipeline order, the first holds the graph's first layers and is the ``s``-th from the
end of ``s`` stages; the last stage never recomputes; the data-parallel term uses the
first stage's parameter bytes.
"""

from __future__ import annotations

import math
from itertools import combinations

__all__ = ["brute_force", "ordered_stage_partitions", "plan_time", "stage_load"]


def stage_load(layers, edges, fwd, bwd, bandwidth, recompute_here, rec=None):
    """Forward plus backward time of one micro-batch through a stage.

    ``layers``: the stage's layer positions; ``edges``: (u, v, bytes) triples with u < v
    (topological positions). Forward: a layer starts when its in-stage predecessors have
    finished and inputs from outside have arrived (bytes / bandwidth); ``fwd`` is the
    finish time of the stage's last layer in topological order. Backward likewise on
    the reversed graph; ``bwd`` is the finish of the stage's first layer. With
    recomputation the backward's layers all start no earlier than ``fwd'``, a forward
    that waits for no outside input and takes ``rec[v]`` per layer (default ``fwd``: the
    whole forward again).
    """
    rec = fwd if rec is None else rec
    order = sorted(layers)
    inside = set(order)
    into = {v: [] for v in order}
    out_of = {v: [] for v in order}
    for u, w, c in edges:
        if w in inside:
            into[w].append((u, c))
        if u in inside:
            out_of[u].append((w, c))
    finish = {}
    finish_local = {}
    for v in order:
        ready = 0.0
        ready_local = 0.0
        for u, c in into[v]:
            if u in inside:
                ready = max(ready, finish[u])
                ready_local = max(ready_local, finish_local[u])
            else:
                ready = max(ready, c / bandwidth)
        finish[v] = ready + fwd[v]
        finish_local[v] = ready_local + rec[v]
    forward = finish[order[-1]]
    earliest = finish_local[order[-1]] if recompute_here else 0.0
    back = {}
    for v in reversed(order):
        ready = earliest
        for w, c in out_of[v]:
            ready = max(ready, back[w] if w in inside else c / bandwidth)
        back[v] = ready + bwd[v]
    return forward + back[order[0]]


def _is_downset(members, edges):
    return all(u in members for u, v, _ in edges if v in members)


def ordered_stage_partitions(n_layers, edges):
    """Yield every list of stages (sets of positions) whose prefixes are downsets."""

    def rec(placed, remaining):
        if not remaining:
            yield []
            return
        rem = sorted(remaining)
        for size in range(1, len(rem) + 1):
            for stage in combinations(rem, size):
                new = placed | set(stage)
                if not _is_downset(new, edges):
                    continue
                for rest in rec(new, remaining - set(stage)):
                    yield [set(stage), *rest]

    yield from rec(set(), set(range(n_layers)))


def plan_time(
    stages, t, d, graph, devices, bandwidth, hbm, micro_batches, recompute, adam, rules=None
):
    """Time per batch of one plan (``inf`` when it does not fit), straight from s. 8.

    ``rules`` (docs/placement.md, "Training accounting"), default the paper's: a dict
    with ``state_factor`` (bytes of state per parameter byte; default 3 with ``adam``,
    else 2), ``recompute_last`` (the last stage recomputes too), ``stash_inputs`` (a
    recomputing stage stashes its entering bytes, else its activations), and per layer
    in ``graph``: ``rec`` (recomputation latency, default ``fwd``), ``work`` (working
    bytes, default 0; a stage needs its largest once); ``network`` (a
    ``phaze.systems.Network``: the data-parallel all-reduce is a ring of ``d`` members at
    stride ``t``, ``4 (d-1) P / (B d) + 2 (d-1) a`` with the ring's bandwidth ``B`` and
    step latency ``a``).

    Data-parallel terms (``rules["dp_terms"]``, a ``phaze.placement.DataParallelTerms``;
    default the paper's): ``S = sharded_state_factor`` of the state is divided by ``d``
    (a stage's state is ``(F - S + S / d) P``); the synchronisation moves
    ``sync_factor`` instead of 4 bytes per parameter byte (times ``(d-1)/d``); with
    ``overlap_dp`` it hides behind the first stage's backward (the sum of its layers'
    ``bwd``), never below 0; the optimizer step adds ``P_first (step_s_per_B +
    step_sharded_s_per_B / d)``.
    """
    rules = rules or {}
    terms = rules.get("dp_terms")
    sharded = 0.0 if terms is None else terms.sharded_state_factor
    factor = rules.get("state_factor", 3 if adam else 2)
    if sharded:
        factor = (factor - sharded) + sharded / d
    recompute_last = rules.get("recompute_last", False)
    stash_inputs = rules.get("stash_inputs", True)
    fwd, bwd = graph["fwd"], graph["bwd"]
    rec = graph.get("rec", fwd)
    work = graph.get("work", [0.0] * len(fwd))
    params, acts, tp, edges = graph["params"], graph["acts"], graph["tp"], graph["edges"]
    n_stages = len(stages)
    if d > min(devices, micro_batches):
        return math.inf
    need = sum(t if any(tp[v] for v in st) else 1 for st in stages)
    if need > devices // d:
        return math.inf
    loads = []
    for q, st in enumerate(stages):
        s = n_stages - q  # position from the end
        p = sum(params[v] for v in st)
        a = sum(acts[v] for v in st)
        if recompute and stash_inputs:
            stash = sum(c for u, v, c in edges if v in st and u not in st)
        else:
            stash = a
        w = max(work[v] for v in st)
        memory = factor * p + a + w + (s - 1) * stash
        if memory > hbm:
            return math.inf
        here = recompute and (s > 1 or recompute_last)
        loads.append(stage_load(st, edges, fwd, bwd, bandwidth, here, rec))
    m = -(-micro_batches // d)
    p_first = sum(params[v] for v in stages[0])
    bw, lat = bandwidth, 0.0
    if rules.get("network") is not None and d > 1:
        # the gradient ring of d pipelines at stride t (ranks: tensor, data, pipeline)
        wide = any(any(tp[v] for v in st) for st in stages) and t > 1
        bw, lat = rules["network"].ring(d, t if wide else 1)
    sync = 4 if terms is None else terms.sync_factor
    comm = sync * (d - 1) * p_first / (bw * d) + 2 * (d - 1) * lat
    if terms is not None and terms.overlap_dp:
        comm = max(0.0, comm - sum(bwd[v] for v in stages[0]))
    if terms is not None:
        comm += p_first * (terms.step_s_per_B + terms.step_sharded_s_per_B / d)
    return max(loads) * (m + n_stages - 1) + comm


def brute_force(graphs, devices, bandwidth, hbm, micro_batches, recompute, adam, rules=None):
    """Least time per batch at every width: ``{t: time}`` (``inf`` = nothing fits).

    ``graphs``: ``{t: {"fwd", "bwd", "params", "acts", "tp": lists per layer position,
    "edges": [(u, v, bytes)]}}`` with every width's layers in the same topological order.
    """
    out = {}
    for t, g in graphs.items():
        n = len(g["fwd"])
        best = math.inf
        for stages in ordered_stage_partitions(n, g["edges"]):
            for d in range(1, min(devices, micro_batches) + 1):
                tm = plan_time(
                    stages, t, d, g, devices, bandwidth, hbm, micro_batches, recompute, adam, rules
                )
                best = min(best, tm)
        out[t] = best
    return out


def interleaved_in_flight(k, v, n_stages, m):
    """Micro-batches of activations in flight on the ``k``-th device from the end with
    ``v`` chunks each: Megatron's warm-up ``2 (k - 1) + (v - 1) p`` chunks plus the one
    running, each ``1 / v`` of the device's activations, never more than ``m``."""
    e = (2 * k - 1 + (v - 1) * n_stages) / v
    return min(e, m)


def chunks_of(stage, blocks, v):
    """The ``v`` chunks of a stage (consecutive positions): equal runs of its blocks,
    other layers with the blocks before them (the first chunk when none); None when the
    block count is not a positive multiple of ``v``."""
    order = sorted(stage)
    ids = [x for x in order if blocks[x]]
    if not ids or len(ids) % v:
        return None
    q = len(ids) // v
    starts = [ids[c * q] for c in range(1, v)]
    out, cur = [], []
    for x in order:
        if x in starts:
            out.append(cur)
            cur = []
        cur.append(x)
    out.append(cur)
    return out


def interleaved_plan_time(
    stages, v, t, d, graph, devices, bandwidth, hbm, micro_batches, recompute, rules
):
    """Time per batch of one interleaved plan (``v >= 2`` chunks per device), written
    from docs/placement.md ("Interleaved plans"): at least 2 stages; ``m`` a multiple of
    the stage count; each stage's load is the sum of its chunks' loads (each chunk a
    stage of its own for :func:`stage_load`); memory ``F P + A + W + (e - 1) A`` with
    ``e`` of :func:`interleaved_in_flight`; time ``max load (v m + p - 1) / v`` plus the
    data-parallel terms of :func:`plan_time`. ``rules`` as :func:`plan_time` (Megatron's:
    ``stash_inputs`` False) plus ``blocks`` (per position: a transformer block)."""
    n_stages = len(stages)
    m = -(-micro_batches // d)
    if n_stages < 2 or m % n_stages or d > min(devices, micro_batches):
        return math.inf
    terms = rules.get("dp_terms")
    sharded = 0.0 if terms is None else terms.sharded_state_factor
    factor = rules["state_factor"]
    if sharded:
        factor = (factor - sharded) + sharded / d
    fwd, bwd = graph["fwd"], graph["bwd"]
    rec = graph.get("rec", fwd)
    work = graph.get("work", [0.0] * len(fwd))
    params, acts, tp, edges = graph["params"], graph["acts"], graph["tp"], graph["edges"]
    if sum(t if any(tp[v_] for v_ in st) else 1 for st in stages) > devices // d:
        return math.inf
    loads = []
    for q, st in enumerate(stages):
        k = n_stages - q
        chunks = chunks_of(st, rules["blocks"], v)
        if chunks is None:
            return math.inf
        p = sum(params[x] for x in st)
        a = sum(acts[x] for x in st)
        w = max(work[x] for x in st)
        e = interleaved_in_flight(k, v, n_stages, m)
        if factor * p + a + w + (e - 1.0) * a > hbm:
            return math.inf
        here = recompute and (k > 1 or rules.get("recompute_last", False))
        loads.append(sum(stage_load(c, edges, fwd, bwd, bandwidth, here, rec) for c in chunks))
    p_first = sum(params[x] for x in stages[0])
    bw, lat = bandwidth, 0.0
    if rules.get("network") is not None and d > 1:
        wide = any(any(tp[x] for x in st) for st in stages) and t > 1
        bw, lat = rules["network"].ring(d, t if wide else 1)
    sync = 4 if terms is None else terms.sync_factor
    comm = sync * (d - 1) * p_first / (bw * d) + 2 * (d - 1) * lat
    if terms is not None and terms.overlap_dp:
        comm = max(0.0, comm - sum(bwd[x] for x in stages[0]))
    if terms is not None:
        comm += p_first * (terms.step_s_per_B + terms.step_sharded_s_per_B / d)
    return max(loads) * (v * m + n_stages - 1) / v + comm


def brute_force_interleaved(
    graphs, devices, bandwidth, hbm, micro_batches, recompute, rules, interleaves
):
    """Least time per batch at every width over every chain split, ``d`` and candidate
    ``v`` (1: :func:`plan_time`; else :func:`interleaved_plan_time`): ``{t: (time, v)}``,
    ties to the smaller ``v``."""
    out = {}
    for t, g in graphs.items():
        n = len(g["fwd"])
        best = (math.inf, 0)
        for stages in ordered_stage_partitions(n, g["edges"]):
            for d in range(1, min(devices, micro_batches) + 1):
                for v in sorted(interleaves):
                    if v == 1:
                        tm = plan_time(
                            stages, t, d, g, devices, bandwidth, hbm, micro_batches,
                            recompute, True, rules,
                        )  # fmt: skip
                    else:
                        tm = interleaved_plan_time(
                            stages, v, t, d, g, devices, bandwidth, hbm, micro_batches,
                            recompute, rules,
                        )  # fmt: skip
                    if tm < best[0] or (tm == best[0] and v < best[1]):
                        best = (tm, v)
        out[t] = best
    return out
