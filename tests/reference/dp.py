"""Plain-Python references for the placement DP kernels (slow and obvious on purpose).

Written from the semantics of the placement problem, not from ``phaze._kernels.dp``:

* a **downset** is a set of layers closed under predecessors; the layers placed so far
  always form one, and a **stage** is ``D \\ D'`` for downsets ``D' < D``;
* a stage's memory is ``2 P + O + A + (s - 1) * stash`` at position ``s`` from the end of
  the pipeline (``O = P`` for Adam, ``stash`` = bytes entering the stage when recomputing,
  else ``A``), so its memory cap is the largest ``s`` that fits in HBM; under a training
  accounting ``F P + A + W + (s - 1) * stash`` (``F`` bytes of state per parameter byte,
  ``W`` the stage's largest per-layer working bytes, the stash ``A`` unless recomputing
  stages stash their inputs), with recomputation on every stage when ``recompute_last``
  and its forward over per-layer recomputation latencies;
* its load is the forward list schedule plus the backward one
  (:func:`reference.placement.stage_load`); a stage that another stage follows uses the
  recomputation load when recomputation is on, the last stage never recomputes;
* a stage needs ``t`` devices if it holds a tensor-parallel layer, else 1;
* ``G(R, k, s)``: the least largest stage load placing the unplaced layers ``R`` on at most
  ``k`` devices in exactly ``s`` stages, the first of them the ``s``-th from the end; the
  final round over the data-parallel degree ``d`` multiplies by ``m + s - 1`` micro-batch
  slots (``m = ceil(M / d)``) on ``N // d`` devices per pipeline and adds the gradient
  all-reduce of the first stage, ``4 (d - 1) P_first / (bandwidth d)``.

Nothing here shares code with the kernels: sets instead of bitsets or prefix sums,
explicit device counts instead of counting one-device stages, plain recursion.
"""

from __future__ import annotations

import math
from functools import cache
from itertools import combinations
from typing import NamedTuple

from reference.placement import stage_load

__all__ = [
    "FinalTerms",
    "StageRow",
    "TableStage",
    "allreduce_s",
    "best_time",
    "best_time_per_d",
    "data_parallel_s",
    "downsets",
    "downsets_by_subsets",
    "memory_position_cap",
    "plan_time",
    "stage_tables",
]


def memory_position_cap(const_bytes, stash_bytes, hbm_bytes, n_dev):
    """Largest ``s`` in ``1 .. n_dev`` with ``const + (s - 1) * stash <= hbm``, else 0.

    Checked one ``s`` at a time (exact for integer byte counts).
    """
    best = 0
    for s in range(1, n_dev + 1):
        if const_bytes + (s - 1) * stash_bytes <= hbm_bytes:
            best = s
    return best


def downsets(n_layers, edges):
    """Every downset of the DAG (``edges``: (u, v, ...) tuples) as a set of frozensets.

    Breadth-first over sets: from each downset found, add any layer whose predecessors
    are all in it (every downset is reached by adding its layers in topological order).
    """
    preds = {v: {e[0] for e in edges if e[1] == v} for v in range(n_layers)}
    found = {frozenset()}
    frontier = [frozenset()]
    while frontier:
        nxt = []
        for d in frontier:
            for v in range(n_layers):
                if v not in d and preds[v] <= d:
                    bigger = d | {v}
                    if bigger not in found:
                        found.add(bigger)
                        nxt.append(bigger)
        frontier = nxt
    return found


def downsets_by_subsets(n_layers, edges):
    """Every downset by trying every subset of layers (for a handful of layers only)."""
    out = set()
    for size in range(n_layers + 1):
        for members in combinations(range(n_layers), size):
            m = set(members)
            if all(u in m for u, v, *_ in edges if v in m):
                out.add(frozenset(m))
    return out


class StageRow(NamedTuple):
    """What the tables hold for one stage (see :func:`stage_tables`)."""

    load_last_s: float
    load_other_s: float
    max_position: int
    one_device: int
    param_bytes: float


def stage_tables(
    n_layers,
    edges,
    fwd_s,
    bwd_s,
    param_bytes,
    activation_bytes,
    tensor_parallel,
    bandwidth_Bps,
    hbm_bytes,
    n_dev,
    t,
    recompute,
    adam,
    rules=None,
):
    """Every stage of the graph with its load, memory cap, device need and parameters.

    ``rules``: the training accounting as in :func:`reference.placement.plan_time`
    (``state_factor``, ``recompute_last``, ``stash_inputs``, ``rec``, ``work``; default
    the paper's).

    Returns
    -------
    stages : dict
        ``(placed, stage) -> StageRow`` for downsets ``placed < placed | stage``:
        ``load_last_s`` the load as the pipeline's last stage (no recomputation),
        ``load_other_s`` its load when a stage follows (recomputation if on),
        ``max_position`` its memory cap, ``one_device`` 1 when ``t > 1`` and it holds no
        tensor-parallel layer, ``param_bytes`` its parameter bytes.
    states : dict
        ``unplaced -> (layers, one_device_layers)``: the number of unplaced layers and
        how many of them are not tensor-parallel (0 when ``t == 1``).
    """
    rules = rules or {}
    factor = rules.get("state_factor", 3 if adam else 2)
    recompute_last = rules.get("recompute_last", False)
    stash_inputs = rules.get("stash_inputs", True)
    rec = rules.get("rec", fwd_s)
    work = rules.get("work", [0.0] * n_layers)
    everything = frozenset(range(n_layers))
    downs = downsets(n_layers, edges)
    stages = {}
    for before in downs:
        for after in downs:
            if not before < after:
                continue
            stage = after - before
            p = sum(param_bytes[v] for v in stage)
            a = sum(activation_bytes[v] for v in stage)
            entering = sum(e[2] for e in edges if e[1] in stage and e[0] not in stage)
            const = factor * p + a + max(work[v] for v in stage)
            stash = entering if (recompute and stash_inputs) else a
            last_rc = recompute and recompute_last
            stages[(before, stage)] = StageRow(
                load_last_s=stage_load(stage, edges, fwd_s, bwd_s, bandwidth_Bps, last_rc, rec),
                load_other_s=stage_load(stage, edges, fwd_s, bwd_s, bandwidth_Bps, recompute, rec),
                max_position=memory_position_cap(const, stash, hbm_bytes, n_dev),
                one_device=int(t > 1 and not any(tensor_parallel[v] for v in stage)),
                param_bytes=p,
            )
    states = {}
    for placed in downs:
        unplaced = everything - placed
        cheap = sum(1 for v in unplaced if not tensor_parallel[v]) if t > 1 else 0
        states[unplaced] = (len(unplaced), cheap)
    return stages, states


class TableStage(NamedTuple):
    """One stage as the DP sees it: where it leads and what it costs (``overlap_s``: the
    backward seconds a data-parallel synchronisation may hide behind when it is the first
    stage)."""

    next_state: object
    load_last_s: float
    load_other_s: float
    max_position: int
    devices: int
    param_bytes: float
    overlap_s: float = 0.0


class FinalTerms(NamedTuple):
    """The data-parallel terms of the final round beyond the paper's all-reduce.

    ``sync``: bytes moved per parameter byte times ``d / (d-1)`` (4: all-reduce, 3:
    reduce-scatter + all-gather); ``overlap``: subtract the first stage's ``overlap_s``
    from the synchronisation, never below 0; ``step``, ``step_sharded``: optimizer-step
    seconds per parameter byte of the first stage, the second divided by ``d``; only
    ``d_lo <= d <= d_hi`` are candidates.
    """

    sync: float = 4.0
    overlap: bool = False
    step: float = 0.0
    step_sharded: float = 0.0
    d_lo: int = 1
    d_hi: int = 10**9


def data_parallel_s(d, stage, bandwidth_Bps, latency_s=None, terms=None):
    """Seconds the first ``stage`` adds with ``d`` pipelines: the synchronisation ring
    (less the overlap) plus the optimizer step (:class:`FinalTerms`)."""
    terms = terms or FinalTerms()
    bw = bandwidth_Bps if isinstance(bandwidth_Bps, (int, float)) else bandwidth_Bps[d]
    lat = 0.0 if latency_s is None else latency_s[d]
    sync = terms.sync * (d - 1) * stage.param_bytes / (bw * d) + 2 * (d - 1) * lat
    if terms.overlap:
        sync = max(0.0, sync - stage.overlap_s)
    return sync + stage.param_bytes * (terms.step + terms.step_sharded / d)


def allreduce_s(d, param_bytes, bandwidth_Bps, latency_s=None):
    """The data-parallel term of ``d`` pipelines: ``4 (d - 1) P / (BW d) + 2 (d - 1) a``.

    ``bandwidth_Bps`` is the link's (a number) or per ``d`` (a sequence indexed by
    ``d``: the ring's bandwidth on the network levels it spans); ``latency_s`` per ``d``
    (default none).
    """
    bw = bandwidth_Bps if isinstance(bandwidth_Bps, (int, float)) else bandwidth_Bps[d]
    lat = 0.0 if latency_s is None else latency_s[d]
    return 4 * (d - 1) * param_bytes / (bw * d) + 2 * (d - 1) * lat


def best_time(
    stages_from,
    first_state,
    last_state,
    n_dev,
    micro_batches,
    bandwidth_Bps,
    latency_s=None,
    terms=None,
):
    """Least time per batch over every pipeline and data-parallel degree (``inf``: none).

    ``stages_from[state]``: the :class:`TableStage` list that can be placed first from
    ``state`` (the unplaced layers); ``last_state``: nothing left to place; ``terms``: a
    :class:`FinalTerms` (default the paper's all-reduce, every ``d``).
    """
    terms = terms or FinalTerms()
    per_d = best_time_per_d(
        stages_from, first_state, last_state, n_dev, micro_batches, bandwidth_Bps, latency_s, terms
    )
    return min((v for d, v in per_d.items() if terms.d_lo <= d <= terms.d_hi), default=math.inf)


def best_time_per_d(
    stages_from,
    first_state,
    last_state,
    n_dev,
    micro_batches,
    bandwidth_Bps,
    latency_s=None,
    terms=None,
):
    """``{d: least time per batch with d pipelines}`` for ``d = 1 ... min(n_dev, M)``
    (``inf``: nothing fits), as :func:`best_time` without the range of ``d``."""
    terms = terms or FinalTerms()

    @cache
    def g(state, k, s):
        # least largest load placing ``state`` on at most k devices in exactly s stages
        if state == last_state:
            return 0.0 if s == 0 else math.inf
        if s == 0:
            return math.inf
        best = math.inf
        for st in stages_from.get(state, ()):
            if st.devices > k or s > st.max_position:
                continue
            rest = g(st.next_state, k - st.devices, s - 1)
            load = st.load_last_s if s == 1 else st.load_other_s
            best = min(best, max(rest, load))
        return best

    out = {}
    for d in range(1, min(n_dev, micro_batches) + 1):
        n = n_dev // d
        m = -(-micro_batches // d)
        best = math.inf
        for st in stages_from.get(first_state, ()):
            if st.devices > n:
                continue
            for s in range(1, min(st.max_position, n) + 1):
                rest = g(st.next_state, n - st.devices, s - 1)
                load = st.load_last_s if s == 1 else st.load_other_s
                worst = max(rest, load)
                if worst == math.inf:
                    continue
                tm = worst * (m + s - 1) + data_parallel_s(d, st, bandwidth_Bps, latency_s, terms)
                best = min(best, tm)
        out[d] = best
    return out


def plan_time(
    stages_from,
    pipeline,
    d,
    first_state,
    last_state,
    n_dev,
    micro_batches,
    bandwidth_Bps,
    latency_s=None,
    terms=None,
):
    """Time per batch of one pipeline (:class:`TableStage` list, first stage first).

    ``inf`` when it is not a path of ``stages_from`` from ``first_state`` to
    ``last_state``, uses more than ``n_dev // d`` devices, breaks a stage's memory cap or
    has ``d`` out of range.
    """
    if not 1 <= d <= min(n_dev, micro_batches) or not pipeline:
        return math.inf
    state = first_state
    for st in pipeline:
        if st not in stages_from.get(state, ()):
            return math.inf
        state = st.next_state
    if state != last_state or sum(st.devices for st in pipeline) > n_dev // d:
        return math.inf
    s = len(pipeline)
    loads = []
    for j, st in enumerate(pipeline):
        position = s - j
        if position > st.max_position:
            return math.inf
        loads.append(st.load_last_s if position == 1 else st.load_other_s)
    m = -(-micro_batches // d)
    comm = data_parallel_s(d, pipeline[0], bandwidth_Bps, latency_s, terms)
    return max(loads) * (m + s - 1) + comm
