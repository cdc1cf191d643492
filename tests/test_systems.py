"""Real systems: network levels, the Megatron time and memory model, run files,
``phaze estimate`` (data: tests/data/measured, see tests/data/README.md)."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phaze import preset
from phaze.cli import main
from phaze.errors import ConfigError
from phaze.models.spec import TransformerSpec
from phaze.systems import (
    Network,
    NetworkLevel,
    Run,
    RunError,
    TrainingPlan,
    iteration,
    load_system,
    memory_per_device,
    read_runs,
)
from phaze.systems.estimate import accuracy, estimate
from phaze.systems.training import _block_activation_bytes

DATA = pathlib.Path(__file__).parent / "data" / "measured"
GPT3 = preset("gpt3-175b")
SELENE = load_system("a100-selene")


def _net(bw0=300e9, bw1=25e9, node=8, lat0=0.0, lat1=0.0, eff=1.0):
    return Network(
        (
            NetworkLevel("nvlink", node, bw0, eff, lat0),
            NetworkLevel("ib", 0, bw1, eff, lat1),
        )
    )


# ----------------------------------------------------------------------------- network


def test_ring_all_reduce_inside_and_across_nodes():
    net = _net(lat0=1e-6, lat1=5e-6)
    size = 1e9
    # 8 ranks on one node: NVLink ring, 14 steps at 1 us
    assert net.all_reduce_s(size, 8, 1) == pytest.approx(2 * 7 / 8 * size / 300e9 + 14e-6)
    # 16 consecutive ranks on two nodes: 8 NICs per node carry the ring across
    assert net.all_reduce_s(size, 16, 1) == pytest.approx(
        2 * 15 / 16 * size / min(300e9, 8 * 25e9) + 30 * 5e-6
    )
    # data-parallel peers at stride 8: one per node, one NIC each
    assert net.all_reduce_s(size, 4, 8) == pytest.approx(2 * 3 / 4 * size / 25e9 + 6 * 5e-6)
    # stride 4 on 8-GPU nodes: 2 peers per node
    assert net.all_reduce_s(size, 4, 4) == pytest.approx(2 * 3 / 4 * size / (2 * 25e9) + 6 * 5e-6)
    assert net.reduce_scatter_s(size, 8, 1) == pytest.approx(7 / 8 * size / 300e9 + 7e-6)
    assert net.all_reduce_s(size, 1, 1) == 0.0
    # pipeline neighbours 8 ranks apart cross nodes; 2 ranks apart within a 4-stage node
    assert net.p2p_s(1e6, 4, 8) == pytest.approx(1e6 / 25e9 + 5e-6)
    assert net.p2p_s(1e6, 4, 2) == pytest.approx(1e6 / 300e9 + 1e-6)


def test_network_validation_names_the_value():
    with pytest.raises(ConfigError, match="outermost"):
        Network((NetworkLevel("a", 8, 1e9, 1.0, 0.0),))
    with pytest.raises(ConfigError, match="efficiency"):
        NetworkLevel("a", 8, 1e9, 1.5, 0.0)
    with pytest.raises(ConfigError, match="multiple"):
        Network(
            (
                NetworkLevel("a", 8, 1e9, 1.0, 0.0),
                NetworkLevel("b", 12, 1e9, 1.0, 0.0),
                NetworkLevel("c", 0, 1e9, 1.0, 0.0),
            )
        )


_sizes = st.floats(1e3, 1e10)
_groups = st.sampled_from([1, 2, 4, 8, 16, 32, 64])
_strides = st.sampled_from([1, 2, 4, 8, 16])
_bw = st.floats(1e9, 1e12)


@given(_sizes, _groups, _strides, _bw, _bw, st.floats(1.0, 4.0), st.integers(0, 1))
def test_more_bandwidth_never_slows_a_collective(size, n, stride, bw0, bw1, factor, level):
    base = _net(bw0, bw1, lat0=1e-6, lat1=4e-6)
    faster = _net(
        bw0 * (factor if level == 0 else 1),
        bw1 * (factor if level == 1 else 1),
        lat0=1e-6,
        lat1=4e-6,
    )
    for op in ("all_reduce_s", "reduce_scatter_s", "all_gather_s"):
        assert getattr(faster, op)(size, n, stride) <= getattr(base, op)(size, n, stride), op
    assert faster.p2p_s(size, n, stride) <= base.p2p_s(size, n, stride)


@given(_sizes, _groups, _strides, _bw, st.sampled_from([2, 4, 8, 16]))
def test_more_devices_per_node_never_slows_a_collective(size, n, stride, bw1, node):
    # the node level is at least as fast as the scale-out level, as on every real system
    small, big = _net(bw1 * 4, bw1, node=node), _net(bw1 * 4, bw1, node=2 * node)
    for op in ("all_reduce_s", "reduce_scatter_s", "all_gather_s"):
        assert getattr(big, op)(size, n, stride) <= getattr(small, op)(size, n, stride) * (
            1 + 1e-12
        ), op


# ------------------------------------------------------------------------------ memory


def test_memory_gpt3_175b_tp8_pp16_by_hand():
    """GPT-3 175B, t=8, p=16, d=8, b=1, sequence parallelism + selective recomputation
    (Korthikanti et al. 2022: s b h 34 / t bytes per layer), mixed-precision Adam."""
    plan = TrainingPlan(8, 16, 8, 1, 1536, recompute_mode="selective", sequence_parallel=True)
    s, h, t = 2048, 12288, 8
    per_layer_act = s * h * 34 // t  # 106,954,752 bytes
    assert _block_activation_bytes(GPT3, plan, s, "selective") == per_layer_act
    # first stage: 6 blocks, 16 micro-batches in flight, the embedding's dropout mask
    act = 6 * per_layer_act * 16 + s * h // t * 16  # 10,317,987,840
    # parameters per rank of one block: 12 h^2 / t matrices, QKV + FC1 biases (7h / t),
    # replicated projection/FC2 biases and two LayerNorms (6h)
    block = 12 * h * h // t + 7 * h // t + 6 * h  # 226,576,896
    embedding = 51200 * h // t + 2048 * h  # vocabulary padded to 51,200 rows; positions
    params = 6 * block + embedding  # 1,463,270,400
    expected = 18 * params + act  # 36,656,855,040 bytes (34.1 GiB)
    assert expected == 36_656_855_040
    assert memory_per_device(GPT3, plan, s) == pytest.approx(expected, rel=1e-12)
    # the distributed optimizer shards 12 of the 18 bytes over d = 8
    dist = dataclasses.replace(plan, distributed_optimizer=True)
    assert memory_per_device(GPT3, dist, s) == pytest.approx((6 + 12 / 8) * params + act, rel=1e-12)


def test_block_activation_bytes_match_korthikanti():
    spec = TransformerSpec("m", 4, 1024, 16, 4096, 1000, 512)
    s, b, h, a = 512, 2, 1024, 16
    sbh = s * b * h
    for t in (1, 2, 4):
        plan = TrainingPlan(t, 1, 1, b, b)
        none = _block_activation_bytes(spec, plan, s, "none")
        assert none == pytest.approx(sbh * (10 + 24 / t + 5 * a * s / (h * t)))
        sel = _block_activation_bytes(spec, plan, s, "selective")
        assert sel == pytest.approx(sbh * (10 + 24 / t))
        assert _block_activation_bytes(spec, plan, s, "full") == 2 * sbh
    sp = TrainingPlan(4, 1, 1, b, b, sequence_parallel=True)
    assert _block_activation_bytes(spec, sp, s, "none") == pytest.approx(
        sbh * (34 + 5 * a * s / h) / 4
    )


_plans = st.builds(
    TrainingPlan,
    tensor_width=st.sampled_from([1, 2, 4, 8]),
    num_stages=st.sampled_from([1, 2, 4, 8]),
    data_parallel=st.sampled_from([1, 2, 4]),
    micro_batch_size=st.sampled_from([1, 2, 4]),
    global_batch_size=st.just(64),
    interleave=st.just(1),
    sequence_parallel=st.booleans(),
    distributed_optimizer=st.booleans(),
)


@given(_plans)
def test_full_recompute_never_uses_more_memory(plan):
    spec = preset("megatron-gpt2-xl")
    mem = {
        mode: memory_per_device(spec, dataclasses.replace(plan, recompute_mode=mode), 1024)
        for mode in ("none", "selective", "full")
    }
    assert mem["full"] <= mem["none"] and mem["selective"] <= mem["none"], mem


# -------------------------------------------------------------------------------- time


def _est(plan, spec=GPT3, system=SELENE, seq=2048):
    return iteration(system, spec, plan, seq)


def test_interleaving_divides_the_bubble_and_multiplies_p2p():
    base = TrainingPlan(8, 8, 4, 1, 256, recompute_mode="selective", sequence_parallel=True)
    e1 = _est(base)
    m = base.num_micro_batches
    for v in (2, 3, 4):
        ev = _est(dataclasses.replace(base, interleave=v))
        assert ev.bubble_s == pytest.approx(e1.bubble_s / v)
        # 2 sends per micro-batch and model chunk, plus the fill/drain ones
        assert ev.p2p_s == pytest.approx(e1.p2p_s * (v * m + 7) / (m + 7))
        assert ev.forward_s == pytest.approx(e1.forward_s)


def test_pipeline_bubble_is_p_minus_1_stage_times_when_uniform():
    # a model whose embedding and head cost nothing measurable: zero-cost system terms
    # aside, the bubble of p equal stages is (p - 1) stage times (Narayanan et al. 2021)
    plan = TrainingPlan(8, 8, 1, 1, 64, recompute_mode="full")
    est = _est(plan)
    per_mb = (est.forward_s + est.backward_s + est.recompute_s + est.tp_comm_s) / 64
    assert 7 * per_mb * 0.95 <= est.bubble_s <= 7 * per_mb * 1.0 + 1e-12


def test_sequence_parallel_moves_the_same_bytes():
    net = _net(lat0=0.0, lat1=0.0)
    chip = dataclasses.replace(SELENE.chip, kernel_launch_s=0.0)
    system = dataclasses.replace(SELENE, chip=chip, network=net)
    plan = TrainingPlan(8, 1, 1, 1, 8, recompute_mode="selective")
    a = iteration(system, GPT3, plan, 2048)
    b = iteration(system, GPT3, dataclasses.replace(plan, sequence_parallel=True), 2048)
    # all-reduce == reduce-scatter + all-gather on the wire (the head's tiny loss
    # all-reduces are the same in both)
    assert b.tp_comm_s == pytest.approx(a.tp_comm_s, rel=1e-9)
    assert b.forward_s < a.forward_s  # LayerNorm/dropout work split by t


def test_recompute_modes_order_the_time():
    base = TrainingPlan(8, 8, 4, 1, 256)
    t = {
        m: _est(dataclasses.replace(base, recompute_mode=m)) for m in ("none", "selective", "full")
    }
    assert t["none"].recompute_s == 0.0
    assert 0 < t["selective"].recompute_s < t["full"].recompute_s
    # full recomputation reruns the forward, its all-reduces included
    assert t["full"].recompute_s == pytest.approx(t["full"].forward_s, rel=0.05)
    assert t["none"].iteration_s < t["selective"].iteration_s < t["full"].iteration_s


@given(_plans, st.floats(0.3, 0.95), st.floats(1.01, 2.0))
def test_time_is_monotone_in_efficiency_and_batch(plan, eff, factor):
    spec = preset("megatron-gpt2-xl")
    chip = dataclasses.replace(SELENE.chip, gemm_efficiency=eff)
    slow = dataclasses.replace(SELENE, chip=chip)
    fast = dataclasses.replace(
        SELENE, chip=dataclasses.replace(chip, gemm_efficiency=min(1.0, eff * factor))
    )
    assert (
        iteration(fast, spec, plan, 1024).iteration_s
        <= iteration(slow, spec, plan, 1024).iteration_s
    )
    bigger = dataclasses.replace(plan, global_batch_size=2 * plan.global_batch_size)
    assert (
        iteration(slow, spec, bigger, 1024).iteration_s
        > iteration(slow, spec, plan, 1024).iteration_s
    )


def test_plan_validation_names_the_value():
    with pytest.raises(ConfigError, match="must divide attention heads"):
        _est(TrainingPlan(64, 1, 1, 1, 1))
    with pytest.raises(ConfigError, match="divide the 96 layers"):
        _est(TrainingPlan(8, 5, 1, 1, 1))
    with pytest.raises(ConfigError, match="multiple of"):
        TrainingPlan(1, 1, 4, 2, 12)
    with pytest.raises(ConfigError, match="recompute_mode"):
        TrainingPlan(1, 1, 1, 1, 1, recompute_mode="some")


# ---------------------------------------------------------------- run files, estimate


def test_measured_files_read_without_errors_and_meet_the_accuracy_goals():
    for name, goal in (("vtrain_multi_node.jsonl", 0.08), ("vtrain_single_node.jsonl", 0.10)):
        rows = read_runs(DATA / name)
        assert all(isinstance(r, Run) for r in rows)
        acc = accuracy(estimate(rows))
        assert acc["rows"] == len(rows)
        assert acc["mean_abs_error"] <= goal, (name, acc)


def _line(**changes):
    obj = json.loads((DATA / "vtrain_multi_node.jsonl").read_text().splitlines()[0])
    for key, value in changes.items():
        if key in obj["plan"]:
            obj["plan"][key] = value
        else:
            obj[key] = value
    return json.dumps(obj)


def test_run_files_with_a_bom_and_crlf_or_cr_line_ends_read_as_with_lf(tmp_path):
    lines = [_line(id="a"), "", "{oops", _line(id="b", micro_batch=4)]
    want = read_runs(_write_bytes(tmp_path / "lf.jsonl", "\n".join(lines).encode()))
    assert [r.id for r in want] == ["a", "line 3", "b"]
    for name, raw in (
        ("crlf.jsonl", "\r\n".join(lines).encode() + b"\r\n"),
        ("cr.jsonl", "\r".join(lines).encode()),
        ("bom.jsonl", b"\xef\xbb\xbf" + "\n".join(lines).encode()),
    ):
        assert read_runs(_write_bytes(tmp_path / name, raw)) == want, name


def _write_bytes(path, raw: bytes):
    path.write_bytes(raw)
    return path


def test_bad_lines_are_reported_and_the_rest_estimated(tmp_path, capsys):
    path = tmp_path / "runs.jsonl"
    lines = [
        _line(id="good"),
        _line(id="sys", system="tpu-v9"),
        _line(id="devices", dp=32),
        _line(id="heads", tp=64, dp=1),
        _line(id="batch", global_batch=500),
        "{oops",
        _line(id="good2", micro_batch=4),
    ]
    path.write_text("\n".join(lines) + "\n")
    rows = read_runs(path)
    assert [type(r) for r in rows] == [Run, RunError, RunError, RunError, RunError, RunError, Run]
    assert main(["estimate", str(path), "--json"]) == 2
    out, err = capsys.readouterr()
    objs = [json.loads(line) for line in out.splitlines()]
    assert [o["id"] for o in objs] == [
        "good",
        "sys",
        "devices",
        "heads",
        "batch",
        "line 6",
        "good2",
    ]
    assert objs[0]["predicted_s"] > 0 and objs[0]["measured_s"] == 3.5665
    assert objs[1]["predicted_s"] is None
    for key, word in (
        ("sys", "unknown system"),
        ("devices", "!= devices=64"),
        ("heads", "must divide attention heads"),
        ("batch", "multiple of"),
        ("line 6", "malformed JSON"),
    ):
        assert any(
            line.startswith(f"phaze estimate: {key}: ") and word in line
            for line in err.splitlines()
        ), (key, err)
    assert "Traceback" not in err


def test_estimate_table_and_exit_0(capsys):
    assert main(["estimate", str(DATA / "vtrain_multi_node.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "vtrain-multi-000" in out and "47 measured runs" in out


def test_system_file_round_trip(tmp_path):
    path = tmp_path / "mine.json"
    data = SELENE.to_dict()
    data["name"] = "mine"
    path.write_text(json.dumps(data))
    mine = load_system(str(path))
    assert mine.chip == SELENE.chip and mine.network == SELENE.network
    bad = tmp_path / "bad.json"
    data["chip"]["num_sms"] = 0
    bad.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="num_sms=0"):
        load_system(str(bad))
    with pytest.raises(ConfigError, match="unknown system"):
        load_system("nope")


# -------------------------------------------------------------------------------- plan


def test_best_plans_equal_brute_force_over_estimate_calls():
    from phaze.systems.plan import best_plans

    spec, devices, batch, seq = preset("megatron-gpt2-xl"), 16, 64, 1024
    system = dataclasses.replace(
        SELENE, chip=dataclasses.replace(SELENE.chip, hbm_bytes=6e9)
    )  # small HBM so that memory rules plans out
    got, priced = best_plans(
        system,
        spec,
        devices,
        batch,
        seq,
        top=1000,
        micro_batch_sizes=(1, 2, 4),
        interleaves=(1, 2),
    )
    brute, rejected = [], 0
    for t in range(1, devices + 1):
        for p in range(1, devices + 1):
            for d in range(1, devices + 1):
                if t * p * d != devices:
                    continue
                for b in (1, 2, 4):
                    for v in (1, 2):
                        for mode in ("none", "selective", "full"):
                            for sp in (False, True):
                                for do in (False, True):
                                    try:
                                        plan = TrainingPlan(t, p, d, b, batch, v, mode, sp, do)
                                        run = Run("x", system, spec, seq, devices, plan)
                                        [e] = estimate([run])
                                    except ConfigError:
                                        continue
                                    if not e.breakdown.fits:
                                        rejected += 1
                                        continue
                                    key = (
                                        plan.tensor_width,
                                        plan.num_stages,
                                        b,
                                        v,
                                        mode,
                                        plan.sequence_parallel,
                                        plan.distributed_optimizer,
                                    )
                                    brute.append((e.predicted_s, key))
    assert rejected > 0 and priced == len(set(brute)) > 0
    brute.sort()
    assert got[0].iteration_s == pytest.approx(brute[0][0], rel=1e-12)
    assert [r.iteration_s for r in got] == pytest.approx(sorted(x for x, _ in set(brute)))
    assert all(r.breakdown.fits for r in got)


def test_plan_cli_gpt3_on_selene_writes_plans_that_fit(tmp_path, capsys):
    out = tmp_path / "plans.json"
    argv = ["plan", "--system", "a100-selene", "--devices", "1024", "--model", "gpt3-175b"]
    assert main([*argv, "--top", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "gpt3-175b" in printed and "wrote 3 plans" in printed
    plans = json.loads(out.read_text())["plans"]
    assert len(plans) == 3
    times = [p["iteration_s"] for p in plans]
    assert times == sorted(times)
    for p in plans:
        assert p["tensor_width"] * p["num_stages"] * p["data_parallel"] == 1024
        plan = TrainingPlan(
            p["tensor_width"],
            p["num_stages"],
            p["data_parallel"],
            p["micro_batch_size"],
            1536,
            p["interleave"],
            p["recompute_mode"],
            p["sequence_parallel"],
            p["distributed_optimizer"],
        )
        # the 18 B/parameter accounting fits the 80 GB A100
        assert memory_per_device(GPT3, plan, 2048) <= 80e9
    assert main([*argv, "--out", str(tmp_path / "x.txt")]) == 2


# ------------------------------------------------ network levels in the paper's engine


def _paper_eval(cluster):
    from phaze import GIB, Workload, evaluate_architectures
    from phaze.hardware import Accelerator, ArchTable

    archs = ArchTable.from_accelerators(
        [Accelerator.preset("phaze"), Accelerator.preset("tpuv4-like")]
    )
    w = Workload(preset("megatron-gpt2-54"))
    return evaluate_architectures(
        w, cluster, archs, micro_batch_size=1, hbm_bytes=32 * GIB, recompute=True
    )


def test_one_level_network_is_the_single_link_exactly():
    import numpy as np

    from phaze import GIB, Cluster

    link = Cluster(256, 4 * GIB)
    one = Cluster(256, 4 * GIB, network=Network((NetworkLevel("link", 0, 4 * GIB, 1.0, 0.0),)))
    a, b = _paper_eval(link), _paper_eval(one)
    for field in ("throughput", "tensor_width", "data_parallel", "num_stages"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field


def test_fast_node_level_never_lowers_the_paper_engines_throughput():
    import numpy as np

    from phaze import GIB, Cluster, latency_table
    from phaze.hardware import Accelerator, ArchTable
    from phaze.models import build_graph, unique_ops

    slow = 4 * GIB
    net = Network(
        (NetworkLevel("nvlink", 8, 300e9, 1.0, 0.0), NetworkLevel("pcie", 0, slow, 1.0, 0.0))
    )
    a = _paper_eval(Cluster(256, slow))
    b = _paper_eval(Cluster(256, slow, network=net))
    assert (b.throughput >= a.throughput).all() and (b.throughput > a.throughput).any()
    # a tensor-parallel all-reduce of 4 devices runs on NVLink, one of 20 crosses nodes
    ops, _ = unique_ops([build_graph(preset("megatron-gpt2-54"), 1024, 1, t) for t in (4, 20)])
    archs = ArchTable.from_accelerators([Accelerator.preset("phaze")])
    lat = latency_table(ops, archs, network=net).latency_s
    for row in np.flatnonzero(ops.comm_group > 1):
        t, size = int(ops.comm_group[row]), float(ops.comm_bytes[row])
        bw = 300e9 if t <= 8 else min(300e9, 8 * slow)
        p = int(ops.comm_pass[row])
        assert lat[row, 0, 0, p] == pytest.approx(2 * (t - 1) / t * size / bw), t


def test_gemm_waves_and_selective_recompute_by_hand():
    from phaze.systems.training import _block_time, _gemm_s

    chip = SELENE.chip  # 108 SMs, 312 TFLOP/s x 0.835, 128 x 128 tiles
    per_sm = 312e12 * 0.835 / 108
    # 4096^3: 32 x 32 = 1024 tiles -> ceil(1024 / 108) = 10 waves of 2*128*128*4096 FLOP
    assert _gemm_s(chip, 1, 4096, 4096, 4096) == pytest.approx(10 * 2 * 128 * 128 * 4096 / per_sm)
    # a tiny GEMM costs one kernel issue
    assert _gemm_s(chip, 1, 8, 8, 8) == chip.kernel_launch_s
    # selective recomputation of one GPT-3 block, t = 8, b = 1, s = 2048: the scores and
    # context batched GEMMs (96 / 8 = 12 heads of 128) and the softmax and dropout passes
    # over 12 x 2048^2 scores (4 and 5 bytes per score) at 2,039 GB/s x 0.85
    plan = TrainingPlan(8, 1, 1, 1, 1, recompute_mode="selective")
    heads, s, d = 12, 2048, 128
    # scores (12 x 2048x128 @ 128x2048): 12 x 16 x 16 = 3072 tiles -> 29 waves; reading
    # Q and K and writing the scores at HBM speed takes longer (memory-bound)
    scores = 29 * 2 * 128 * 128 * d / per_sm
    scores_mem = 2 * heads * (s * d + d * s + s * s) / (2039e9 * 0.85)
    assert scores < scores_mem
    # context (12 x 2048x2048 @ 2048x128): 12 x 16 x 1 = 192 tiles -> 2 waves
    context = 2 * 2 * 128 * 128 * s / per_sm
    context_mem = 2 * heads * (s * s + s * d + s * d) / (2039e9 * 0.85)
    assert context < context_mem
    vector = 9 * heads * s * s / (2039e9 * 0.85)
    expected = scores_mem + context_mem + vector  # 0.392 ms
    got = _block_time(SELENE, GPT3, plan, 2048).recompute
    assert got == pytest.approx(expected, rel=1e-12)


def test_distributed_optimizer_and_overlap_change_the_dp_terms_as_described():
    net = _net(lat0=0.0, lat1=0.0)
    chip = dataclasses.replace(SELENE.chip, kernel_launch_s=0.0)
    system = dataclasses.replace(SELENE, chip=chip, network=net)
    plan = TrainingPlan(8, 1, 16, 1, 64, recompute_mode="full")
    base = iteration(system, GPT3, plan, 2048)
    dist = iteration(system, GPT3, dataclasses.replace(plan, distributed_optimizer=True), 2048)
    # all-reduce of 4-byte gradients = 2 x (n-1)/n x 4P; distributed: reduce-scatter of the
    # 4-byte gradients + all-gather of the 2-byte weights = (n-1)/n x 6P
    assert dist.dp_comm_s == pytest.approx(base.dp_comm_s * 6 / 8)
    # the Adam step works on a 1/16 shard (46 B/param) and zeroes every gradient (4 B/param)
    assert dist.optimizer_s == pytest.approx(base.optimizer_s * (46 / 16 + 4) / 50)
    over = iteration(system, GPT3, dataclasses.replace(plan, overlap_dp=True), 2048)
    assert over.dp_comm_s == pytest.approx(max(0.0, base.dp_comm_s - base.backward_s / 4))
