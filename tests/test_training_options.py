"""Megatron's options in the joint search (phaze.training, phaze.placement.data_parallel).

* without options, Megatron's accounting reproduces rows computed before the options
  existed, bit for bit;
* the distributed optimizer: stage bytes equal the systems engine's
  (``phaze.systems.memory_per_device``, ``6 + 12 / d`` bytes per parameter) on uniform
  splits; the synchronisation is the systems engine's reduce-scatter + all-gather; every
  plan the joint search returns fits under the systems engine's formulas; the exact
  search equals the exhaustive one;
* sequence parallelism: the operators outside the tensor-parallel regions work on
  ``s/t`` tokens, the activation bytes are the systems engine's, layers get no slower,
  and plans fit under the systems engine's formulas;
* on a model small enough to enumerate, the joint search's placement with every option
  equals a brute force over every split and ``d`` written from the rules
  (tests/reference/placement.py; random problems with every data-parallel term:
  tests/test_training.py and tests/test_dp_kernels.py);
* the command line's flags and the sweep files set the options; bad combinations are
  ConfigErrors naming the value (exit status 2, one line); the result store's
  fingerprint changes with the options, and sweeps without them keep their keys.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from reference.golden_searches import SPACE as GOLDEN_SPACE
from reference.golden_searches import megatron_rows
from reference.placement import brute_force

import phaze
from phaze import GIB, Cluster, ConfigError, Training, Workload, preset
from phaze.cli import main
from phaze.joint.core import fingerprint
from phaze.models import TransformerSpec, build_graph
from phaze.placement import DataParallelTerms, evaluate_plan, place_arrays, place_per_width
from phaze.sweeps import SweepCell, parse_sweep
from phaze.sweeps.cell import run_cell
from phaze.systems.training import (
    TrainingPlan,
    block_activation_bytes,
    end_activation_bytes,
    memory_per_device,
    stage_params,
)
from phaze.training import MEGATRON_OPTIONS

DATA = Path(__file__).parent / "data"
#: Stage bytes: sums of integer-valued floats; the sharded state (12 / d bytes per
#: parameter) is not an integer, and the two engines multiply in other orders.
BYTES_REL = 1e-12
#: Seconds of collectives computed by two formulas of the same terms.
TIME_REL = 1e-12

SPACE = phaze.DesignSpace(**GOLDEN_SPACE)
TINY = phaze.DesignSpace(
    num_tc=(8,),
    num_vc=(2,),
    tc_width=(128,),
    tc_depth=(128,),
    vc_width=(128,),
    glb_bytes=(2**27,),
    area_band=0.0,
)


def _close(a: float, b: float, rel: float) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rel * max(abs(a), abs(b), 1.0)


# --- Megatron without options is unchanged --------------------------------------------------


def test_megatron_rows_without_options_equal_those_computed_before_the_options_existed():
    want = json.loads((DATA / "megatron_search_rows.json").read_text())
    got_all = megatron_rows()
    assert set(got_all) == set(want)
    for mode, got in got_all.items():
        # the interleave column came later: every plan without the option has v = 1
        assert got.pop("interleave") == [1] * len(got["throughput"])
        assert set(got) == set(want[mode])
        for key, values in want[mode].items():
            assert got[key] == values, f"{mode}: column {key} differs"
        assert any(x > 0 for x in got["throughput"]) and any(x == 0 for x in got["throughput"])


# --- the distributed optimizer -------------------------------------------------------------


def _evaluator(spec, seq, batch, devices, mbs, training, network=None):
    w = Workload(
        spec,
        seq_len=seq,
        global_batch=batch,
        optimizer="adam",
        max_tensor_width=2,
        training=training,
    )
    cluster = Cluster(devices, network=network)
    return phaze.joint.WorkloadEvaluator(w, cluster, TINY.enumerate(), [mbs])


@pytest.mark.parametrize("mode", ["none", "full"])
def test_distributed_optimizer_stage_bytes_equal_the_systems_engine_on_uniform_splits(mode):
    spec, seq, batch, mbs = preset("megatron-gpt2-xl"), 512, 256, 2
    training = Training("megatron", "full", distributed_optimizer=True)
    ev = _evaluator(spec, seq, batch, 64, mbs, training)
    problem = ev.problem(mbs, 0, 80e9, recompute=mode != "none")
    checked = 0
    for t in (1, 2):
        for p, d in ((2, 1), (2, 2), (4, 4), (5, 8), (8, 8)):
            n = problem.graph(t).n_layers  # embedding, 40 blocks, head
            per = spec.layers // p
            stages = [[i * per + k + 1 for k in range(per)] for i in range(p)]
            stages[0].insert(0, 0)
            stages[-1].append(n - 1)
            ids = problem.layer_ids
            plan = evaluate_plan(problem, t, d, [[int(ids[v]) for v in s] for s in stages])
            tp = TrainingPlan(t, p, d, mbs, batch, recompute_mode=mode, distributed_optimizer=True)
            for i, stage in enumerate(plan.stages):
                want = memory_per_device(spec, tp, seq, stage=i)
                got = stage.memory_bytes
                where = f"t={t} p={p} d={d} stage {i}: phaze {got}, systems engine {want}"
                assert _close(got, want, BYTES_REL), where
                checked += 1
            if d > 1:  # sharding saves memory on every stage
                flat = dataclasses.replace(problem, dp_terms=DataParallelTerms())
                unsharded = evaluate_plan(flat, t, d, [[int(ids[v]) for v in s] for s in stages])
                assert all(
                    a.memory_bytes < b.memory_bytes
                    for a, b in zip(plan.stages, unsharded.stages, strict=True)
                )
    assert checked > 0


@pytest.mark.parametrize("t", [1, 2])
def test_distributed_optimizer_sync_is_the_systems_engine_reduce_scatter_and_all_gather(t):
    spec, seq, batch, mbs = preset("megatron-gpt2-xl"), 512, 256, 2
    net = phaze.load_system("a100-selene").network
    training = Training("megatron", "full", distributed_optimizer=True)
    ev = _evaluator(spec, seq, batch, 256, mbs, training, network=net)
    problem = ev.problem(mbs, 0, 80e9, recompute=False)
    n = problem.graph(t).n_layers
    ids = problem.layer_ids.tolist()
    stages = [ids[: n // 2], ids[n // 2 :]]
    for d in (1, 2, 4, 16, 64):
        plan = evaluate_plan(problem, t, d, stages)
        assert plan.feasible, plan.reason
        m = plan.micro_batches_per_pipeline
        sync = plan.time_per_batch_s - max(s.load_s for s in plan.stages) * (m + 1)
        first_params = (
            sum(problem.graph(t).param_bytes[ids.index(v)] for v in plan.stages[0].layer_ids) / 2
        )  # parameters of one device (2-byte weights)
        # Megatron's ranks: tensor-parallel groups consecutive, data-parallel peers at
        # stride t; fp32 gradients reduce-scattered, fp16 weights all-gathered
        want = net.reduce_scatter_s(4 * first_params, d, t) + net.all_gather_s(
            2 * first_params, d, t
        )
        assert _close(sync, want, TIME_REL), (d, sync, want)
        assert (sync > 0) == (d > 1)


def _systems_stage_bytes(spec, seq, mbs, t, mode, stage_ids, s_from_end, m, d):
    """A stage's bytes per device from the systems engine's formulas, for any split:
    ``6 + 12 / d`` bytes per parameter of its units (the distributed optimizer) and the
    activations of its blocks, embedding and head with ``min(s, m)`` micro-batches in
    flight (docs/real-systems.md)."""
    one_each = stage_params(spec, TrainingPlan(t, spec.layers, 1, mbs, mbs), seq)
    block_p = one_each[1]
    emb_p, head_p = one_each[0] - block_p, one_each[-1] - block_p
    blocks = sum(1 for v in stage_ids if 0 <= v < spec.layers)
    has_emb, has_head = -1 in stage_ids, spec.layers in stage_ids
    params = blocks * block_p + has_emb * emb_p + has_head * head_p
    in_flight = min(s_from_end, m)
    first, last = end_activation_bytes(spec, seq, mbs, t)
    act = blocks * block_activation_bytes(spec, seq, mbs, t, mode) * in_flight
    if mode == "full" and blocks:
        act += block_activation_bytes(spec, seq, mbs, t, "none")
    act += has_emb * first * in_flight + has_head * last
    return (6 + 12 / d) * params + act


def test_joint_search_plans_with_the_distributed_optimizer_fit_the_systems_engine():
    spec, seq, batch, devices = preset("gpt2-xl"), 1024, 256, 32
    w = Workload(spec, seq_len=seq, global_batch=batch, optimizer="adam")
    faster = 0
    for hbm_gib in (3, 4, 6):
        hbm = hbm_gib * GIB
        times = {}
        for dist in (True, False):
            training = Training("megatron", "full", distributed_optimizer=dist)
            r = phaze.search(
                w,
                Cluster(devices=devices),
                TINY,
                micro_batch_sizes=(1, 2),
                hbm_sizes=(hbm,),
                recompute=(False, True),
                training=training,
            )
            det = r.details[0]
            plan = det["plan"]
            times[dist] = plan.time_per_batch_s if plan is not None else math.inf
            if plan is None or not dist:
                continue
            mbs, rc = det["micro_batch_size"], det["recompute"]
            d = plan.data_parallel
            m = -(-(batch // mbs) // d)
            worst = max(
                _systems_stage_bytes(
                    spec,
                    seq,
                    mbs,
                    plan.tensor_width,
                    training.mode(rc),
                    stage.layer_ids,
                    plan.num_stages - q,
                    m,
                    d,
                )
                for q, stage in enumerate(plan.stages)
            )
            assert worst <= hbm, (hbm_gib, plan.stage_layers, d, worst)
            assert max(st.memory_bytes for st in plan.stages) <= hbm
        # sharding and the cheaper synchronisation never make the best plan slower
        assert times[True] <= times[False], (hbm_gib, times)
        faster += times[True] < times[False]
    assert faster >= 1  # and the option matters somewhere


@pytest.mark.parametrize(
    ("model", "mode", "options", "hbm_gib"),
    [
        ("gpt2-xl", "full", {}, (4, 8)),
        ("gpt2-xl", "selective", {}, (4, 8)),
        ("gpt2-xl", "full", {"distributed_optimizer": True}, (3, 8)),
        ("megatron-gpt2-54", "selective", dict.fromkeys(MEGATRON_OPTIONS, True), (3, 8)),
    ],
)
def test_exact_search_equals_exhaustive_with_options_on_network_levels(
    model, mode, options, hbm_gib
):
    # the bounds (memory with Megatron's bytes, the synchronisation at the fastest ring,
    # the options' terms) stay admissible: pruning never changes the optimum or frontier
    w = Workload(preset(model), seq_len=512, global_batch=256, optimizer="adam")
    cluster = Cluster(devices=32, network=phaze.load_system("a100-selene").network)
    out = {}
    for strategy in ("exact", "exhaustive"):
        out[strategy] = phaze.search(
            w,
            cluster,
            SPACE,
            micro_batch_sizes=(1, 2),
            hbm_sizes=tuple(g * GIB for g in hbm_gib),
            recompute=(False, True),
            training=Training("megatron", mode, **options),
            strategy=strategy,
        )
    exact, full = out["exact"], out["exhaustive"]
    assert (exact.best.arch, exact.best.hbm_bytes) == (full.best.arch, full.best.hbm_bytes)
    assert exact.best.value == full.best.value > 0
    assert np.array_equal(exact.frontier, full.frontier)
    assert np.array_equal(exact.frontier_value, full.frontier_value)


# --- sequence parallelism ------------------------------------------------------------------

#: Operators of a block outside the tensor-parallel regions (fused names contain them).
OUTSIDE = ("ln1", "ln2", "dropout1", "residual1", "dropout2", "residual2")


@pytest.mark.parametrize("name", ["gpt3-175b", "llama2-7b"])
def test_sequence_parallel_graph_shrinks_only_the_operators_outside_tensor_parallel_regions(
    name,
):
    spec, seq, t = preset(name), 2048, 8
    plain = build_graph(spec, seq, 1, t)
    sp = build_graph(spec, seq, 1, t, sequence_parallel=True)
    assert sp.sequence_parallel and not plain.sequence_parallel
    a, b = plain.block.ops, sp.block.ops
    assert [op.name for op in a.ops] == [op.name for op in b.ops]
    sbh = seq * spec.hidden
    changed = 0
    for x, y in zip(a.ops, b.ops, strict=True):
        outside = any(part in OUTSIDE for part in x.name.split("+"))
        if outside:  # every element count of the operator divided by t
            assert y.vc_parts == tuple((c, e // t, aux) for c, e, aux in x.vc_parts), x.name
            assert x.key != y.key
            changed += 1
        else:  # GEMMs, attention, collectives: the same work (collectives: the same bytes)
            assert x.key == y.key, x.name
    assert changed >= 4
    # what a block keeps for backward outside the tensor-parallel regions is divided by
    # t: two norm inputs (2 sbh each), the QKV and FC1 inputs (2 each), two dropout masks
    # (1 each; llama2 has no dropout)
    outside = (10 if spec.dropout else 8) * sbh
    assert plain.block.activation_bytes - sp.block.activation_bytes == outside * (1 - 1 / t)
    if spec.dropout and spec.mlp == "gelu":  # the systems engine's formula (GPT blocks)
        for g, flag in ((plain, False), (sp, True)):
            want = block_activation_bytes(spec, seq, 1, t, "none", flag)
            assert g.block.activation_bytes == want, (flag, g.block.activation_bytes, want)
    # t = 1: nothing to split, the same graph
    one = build_graph(spec, seq, 1, 1, sequence_parallel=True)
    assert not one.sequence_parallel
    assert one.block.signature == build_graph(spec, seq, 1, 1).block.signature


def test_sequence_parallel_layers_are_never_slower_and_sometimes_faster():
    spec, seq, batch, mbs = preset("megatron-gpt2-xl"), 1024, 64, 2
    times = {}
    for sp in (False, True):
        training = Training("megatron", "selective", sequence_parallel=sp)
        w = Workload(
            spec,
            seq_len=seq,
            global_batch=batch,
            optimizer="adam",
            max_tensor_width=4,
            training=training,
        )
        ev = phaze.joint.WorkloadEvaluator(w, Cluster(16), SPACE.enumerate(), [mbs])
        times[sp] = [ev.layer_latencies(mbs, a) for a in range(len(ev.num_tc))]
    faster = 0
    for (f0, b0), (f1, b1) in zip(times[False], times[True], strict=True):
        assert np.array_equal(f0[0], f1[0]) and np.array_equal(b0[0], b1[0])  # t = 1
        assert (f1 <= f0 * (1 + 1e-12)).all() and (b1 <= b0 * (1 + 1e-12)).all()
        faster += int((f1[1:] < f0[1:]).any())
    assert faster >= 1


def test_sequence_parallel_stage_bytes_equal_the_systems_engine_on_uniform_splits():
    spec, seq, batch, mbs = preset("megatron-gpt2-xl"), 512, 256, 2
    training = Training("megatron", "selective", distributed_optimizer=True, sequence_parallel=True)
    ev = _evaluator(spec, seq, batch, 64, mbs, training)
    for recompute in (False, True):
        mode = "selective" if recompute else "none"
        problem = ev.problem(mbs, 0, 80e9, recompute=recompute)
        for t in (1, 2):
            for p, d in ((2, 1), (4, 4), (8, 2)):
                n = problem.graph(t).n_layers
                per = spec.layers // p
                stages = [[i * per + k + 1 for k in range(per)] for i in range(p)]
                stages[0].insert(0, 0)
                stages[-1].append(n - 1)
                ids = problem.layer_ids
                plan = evaluate_plan(problem, t, d, [[int(ids[v]) for v in s] for s in stages])
                tp = TrainingPlan(
                    t,
                    p,
                    d,
                    mbs,
                    batch,
                    recompute_mode=mode,
                    sequence_parallel=True,
                    distributed_optimizer=True,
                )
                for i, stage in enumerate(plan.stages):
                    want = memory_per_device(spec, tp, seq, stage=i)
                    assert _close(stage.memory_bytes, want, BYTES_REL), (t, p, d, i, mode)


def _systems_bytes_sp(spec, seq, mbs, t, mode, stage_ids, s_from_end, m):
    """A stage's bytes per device under the systems engine's formulas with sequence
    parallelism (18 bytes per parameter), for any split."""
    one = stage_params(spec, TrainingPlan(t, spec.layers, 1, mbs, mbs), seq)
    blocks = sum(1 for v in stage_ids if 0 <= v < spec.layers)
    has_emb, has_head = -1 in stage_ids, spec.layers in stage_ids
    params = blocks * one[1] + has_emb * (one[0] - one[1]) + has_head * (one[-1] - one[1])
    first, last = end_activation_bytes(spec, seq, mbs, t, True)
    in_flight = min(s_from_end, m)
    act = blocks * block_activation_bytes(spec, seq, mbs, t, mode, True) * in_flight
    if mode == "full" and blocks:
        act += block_activation_bytes(spec, seq, mbs, t, "none", True)
    act += has_emb * first * in_flight + has_head * last
    return 18 * params + act


def test_placements_with_sequence_parallelism_fit_the_systems_engine_and_are_no_slower():
    # the joint search's placement problems at t = 2 (where sequence parallelism acts)
    spec, seq, batch, mbs = preset("megatron-gpt2-54"), 1024, 256, 2
    net = phaze.load_system("a100-selene").network
    evs = {
        sp: _evaluator(
            spec, seq, batch, 32, mbs, Training("megatron", "full", sequence_parallel=sp), net
        )
        for sp in (True, False)
    }
    faster = 0
    for hbm_gib in (2, 3, 5):
        hbm = hbm_gib * GIB
        for recompute in (False, True):
            plans = {
                sp: place_per_width(ev.problem(mbs, 0, hbm, recompute))[2] for sp, ev in evs.items()
            }
            times = {sp: p.time_per_batch_s if p else math.inf for sp, p in plans.items()}
            assert times[True] <= times[False], (hbm_gib, recompute, times)
            faster += times[True] < times[False]
            plan = plans[True]
            if plan is None:
                continue
            mode = "full" if recompute else "none"
            m = -(-(batch // mbs) // plan.data_parallel)
            for q, stage in enumerate(plan.stages):
                need = _systems_bytes_sp(
                    spec, seq, mbs, 2, mode, stage.layer_ids, plan.num_stages - q, m
                )
                assert need <= hbm, (hbm_gib, recompute, plan.stage_layers)
    assert faster >= 1


# --- every option against brute force on a model small enough to enumerate ---------------


def _reference_graphs(problem):
    """The problem's width graphs in tests/reference/placement.py's form."""
    out = {}
    for t, g in zip(problem.widths, problem.graphs, strict=True):
        out[t] = {
            "fwd": g.fwd_s.tolist(),
            "bwd": g.bwd_s.tolist(),
            "rec": g.recompute_s.tolist(),
            "work": g.work_bytes.tolist(),
            "params": g.param_bytes.tolist(),
            "acts": g.activation_bytes.tolist(),
            "tp": g.tensor_parallel.tolist(),
            "edges": list(
                zip(g.edge_src.tolist(), g.edge_dst.tolist(), g.edge_bytes.tolist(), strict=True)
            ),
        }
    return out


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"distributed_optimizer": True},
        {"sequence_parallel": True},
        {"distributed_optimizer": True, "sequence_parallel": True},
        {"optimizer_step": True},
        {"overlap_dp": True},
        {"distributed_optimizer": True, "optimizer_step": True, "overlap_dp": True},
        dict.fromkeys(MEGATRON_OPTIONS, True),
    ],
)
def test_joint_placement_with_options_equals_brute_force_on_a_tiny_model(options):
    spec = TransformerSpec(
        name="tiny", layers=3, hidden=256, heads=4, ffn=1024, vocab=512, max_positions=512
    )
    seq, batch, mbs, devices = 256, 64, 2, 12
    net = phaze.load_system("a100-selene").network
    training = Training("megatron", "full", **options)
    w = Workload(
        spec,
        seq_len=seq,
        global_batch=batch,
        optimizer="adam",
        max_tensor_width=2,
        training=training,
    )
    ev = phaze.joint.WorkloadEvaluator(w, Cluster(devices, network=net), TINY.enumerate(), [mbs])
    # HBM sizes around what one device needs for the whole model at d = 1 and d = 12
    whole = ev.problem(mbs, 0, math.inf, recompute=False)
    need = [
        evaluate_plan(whole, 1, d, [whole.layer_ids.tolist()]).stages[0].memory_bytes
        for d in (1, devices)
    ]
    finite = 0
    for hbm in sorted({need[0] * f for f in (0.3, 0.45, 0.7, 1.0)} | {need[1] * 0.9}):
        for recompute in (False, True):
            problem = ev.problem(mbs, 0, hbm, recompute=recompute)
            rules = {
                "state_factor": problem.state_factor,
                "recompute_last": problem.recompute_last,
                "stash_inputs": problem.stash_inputs,
                "network": problem.network,
                "dp_terms": problem.dp_terms,
            }
            want = brute_force(
                _reference_graphs(problem),
                devices,
                problem.link_bandwidth_Bps,
                hbm,
                problem.num_micro_batches,
                recompute,
                True,
                rules,
            )
            got = place_per_width(problem)
            for t, plan in got.items():
                tm = plan.time_per_batch_s if plan is not None else math.inf
                assert _close(tm, want[t], 1e-9), (options, hbm, recompute, t, tm, want[t])
                finite += tm < math.inf
            row = ev.exact(mbs, 0, hbm, recompute)  # the search's hot path agrees
            assert _close(row.time_per_batch_s, min(want.values()), 1e-9), (hbm, recompute)
    assert finite >= 2


# --- the optimizer step and the overlap --------------------------------------------------------


@pytest.mark.parametrize("dist", [False, True])
def test_optimizer_step_is_the_systems_engine_hbm_traffic_and_overlap_hides_the_sync(dist):
    spec, seq, batch, mbs = preset("megatron-gpt2-xl"), 512, 256, 2
    net = phaze.load_system("a100-selene").network
    problems = {}
    for extra in ({}, {"optimizer_step": True}, {"overlap_dp": True}):
        training = Training("megatron", "full", distributed_optimizer=dist, **extra)
        ev = _evaluator(spec, seq, batch, 256, mbs, training, network=net)
        problems[tuple(extra)] = ev.problem(mbs, 0, 80e9, recompute=False)
    bw = float(TINY.enumerate().hbm_bandwidth_Bps[0])
    base = problems[()]
    t = 2
    ids = base.layer_ids.tolist()
    n = len(ids)
    hidden = 0
    for cut in (1, n // 4, n // 2):
        stages = [ids[:cut], ids[cut:]]
        for d in (1, 2, 8, 64):
            plain = evaluate_plan(base, t, d, stages)
            step = evaluate_plan(problems[("optimizer_step",)], t, d, stages)
            over = evaluate_plan(problems[("overlap_dp",)], t, d, stages)
            assert plain.feasible and step.feasible and over.feasible
            params = (
                sum(base.graph(t).param_bytes[ids.index(v)] for v in stages[0]) / 2
            )  # parameters of one device of the first stage
            shard = d if dist else 1
            want = params * (46 / shard + 4) / bw  # the systems engine's HBM bytes
            got = step.time_per_batch_s - plain.time_per_batch_s
            assert _close(got, want, 1e-9), (cut, d, got, want)
            # overlap: max(0, sync - the first stage's backward of one micro-batch)
            m = plain.micro_batches_per_pipeline
            pipe = max(st.load_s for st in plain.stages) * (m + 1)
            sync = plain.time_per_batch_s - pipe
            bwd = float(base.graph(t).bwd_s[: len(stages[0])].sum())
            assert _close(over.time_per_batch_s - pipe, max(0.0, sync - bwd), 1e-9)
            hidden += 0 < over.time_per_batch_s < plain.time_per_batch_s
    assert hidden >= 1


# --- the edges -------------------------------------------------------------------------------


def test_megatron_options_need_megatron_accounting_and_booleans():
    with pytest.raises(ConfigError, match="distributed_optimizer=True.*accounting='megatron'"):
        Training("paper", distributed_optimizer=True)
    with pytest.raises(ConfigError, match="distributed_optimizer"):
        Training("megatron", distributed_optimizer="yes")
    with pytest.raises(ConfigError, match="sharded_state_factor=7.0.*state_factor=3.0"):
        place_arrays(
            [1],
            [[1.0]],
            [[1.0]],
            [[1.0]],
            [[1.0]],
            [False],
            [],
            [],
            [],
            devices=2,
            link_bandwidth_Bps=1.0,
            hbm_bytes=10.0,
            num_micro_batches=2,
            recompute=False,
            adam=True,
            dp_terms=DataParallelTerms(sharded_state_factor=7.0),
        )


def test_cli_search_flags_set_the_options_and_a_store_with_other_options_is_refused(
    tmp_path, capsys
):
    out = tmp_path / "out"
    args = [
        "search",
        "--model",
        "megatron-gpt2-xl",
        "--seq",
        "256",
        "--batch",
        "64",
        "--devices",
        "16",
        "--mbs",
        "2",
        "--hbm",
        "8",
        "--max-tp",
        "2",
        "--network",
        "a100-selene",
        "--training",
        "megatron",
        "--area-budget",
        "3.4",
        "--out",
        str(out),
        "--no-progress",
    ]
    flags = ["--distributed-optimizer", "--sequence-parallel", "--optimizer-step", "--overlap-dp"]
    assert main([*args, *flags]) == 0
    wl = json.loads((out / "best.json").read_text())["workloads"][0]
    assert wl["training"] == "megatron"
    assert wl["training_options"] == sorted(MEGATRON_OPTIONS)
    capsys.readouterr()
    # the same directory with other options is another search: refused, one line
    assert main([*args, "--distributed-optimizer"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert main([*args, *flags]) == 0  # the same options resume
    capsys.readouterr()
    for bad, named in (
        (["--distributed-optimizer"], "distributed_optimizer=True"),
        (["--overlap-dp", "--training", "paper"], "overlap_dp=True"),
        (
            ["--training", "megatron", "--sequence-parallel", "--seq", "100", "--max-tp", "8"],
            "seq_len=100",
        ),
    ):
        assert main(["search", "--out", str(tmp_path / "bad"), *bad]) == 2
        err = capsys.readouterr().err
        assert named in err and len(err.strip().splitlines()) == 1, err


def test_sweep_cells_set_training_and_keep_the_keys_of_sweeps_without_it():
    base = {"search": {"devices": 64}, "grid": {"model": ["gpt2-xl", "bert-large"]}}
    plain = parse_sweep(base)
    explicit = parse_sweep({**base, "search": {"devices": 64, "training": "paper"}})
    assert [c.key for c in plain.cells] == [c.key for c in explicit.cells]
    assert all("training" not in c.to_dict() for c in plain.cells)
    doc = {
        "search": {"devices": 64, "training": "megatron", "recompute_mode": "selective"},
        "grid": {"model": ["gpt2-xl"], "distributed_optimizer": [False, True]},
        "cell": [{"model": "gpt2-xl", "sequence_parallel": True, "overlap_dp": True}],
    }
    spec = parse_sweep(doc)
    trainings = [c.training for c in spec.cells]
    assert trainings == [
        Training("megatron", "selective"),
        Training("megatron", "selective", distributed_optimizer=True),
        Training("megatron", "selective", sequence_parallel=True, overlap_dp=True),
    ]
    assert all(c.optimizer == "adam" for c in spec.cells)  # Megatron's default optimizer
    assert len({c.key for c in spec.cells}) == 3
    assert spec.fingerprint != parse_sweep({**doc, "cell": []}).fingerprint
    for bad, named in (
        ({"training": "zero"}, "training='zero'"),
        ({"distributed_optimizer": "yes"}, "distributed_optimizer='yes'"),
        ({"distributed_optimizer": True}, "distributed_optimizer=True"),
        ({"training": "megatron", "optimizer": "sgd"}, "optimizer='sgd'"),
        ({"recompute_mode": "none"}, "recompute_mode='none'"),
    ):
        with pytest.raises(ConfigError, match=named):
            parse_sweep({"search": bad, "grid": {"model": ["gpt2-xl"]}})


def test_a_sweep_cell_under_megatron_runs_and_records_its_training():
    cell = SweepCell(
        "megatron-gpt2-xl",
        seq_len=256,
        global_batch=64,
        optimizer="adam",
        devices=16,
        hbm_bytes=(8 * GIB,),
        micro_batch_sizes=(2,),
        recompute=(True,),
        max_tensor_width=2,
        num_tc=(8,),
        num_vc=(2,),
        tc_width=(128,),
        tc_depth=(128,),
        glb_bytes=(2**27,),
        area_band=0.0,
        training=Training("megatron", "selective", distributed_optimizer=True),
    )
    rec = run_cell(cell)
    assert rec["feasible"] and rec["throughput_samples_per_s"] > 0
    assert rec["training"] == "megatron/selective+distributed_optimizer"


def test_sweep_report_reads_records_stored_before_cells_had_training(tmp_path):
    from phaze.sweeps.report import write_csv

    old = {"cell": 0, "key": "a", "model": "gpt2-xl"}  # no "training": the paper's
    new = {"cell": 1, "key": "b", "model": "gpt2-xl", "training": "megatron/full"}
    write_csv(tmp_path / "sweep.csv", [old, new])
    lines = (tmp_path / "sweep.csv").read_text().splitlines()
    col = lines[0].split(",").index("training")
    assert [line.split(",")[col] for line in lines[1:]] == ["paper", "megatron/full"]


def test_fingerprint_changes_with_the_options_and_not_without_them():
    def fp(training):
        w = Workload(preset("bert-large"), optimizer="adam", training=training)
        return fingerprint([w], Cluster(), TINY, (1,), (GIB,), (False,), "exact")

    plain = fp(Training("megatron"))
    # stores written before the options existed keep matching
    assert plain["workloads"][0]["training"] == (
        "Training(accounting='megatron', recompute_mode='full')"
    )
    assert fp(Training("megatron", distributed_optimizer=True)) != plain
    assert fp(Training("megatron", distributed_optimizer=False)) == plain
