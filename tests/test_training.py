"""Training accounting of the joint search (phaze.training, docs/placement.md).

* the placement DP under any accounting equals a brute force over every plan, written from
  the rules (tests/reference/placement.py);
* the paper's accounting is the default and reproduces results computed before the
  accounting existed, bit for bit;
* under Megatron's accounting a stage's bytes are the systems engine's
  (``phaze.systems.memory_per_device``) on uniform splits, and every plan the joint search
  returns fits in HBM under the systems engine's formulas;
* recomputation modes order memory as they should; bad values are ConfigErrors.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from reference.golden_searches import paper_rows
from reference.placement import brute_force
from test_placement import small_problems

import phaze
from phaze import GIB, Cluster, ConfigError, Network, NetworkLevel, Training, Workload, preset
from phaze.cli import main
from phaze.models import TransformerSpec, build_graph
from phaze.placement import (
    DataParallelTerms,
    evaluate_plan,
    graph_kind,
    place_arrays,
    place_per_width,
)
from phaze.systems.training import (
    TrainingPlan,
    block_activation_bytes,
    end_activation_bytes,
    memory_per_device,
    stage_params,
)
from phaze.training import megatron_layer_bytes, stage_rules

DATA = Path(__file__).parent / "data"
#: Times are sums of a few small quarter-integers and products with micro-batch counts:
#: the DP and the brute force add them in other orders, so allow rounding.
REL = 1e-9
#: Stage bytes are sums of integer-valued floats far below 2**53, but the evaluator's
#: 18 bytes per parameter is 9.0 times the parameter bytes and the systems engine's 18
#: times the parameter count: both exact, still compared with a margin for other orders.
BYTES_REL = 1e-12


def _close(a: float, b: float, rel: float = REL) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rel * max(abs(a), abs(b), 1.0)


# --- the DP under any accounting equals brute force --------------------------------------


@st.composite
def accounted_problems(draw, max_layers: int, general: bool):
    """A small problem (tests/test_placement.py) with a random training accounting."""
    problem, ref, cluster = draw(small_problems(max_layers=max_layers, general=general))
    n = problem.graphs[0].n_layers
    rules = {
        "state_factor": draw(st.sampled_from([2.0, 3.0, 9.0, 4.5])),
        "recompute_last": draw(st.booleans()),
        "stash_inputs": draw(st.booleans()),
    }
    if draw(st.booleans()):  # data-parallel terms: sharded state, sync, step, overlap
        rules["dp_terms"] = DataParallelTerms(
            sharded_state_factor=draw(st.sampled_from([0.0, 1.0, 1.5, 2.0])),
            sync_factor=draw(st.sampled_from([4.0, 3.0])),
            step_s_per_B=draw(st.sampled_from([0.0, 0.25])),
            step_sharded_s_per_B=draw(st.sampled_from([0.0, 0.0, 1.0])),
            overlap_dp=draw(st.booleans()),
        )
    if draw(st.booleans()):  # network levels for the data-parallel all-reduce
        inner = NetworkLevel("node", draw(st.sampled_from([2, 4])), 8.0, 1.0, 0.25)
        outer = NetworkLevel("scale-out", 0, draw(st.sampled_from([1.0, 2.0])), 0.5, 1.0)
        rules["network"] = Network((inner, outer))
    lat = st.integers(0, 12).map(lambda v: v / 4)
    graphs = []
    for t, g in zip(problem.widths, problem.graphs, strict=True):
        rec = draw(st.lists(lat, min_size=n, max_size=n))
        work = draw(st.lists(st.integers(0, 30), min_size=n, max_size=n))
        ref[t] = {**ref[t], "rec": rec, "work": work}
        graphs.append(dataclasses.replace(g, recompute_s=rec, work_bytes=work))
    problem = dataclasses.replace(problem, graphs=tuple(graphs), **rules)
    return problem, ref, cluster, rules


def _agrees(problem, ref, cluster, rules) -> None:
    want = brute_force(
        ref,
        cluster["devices"],
        cluster["bandwidth"],
        cluster["hbm"],
        cluster["micro_batches"],
        cluster["recompute"],
        cluster["adam"],
        rules,
    )
    case = f"{cluster}, {rules}, {ref}"
    for t, plan in place_per_width(problem).items():
        got = plan.time_per_batch_s if plan is not None else math.inf
        assert _close(got, want[t]), f"t={t}: DP {got}, brute force {want[t]}; {case}"
        if plan is not None:  # the plan re-evaluates to its time and fits
            again = evaluate_plan(
                problem, t, plan.data_parallel, plan.stage_layers, plan.devices_per_stage
            )
            assert again.feasible, (again.reason, case)
            assert _close(again.time_per_batch_s, got), case
    gs = problem.graphs
    arr = place_arrays(
        problem.widths,
        [g.fwd_s for g in gs],
        [g.bwd_s for g in gs],
        [g.param_bytes for g in gs],
        [g.activation_bytes for g in gs],
        [g.tensor_parallel for g in gs],
        gs[0].edge_src,
        gs[0].edge_dst,
        [g.edge_bytes for g in gs],
        devices=problem.devices,
        link_bandwidth_Bps=problem.link_bandwidth_Bps,
        hbm_bytes=problem.hbm_bytes,
        num_micro_batches=problem.num_micro_batches,
        recompute=problem.recompute,
        adam=problem.adam,
        recompute_s=[g.recompute_s for g in gs],
        work_bytes=[g.work_bytes for g in gs],
        **rules,
    )
    for a, t in zip(arr.width_times_s, problem.widths, strict=True):
        assert _close(a, want[t]), f"t={t}: place_arrays {a}, brute force {want[t]}; {case}"


@given(accounted_problems(max_layers=6, general=False))
def test_accounted_dp_on_chains_with_skip_edges_equals_brute_force(case):
    _agrees(*case)


@given(accounted_problems(max_layers=5, general=True))
def test_accounted_dp_on_general_dags_equals_brute_force(case):
    g = case[0].graphs[0]
    assume(graph_kind(g.edge_src, g.edge_dst, g.n_layers) == "dag")
    _agrees(*case)


# --- the paper's accounting is unchanged --------------------------------------------------


def test_paper_search_rows_equal_those_computed_before_the_accounting_existed():
    want = json.loads((DATA / "paper_search_rows.json").read_text())
    got_all = paper_rows()
    assert set(got_all) == set(want)
    for name, got in got_all.items():
        # the interleave column came later: every plan without the option has v = 1
        assert got.pop("interleave") == [1] * len(got["throughput"])
        assert set(got) == set(want[name])
        for key, values in want[name].items():
            assert got[key] == values, f"{name}: column {key} differs"
        assert 0 < sum(x == 0 for x in got["throughput"]) or name == "bert-large"


def test_explicit_paper_rules_give_the_default_tables_bit_for_bit():
    rng = np.random.default_rng(3)
    n = 9
    args = (
        [1, 2],
        rng.uniform(0.1, 2.0, (2, n)),
        rng.uniform(0.1, 4.0, (2, n)),
        rng.integers(1, 2**30, (2, n)).astype(float),
        rng.integers(1, 2**30, (2, n)).astype(float),
        np.ones((2, n), dtype=bool),
        np.arange(n - 1),
        np.arange(1, n),
        rng.integers(1, 2**28, n - 1).astype(float),
    )
    kw = dict(devices=24, link_bandwidth_Bps=1e9, hbm_bytes=2.0**33, num_micro_batches=16)
    for adam in (False, True):
        for recompute in (False, True):
            base = place_arrays(*args, **kw, recompute=recompute, adam=adam)
            explicit = place_arrays(
                *args,
                **kw,
                recompute=recompute,
                adam=adam,
                state_factor=stage_rules(Training(), "adam" if adam else "sgd", recompute)[0],
                recompute_s=args[1],
                work_bytes=np.zeros((2, n)),
                recompute_last=False,
                stash_inputs=True,
            )
            assert base.time_per_batch_s == explicit.time_per_batch_s
            assert base[1:4] == explicit[1:4]
            assert np.array_equal(base.width_times_s, explicit.width_times_s)


# --- Megatron's accounting against the systems engine --------------------------------------

TINY = phaze.DesignSpace(
    num_tc=(8,),
    num_vc=(2,),
    tc_width=(128,),
    tc_depth=(128,),
    vc_width=(128,),
    glb_bytes=(2**27,),
    area_band=0.0,
)


def _evaluator(spec, seq, batch, devices, mbs, mode):
    w = Workload(
        spec,
        seq_len=seq,
        global_batch=batch,
        optimizer="adam",
        max_tensor_width=2,
        training=Training("megatron", mode),
    )
    return phaze.joint.WorkloadEvaluator(w, Cluster(devices), TINY.enumerate(), [mbs])


@pytest.mark.parametrize("mode", ["none", "selective", "full"])
def test_megatron_stage_bytes_equal_the_systems_engine_on_uniform_splits(mode):
    spec, seq, batch, mbs = preset("megatron-gpt2-xl"), 512, 64, 2
    ev = _evaluator(spec, seq, batch, 64, mbs, "full" if mode == "none" else mode)
    for t in (1, 2):
        for p, d in ((2, 1), (4, 2), (5, 4), (8, 1)):
            problem = ev.problem(mbs, 0, 80e9, recompute=mode != "none")
            n = problem.graph(t).n_layers  # embedding, 40 blocks, head
            per = spec.layers // p
            stages = [[i * per + k + 1 for k in range(per)] for i in range(p)]
            stages[0].insert(0, 0)
            stages[-1].append(n - 1)
            ids = problem.layer_ids
            plan = evaluate_plan(problem, t, d, [[int(ids[v]) for v in s] for s in stages])
            m = batch // (d * mbs)
            tp = TrainingPlan(t, p, d, mbs, batch, recompute_mode=mode)
            for i, stage in enumerate(plan.stages):
                want = memory_per_device(spec, tp, seq, stage=i)
                got = stage.memory_bytes
                where = f"t={t} p={p} d={d} stage {i}: phaze {got}, systems engine {want}"
                if m >= p - i:  # 1F1B holds p - i micro-batches: both engines agree
                    assert _close(got, want, BYTES_REL), where
                else:  # the placement does not cap by m: never below the systems engine
                    assert got >= want * (1 - BYTES_REL), where


def _systems_stage_bytes(spec, seq, mbs, t, p_total, mode, stage_ids, s_from_end, m):
    """A stage's bytes per device from the systems engine's formulas, for any split:
    18 bytes per parameter of its units and the activations of its blocks, embedding and
    head with ``min(s, m)`` micro-batches in flight (docs/real-systems.md)."""
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
    return 18 * params + act


@pytest.mark.parametrize("mode", ["full", "selective"])
def test_joint_search_plans_under_megatron_fit_the_systems_engine(mode):
    spec, seq, batch, devices = preset("gpt2-xl"), 1024, 256, 32
    w = Workload(spec, seq_len=seq, global_batch=batch, optimizer="adam")
    checked = 0
    for hbm_gib in (4, 6, 8):
        hbm = hbm_gib * GIB
        for training in (Training("megatron", mode), Training()):
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
            assert plan is not None
            mbs, rc = det["micro_batch_size"], det["recompute"]
            m = -(-(batch // mbs) // plan.data_parallel)
            worst = max(
                _systems_stage_bytes(
                    spec,
                    seq,
                    mbs,
                    plan.tensor_width,
                    plan.num_stages,
                    training.mode(rc) if not training.is_paper else mode if rc else "none",
                    stage.layer_ids,
                    plan.num_stages - q,
                    m,
                )
                for q, stage in enumerate(plan.stages)
            )
            if training.is_paper:  # the paper's 6 bytes per parameter undercount
                checked += worst > hbm
            else:
                assert worst <= hbm, (hbm_gib, plan.stage_layers, worst)
                assert max(st.memory_bytes for st in plan.stages) <= hbm
    assert checked >= 1  # the check can fail: some paper-accounting plan does not fit


# --- recomputation modes and memory ----------------------------------------------------------


@given(
    hidden_per_head=st.sampled_from([32, 64, 128]),
    heads=st.sampled_from([4, 8, 16]),
    ffn_mult=st.sampled_from([2, 4]),
    seq=st.sampled_from([64, 256, 1024, 2048]),
    mbs=st.integers(1, 4),
    t=st.sampled_from([1, 2, 4]),
    blocks=st.integers(1, 6),
    in_flight=st.integers(1, 8),
)
def test_full_recompute_never_needs_more_memory_than_none_and_selective_lies_between(
    hidden_per_head, heads, ffn_mult, seq, mbs, t, blocks, in_flight
):
    h = hidden_per_head * heads
    spec = TransformerSpec(
        name="x",
        layers=8,
        hidden=h,
        heads=heads,
        ffn=ffn_mult * h,
        vocab=1000,
        max_positions=4096,
    )
    per = {m: block_activation_bytes(spec, seq, mbs, t, m) for m in ("none", "selective", "full")}
    # what a block keeps per micro-batch: full <= selective <= none
    assert per["full"] <= per["selective"] <= per["none"], per
    # a stage of `blocks` blocks with `in_flight` micro-batches: Megatron's full working set
    # (one block's `none` bytes) is held once, so full needs no more than none as soon as
    # two block-micro-batches are stored (10 sbh <= none per block), and selective never
    # more than none. (A stage's full bytes can exceed its selective bytes when few
    # block-micro-batches are kept and the attention term is large: the working set holds
    # the scores; so "between" holds per block, not per stage.)
    kept = blocks * in_flight
    stage = {m: kept * per[m] for m in per}
    stage["full"] += per["none"]
    assert stage["selective"] <= stage["none"], stage
    if kept >= 2:
        assert stage["full"] <= stage["none"], stage
    else:  # one block, one micro-batch: its checkpoint comes on top of the working set
        assert stage["full"] == per["none"] + per["full"] > stage["none"]


def test_megatron_layer_bytes_are_the_systems_engine_formulas():
    spec = preset("gpt3-175b")
    g = build_graph(spec, 2048, 1, 8)
    first, last = end_activation_bytes(spec, 2048, 1, 8)
    for mode in ("none", "selective", "full"):
        act, work = megatron_layer_bytes(g, mode)
        assert act[0] == first and act[-1] == last
        assert (act[1:-1] == block_activation_bytes(spec, 2048, 1, 8, mode)).all()
        assert (work[1:-1] > 0).all() == (mode == "full") and work[0] == work[-1] == 0
    # and the paper's own count of a block without recomputation is the same formula
    assert g.layers[1].activation_bytes == block_activation_bytes(spec, 2048, 1, 8, "none")


def test_selective_recomputation_costs_less_time_than_full():
    spec = preset("megatron-gpt2-xl")
    times = {}
    for mode in ("full", "selective"):
        ev = _evaluator(spec, 512, 64, 8, 2, mode)
        times[mode] = ev.exact(2, 0, 80e9, True).time_per_batch_s
        none = ev.exact(2, 0, 80e9, False).time_per_batch_s
    assert none < times["selective"] < times["full"], (none, times)


# --- the edges -------------------------------------------------------------------------------


def test_bad_training_values_are_config_errors_naming_them():
    with pytest.raises(ConfigError, match="accounting='deepspeed'.*paper, megatron"):
        Training("deepspeed")
    with pytest.raises(ConfigError, match="recompute_mode='none'.*full, selective"):
        Training("megatron", "none")
    with pytest.raises(ConfigError, match="recompute_mode='selective'.*allowed: full"):
        Training("paper", "selective")
    with pytest.raises(ConfigError, match="optimizer='sgd'.*allowed: adam"):
        Workload(preset("bert-large"), training=Training("megatron"))
    with pytest.raises(ConfigError, match="bytes_per_element=4.*allowed: 2"):
        Workload(
            preset("bert-large"),
            optimizer="adam",
            bytes_per_element=4,
            training=Training("megatron"),
        )
    with pytest.raises(ConfigError, match="training='megatron'"):
        phaze.search(Workload(preset("bert-large")), training="megatron")
    with pytest.raises(ConfigError, match="training='megatron'"):
        Workload(preset("bert-large"), training="megatron")


def test_cli_search_with_megatron_accounting_on_a_real_network(tmp_path, capsys):
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
        "--recompute-mode",
        "selective",
        "--area-budget",
        "3.4",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(args) == 0
    best = json.loads((out / "best.json").read_text())
    wl = best["workloads"][0]
    assert wl["training"] == "megatron" and wl["optimizer"] == "adam"
    assert wl["recompute_mode"] == ("selective" if wl["recompute"] else "none")
    capsys.readouterr()
    for bad, named in (
        (["--training", "zero"], "'zero'"),
        (["--training", "megatron", "--optimizer", "sgd"], "optimizer='sgd'"),
        (["--recompute-mode", "selective"], "recompute_mode='selective'"),
    ):
        assert main(["search", "--out", str(tmp_path / "bad"), *bad]) == 2
        err = capsys.readouterr().err
        assert named in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("system", ["a100-selene", "h100-dgx"])
def test_allreduce_arrays_are_the_network_ring_for_every_d(system):
    from phaze import load_system
    from phaze.placement.problem import dp_allreduce_arrays

    net = load_system(system).network
    for t in (1, 2, 4, 8, 16):
        bw, lat = dp_allreduce_arrays(net, 1.0, t, 300)
        for d in range(2, 301):
            assert (bw[d], lat[d]) == net.ring(d, t), (t, d)
        assert bw[0] == bw[1] == 1.0 and lat[0] == lat[1] == 0.0
    three = Network(
        (
            NetworkLevel("a", 4, 9.0, 1.0, 1.0),
            NetworkLevel("b", 16, 2.0, 0.5, 2.0),
            NetworkLevel("c", 0, 1.0, 1.0, 3.0),
        )
    )
    for t in (1, 2, 3, 4, 8, 32):
        bw, lat = dp_allreduce_arrays(three, 1.0, t, 100)
        assert all((bw[d], lat[d]) == three.ring(d, t) for d in range(2, 101)), t
