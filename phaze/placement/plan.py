"""Plans and their evaluation: the time and memory of a given placement (docs/placement.md).

:func:`evaluate` computes, straight from the formulas and independently of the dynamic
program, the stage loads, memory and time per batch of any plan: tensor width ``t``,
data-parallel degree ``d`` and stages in pipeline order. :func:`evaluate_baseline` does
it for the fixed Megatron-style plan. A plan that does not fit (memory, devices) comes
back with ``feasible=False`` and a reason; a malformed plan raises ``ConfigError``.

Conventions (those of the original solver, checked on its reference instances): the
stage holding the graph's first layers is the first of the pipeline, the ``s``-th from
the end of ``s`` stages; the last stage never recomputes; the data-parallel gradient
all-reduce term uses the first stage's parameter bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from phaze.errors import ConfigError
from phaze.placement.problem import PlacementProblem, WidthGraph, check_problem

__all__ = ["Plan", "Stage", "evaluate_baseline", "evaluate_plan"]


@dataclass(frozen=True, slots=True)
class Stage:
    """One pipeline stage of a plan.

    Attributes
    ----------
    layer_ids : tuple of int
        Its layers, in topological order.
    devices : int
        Devices it runs on (``t`` if it holds a tensor-parallel layer, else 1, in plans
        from :func:`~phaze.placement.place`).
    load_s : float
        Forward plus backward time of one micro-batch (with recomputation if it applies).
    memory_bytes : float
        ``2 P + O + A + (s-1) S`` for its position ``s`` from the end (docs/placement.md;
        in general ``F P + A + W + (s-1) S``, "Training accounting").
    recompute : bool
        It recomputes activations (recomputation on and not the last stage, unless the
        problem's ``recompute_last``).
    """

    layer_ids: tuple[int, ...]
    devices: int
    load_s: float
    memory_bytes: float
    recompute: bool


@dataclass(frozen=True, slots=True)
class Plan:
    """A placement: tensor width, data-parallel degree and pipeline stages.

    Attributes
    ----------
    tensor_width : int
    data_parallel : int
    stages : tuple of Stage
        In pipeline order (the first stage holds the graph's first layers).
    time_per_batch_s : float
        ``max load * (m + s - 1) + 4 (d-1) P_first / (BW d)``, ``m = ceil(M / d)``;
        ``inf`` when infeasible.
    num_micro_batches : int
        Micro-batches per global batch (M).
    micro_batch_size : int or None
        Samples per micro-batch when the problem knows it.
    feasible : bool
    reason : str
        Why the plan is infeasible ("" when feasible).
    interleave : int
        Model chunks per device ``v`` (docs/placement.md, "Interleaved plans"): with
        ``v > 1`` each stage's blocks run as ``v`` chunks, the time is ``max load (v m +
        s - 1) / v`` plus the data-parallel terms, and a stage's memory holds its
        interleaved in-flight activations.
    """

    tensor_width: int
    data_parallel: int
    stages: tuple[Stage, ...]
    time_per_batch_s: float
    num_micro_batches: int
    micro_batch_size: int | None = None
    feasible: bool = True
    reason: str = ""
    interleave: int = 1

    @property
    def num_stages(self) -> int:
        """Pipeline depth."""
        return len(self.stages)

    @property
    def stage_layers(self) -> tuple[tuple[int, ...], ...]:
        """Layer ids of every stage."""
        return tuple(st.layer_ids for st in self.stages)

    @property
    def devices_per_stage(self) -> tuple[int, ...]:
        """Devices of every stage (one pipeline)."""
        return tuple(st.devices for st in self.stages)

    @property
    def devices_used(self) -> int:
        """Devices of all ``d`` pipelines."""
        return self.data_parallel * sum(self.devices_per_stage)

    @property
    def micro_batches_per_pipeline(self) -> int:
        """``ceil(M / d)``."""
        return -(-self.num_micro_batches // self.data_parallel)

    @property
    def bottleneck_stage(self) -> int:
        """Index of the stage with the largest load (the first of equals)."""
        loads = [st.load_s for st in self.stages]
        return int(np.argmax(loads)) if loads else -1

    @property
    def throughput_micro_batches_per_s(self) -> float:
        """Micro-batches per second, ``M / time per batch`` (0 when infeasible)."""
        t = self.time_per_batch_s
        return self.num_micro_batches / t if self.feasible and 0 < t < math.inf else 0.0

    @property
    def throughput_samples_per_s(self) -> float | None:
        """Samples per second, ``B / time per batch`` (None without the micro-batch size)."""
        if self.micro_batch_size is None:
            return None
        return self.micro_batch_size * self.throughput_micro_batches_per_s

    def to_dict(self) -> dict:
        """JSON-ready dict (``time_per_batch_s`` is None when infeasible)."""
        return {
            "time_per_batch_s": self.time_per_batch_s if self.feasible else None,
            "tensor_width": self.tensor_width,
            "data_parallel": self.data_parallel,
            "num_stages": self.num_stages,
            "stage_layers": [list(s) for s in self.stage_layers],
            "devices_per_stage": list(self.devices_per_stage),
            "stage_load_s": [st.load_s for st in self.stages],
            "stage_memory_bytes": [st.memory_bytes for st in self.stages],
            "bottleneck_stage": self.bottleneck_stage,
            "throughput_micro_batches_per_s": self.throughput_micro_batches_per_s,
            "throughput_samples_per_s": self.throughput_samples_per_s,
            "feasible": self.feasible,
            "reason": self.reason,
            "interleave": self.interleave,
        }


def _stage_numbers(
    g: WidthGraph, members: np.ndarray, s_from_end: int, problem: PlacementProblem, d: int = 1
) -> tuple[float, float, float, bool]:
    """(load_s, memory_bytes, param_bytes, needs_t) of a stage in a plan of ``d``
    pipelines; list schedules in Python."""
    bw = problem.link_bandwidth_Bps
    inside = np.zeros(g.n_layers, dtype=bool)
    inside[members] = True
    order = sorted(int(v) for v in members)
    src, dst, nb = g.edge_src.tolist(), g.edge_dst.tolist(), g.edge_bytes.tolist()
    ins: dict[int, list[tuple[int, float]]] = {v: [] for v in order}
    outs: dict[int, list[tuple[int, float]]] = {v: [] for v in order}
    for u, v, c in zip(src, dst, nb, strict=True):
        if inside[v]:
            ins[v].append((u, c))
        if inside[u]:
            outs[u].append((v, c))
    fin: dict[int, float] = {}
    fin_local: dict[int, float] = {}
    for v in order:
        start, start_local = 0.0, 0.0
        for u, c in ins[v]:
            if inside[u]:
                start = max(start, fin[u])
                start_local = max(start_local, fin_local[u])
            else:
                start = max(start, c / bw)
        fin[v] = start + float(g.fwd_s[v])
        fin_local[v] = start_local + float(g.recompute_s[v])
    fwd = fin[order[-1]]
    recompute = _recomputes(problem, s_from_end)
    floor = fin_local[order[-1]] if recompute else 0.0
    back: dict[int, float] = {}
    for v in reversed(order):
        start = floor
        for w, c in outs[v]:
            start = max(start, back[w] if inside[w] else c / bw)
        back[v] = start + float(g.bwd_s[v])
    load = fwd + back[order[0]]
    p = float(g.param_bytes[members].sum())
    a = float(g.activation_bytes[members].sum())
    if problem.recompute and problem.stash_inputs:
        stash = sum(c for u, v, c in zip(src, dst, nb, strict=True) if inside[v] and not inside[u])
    else:
        stash = a
    work = float(g.work_bytes[members].max())
    memory = problem.state_factor_at(d) * p + a + work + (s_from_end - 1) * stash
    return load, memory, p, bool(g.tensor_parallel[members].any())


def _recomputes(problem: PlacementProblem, s_from_end: int) -> bool:
    """The stage at ``s_from_end`` recomputes: recomputation on, and not the last stage
    unless ``recompute_last``."""
    return problem.recompute and (s_from_end > 1 or problem.recompute_last)


def _plan_from_positions(
    problem: PlacementProblem,
    t: int,
    d: int,
    stages: Sequence[np.ndarray],
    devices: Sequence[int] | None,
    claimed_time: float | None = None,
) -> Plan:
    """Evaluate stages given as layer-position arrays (pipeline order)."""
    g = problem.graph(t)
    n_st = len(stages)
    out, reasons = [], []
    loads, p_first, bwd_first = [], 0.0, 0.0
    for q, members in enumerate(stages):
        s = n_st - q
        load, mem, p, needs_t = _stage_numbers(g, members, s, problem, d)
        need = t if needs_t else 1
        dev = need if devices is None else int(devices[q])
        if dev < need:
            reasons.append(
                f"stage {q} holds a tensor-parallel layer and needs {need} devices, has {dev}"
            )
        if not mem <= problem.hbm_bytes:
            reasons.append(
                f"stage {q} needs {mem:.6g} bytes per device, HBM has {problem.hbm_bytes:.6g}"
            )
        if q == 0:
            p_first = p
            bwd_first = float(g.bwd_s[members].sum())
        loads.append(load)
        out.append(
            Stage(
                layer_ids=tuple(int(v) for v in g.layer_ids[members]),
                devices=dev,
                load_s=load,
                memory_bytes=mem,
                recompute=_recomputes(problem, s),
            )
        )
    per_pipeline = problem.devices // d
    used = sum(st.devices for st in out)
    if used > per_pipeline:
        reasons.append(
            f"{d} pipelines of {used} devices need {d * used}, the cluster has {problem.devices}"
        )
    if d > problem.num_micro_batches:
        reasons.append(
            f"data_parallel={d} exceeds the {problem.num_micro_batches} micro-batches per batch"
        )
    worst = max(loads)
    if not worst < math.inf:
        reasons.append("a stage has an infinite latency")
    if reasons:
        time = math.inf
    elif claimed_time is not None:
        time = claimed_time
    else:
        m = -(-problem.num_micro_batches // d)
        comm = 0.0
        if d > 1:  # the gradient ring of d pipelines at stride t (devices of a wide stage)
            stride = t if any(st.devices > 1 for st in out) else 1
            bw, lat = problem.dp_allreduce(stride, d)
            sync = problem.dp_terms.sync_factor
            comm = sync * (d - 1) * p_first / (bw[d] * d) + 2.0 * (d - 1) * lat[d]
            if problem.dp_terms.overlap_dp:  # behind the first stage's last backward
                comm = max(0.0, comm - bwd_first)
        terms = problem.dp_terms
        if terms.step_s_per_B != 0.0 or terms.step_sharded_s_per_B != 0.0:
            comm += p_first * (terms.step_s_per_B + terms.step_sharded_s_per_B / d)
        time = worst * (m + n_st - 1) + comm
    return Plan(
        tensor_width=t,
        data_parallel=d,
        stages=tuple(out),
        time_per_batch_s=time,
        num_micro_batches=problem.num_micro_batches,
        micro_batch_size=problem.micro_batch_size,
        feasible=not reasons,
        reason="; ".join(reasons),
    )


def evaluate_plan(
    problem: PlacementProblem,
    tensor_width: int,
    data_parallel: int,
    stage_layers: Sequence[Sequence[int]],
    devices_per_stage: Sequence[int] | None = None,
) -> Plan:
    """Time and memory of a given plan, from the formulas of docs/placement.md.

    Parameters
    ----------
    problem : PlacementProblem
    tensor_width : int
        One of ``problem.widths``.
    data_parallel : int
        Pipeline replicas ``d >= 1``; each pipeline gets ``devices // d`` devices.
    stage_layers : sequence of sequences of layer ids
        The stages in pipeline order; together they hold every layer once, and no edge
        may go from a later stage to an earlier one.
    devices_per_stage : sequence of int, optional
        Devices of each stage; by default ``t`` for a stage with a tensor-parallel
        layer, else 1.

    Returns
    -------
    Plan
        With ``feasible=False``, ``time_per_batch_s=inf`` and a reason when the plan does
        not fit in memory or in the cluster, or a stage latency is infinite.

    Raises
    ------
    ConfigError
        Unknown width or layer, a layer missing or repeated, stages out of order, an
        empty stage, ``data_parallel < 1`` or a device count < 1.

    Examples
    --------
    >>> prob = PlacementProblem(widths=(1,), graphs=(WidthGraph(
    ...     [0, 1], [1.0, 1.0], [2.0, 2.0], [10, 10], [5, 5], [False, False],
    ...     [0], [1], [0.0]),), devices=2, link_bandwidth_Bps=1.0, hbm_bytes=100,
    ...     num_micro_batches=4, recompute=False)
    >>> plan = evaluate_plan(prob, 1, 1, [[0], [1]])
    >>> plan.feasible, plan.time_per_batch_s, [st.load_s for st in plan.stages]
    (True, 15.0, [3.0, 3.0])
    """
    g = check_problem(problem).graph(tensor_width)
    d = int(data_parallel) if not isinstance(data_parallel, bool) else 0
    if d < 1 or d != data_parallel:
        raise ConfigError(f"data_parallel={data_parallel!r} must be an integer >= 1")
    pos = {int(v): i for i, v in enumerate(g.layer_ids.tolist())}
    stage_of = np.full(g.n_layers, -1, dtype=np.int64)
    members = []
    if len(stage_layers) == 0:
        raise ConfigError("a plan needs at least one stage")
    for q, layers in enumerate(stage_layers):
        if len(layers) == 0:
            raise ConfigError(f"stage {q} is empty; every stage needs at least one layer")
        idx = []
        for lid in layers:
            if lid not in pos:
                raise ConfigError(f"stage {q} names layer {lid!r}, which the problem lacks")
            i = pos[lid]
            if stage_of[i] >= 0:
                raise ConfigError(f"layer {lid} is in stage {stage_of[i]} and stage {q}")
            stage_of[i] = q
            idx.append(i)
        members.append(np.array(sorted(idx), dtype=np.int64))
    missing = np.flatnonzero(stage_of < 0)
    if missing.size:
        raise ConfigError(f"layers {g.layer_ids[missing].tolist()} are in no stage")
    back = np.flatnonzero(stage_of[g.edge_src] > stage_of[g.edge_dst])
    if back.size:
        e = int(back[0])
        u, v = int(g.edge_src[e]), int(g.edge_dst[e])
        raise ConfigError(
            f"edge {g.layer_ids[u]} -> {g.layer_ids[v]} goes from stage "
            f"{stage_of[u]} back to stage {stage_of[v]}; stages must follow the "
            "graph's order"
        )
    if devices_per_stage is not None:
        if len(devices_per_stage) != len(members):
            raise ConfigError(
                f"devices_per_stage has {len(devices_per_stage)} entries for {len(members)} stages"
            )
        for q, dev in enumerate(devices_per_stage):
            if isinstance(dev, bool) or int(dev) != dev or dev < 1:
                raise ConfigError(f"devices_per_stage[{q}]={dev!r} must be an integer >= 1")
    return _plan_from_positions(problem, tensor_width, d, members, devices_per_stage)


def evaluate_baseline(problem: PlacementProblem) -> Plan:
    """Evaluate the problem's fixed Megatron-style plan (docs/placement.md).

    ``p`` stages of ``ceil(L / p)`` consecutive layers, ``L`` = ``num_blocks``: the layer
    at topological position ``k`` (the embedding is position 0) goes to stage
    ``min(k // ceil(L / p), p - 1)``, so the head and any overflow join the last stage;
    ``t`` devices per stage, ``d`` pipelines. This is what the original solver computes
    (it reproduces all five feasible reference baselines to 1e-9; the id-based split of
    the reference README, with the embedding added on top of the first stage's blocks,
    matches none of them). A plan that does not fit, or whose ``p`` leaves a stage
    empty, is returned with ``feasible=False`` (never raised).

    Raises
    ------
    ConfigError
        The problem has no fixed baseline.
    """
    fb = check_problem(problem).fixed_baseline
    if fb is None:
        raise ConfigError("the problem has no fixed baseline (fixedPP, fixedTMPC, fixedDP)")
    p, t, d, n_blocks = fb.pipeline_stages, fb.tensor_width, fb.data_parallel, fb.num_blocks
    per = -(-n_blocks // p)
    g = problem.graph(t)
    groups: list[list[int]] = [[] for _ in range(p)]
    for k in range(g.n_layers):
        groups[min(k // per, p - 1)].append(k)
    empty = [q for q, grp in enumerate(groups) if not grp]
    if empty:
        return Plan(
            tensor_width=t,
            data_parallel=d,
            stages=(),
            time_per_batch_s=math.inf,
            num_micro_batches=problem.num_micro_batches,
            micro_batch_size=problem.micro_batch_size,
            feasible=False,
            reason=f"p={p} stages of {per} blocks leave stage(s) {empty} empty",
        )
    members = [np.array(grp, dtype=np.int64) for grp in groups]
    return _plan_from_positions(problem, t, d, members, [t] * p)
