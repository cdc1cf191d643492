"""Device placement (docs/placement.md): reference instances, brute force, edges."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from reference.placement import brute_force

from phaze.cli import main
from phaze.errors import ConfigError, InfeasibleError
from phaze.placement import (
    MAX_DOWNSETS,
    FixedBaseline,
    PlacementProblem,
    WidthGraph,
    evaluate_baseline,
    evaluate_plan,
    graph_kind,
    load_instance,
    place,
    place_arrays,
    place_per_width,
)
from phaze.placement.instance import problem_from_instance

DATA = Path(__file__).parent / "data" / "placement"
NAMES = sorted(p.name.removesuffix(".instance.json") for p in DATA.glob("*.instance.json"))

#: The reference README's tolerance. Our sums run in another order (prefix sums, max-plus
#: shortcuts) than the original's, which moves times by ~1e-15 relative, never more.
REL = 1e-9
#: A plan's claimed time (from the DP) against its direct re-evaluation: same formulas,
#: different summation order, so only rounding (~1e-15) may separate them.
REL_EVAL = 1e-12


def _close(a: float | None, b: float | None, rel: float = REL) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rel * max(abs(a), abs(b))


def _load(name: str):
    return load_instance(DATA / f"{name}.instance.json"), json.loads(
        (DATA / f"{name}.expected.json").read_text()
    )


def _check_plan(problem, plan) -> None:
    """A returned plan re-evaluates to the time it claims and fits in memory."""
    again = evaluate_plan(
        problem, plan.tensor_width, plan.data_parallel, plan.stage_layers, plan.devices_per_stage
    )
    assert again.feasible, again.reason
    assert plan.feasible
    assert _close(again.time_per_batch_s, plan.time_per_batch_s, REL_EVAL), (
        again.time_per_batch_s,
        plan.time_per_batch_s,
    )
    for st_ in again.stages:
        assert st_.memory_bytes <= problem.hbm_bytes
    assert again.devices_used <= problem.devices
    assert sorted(v for s in plan.stage_layers for v in s) == sorted(problem.layer_ids.tolist())


# --- the original solver's reference instances -------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_reference_instance_optimum_per_width(name):
    problem, exp = _load(name)
    per_width = place_per_width(problem)
    assert sorted(per_width) == sorted(int(t) for t in exp["per_tensor_parallel_width"])
    for t, plan in per_width.items():
        want = exp["per_tensor_parallel_width"][str(t)]["time_per_batch"]
        got = plan.time_per_batch_s if plan is not None else None
        assert _close(got, want), f"{name} t={t}: got {got}, expected {want}"
        if plan is not None:
            _check_plan(problem, plan)


@pytest.mark.parametrize("name", NAMES)
def test_reference_instance_best_and_baseline(name):
    problem, exp = _load(name)
    if exp["best"] is None:
        with pytest.raises(InfeasibleError, match="no plan fits"):
            place(problem)
    else:
        plan = place(problem)
        assert _close(plan.time_per_batch_s, exp["best"]["time_per_batch"])
        assert plan.tensor_width == exp["best"]["tensor_parallel"]
        _check_plan(problem, plan)
        # the original's own plan is valid for us and evaluates to its time
        theirs = evaluate_plan(
            problem,
            exp["best"]["tensor_parallel"],
            exp["best"]["data_parallel"],
            exp["best"]["stage_layers"],
            exp["best"]["devices_per_stage"],
        )
        assert theirs.feasible
        assert _close(theirs.time_per_batch_s, exp["best"]["time_per_batch"])
    base = evaluate_baseline(problem)
    got = base.time_per_batch_s if base.feasible else None
    assert _close(got, exp["fixed_strategy_time_per_batch"]), (got, base.reason)
    if not base.feasible:
        assert math.isinf(base.time_per_batch_s)
        assert base.reason


@pytest.mark.parametrize("name", NAMES)
def test_reference_instance_array_entry_and_round_trip(name):
    problem, exp = _load(name)
    gs = problem.graphs
    res = place_arrays(
        problem.widths,
        np.stack([g.fwd_s for g in gs]),
        np.stack([g.bwd_s for g in gs]),
        np.stack([g.param_bytes for g in gs]),
        np.stack([g.activation_bytes for g in gs]),
        np.stack([g.tensor_parallel for g in gs]),
        gs[0].edge_src,
        gs[0].edge_dst,
        np.stack([g.edge_bytes for g in gs]),
        devices=problem.devices,
        link_bandwidth_Bps=problem.link_bandwidth_Bps,
        hbm_bytes=problem.hbm_bytes,
        num_micro_batches=problem.num_micro_batches,
        recompute=problem.recompute,
        adam=problem.adam,
    )
    if exp["best"] is None:
        assert res.time_per_batch_s == math.inf
        assert res.tensor_width == 0
    else:
        assert _close(res.time_per_batch_s, exp["best"]["time_per_batch"])
        assert res.tensor_width == exp["best"]["tensor_parallel"]
        assert res.num_stages >= 1
        assert res.data_parallel >= 1
        plan = place(problem, tensor_width=res.tensor_width)
        loads = [st.load_s for st in plan.stages]
        assert 0 <= res.bottleneck_stage < res.num_stages == len(loads)
        assert _close(loads[res.bottleneck_stage], max(loads))
    for t, tm in zip(problem.widths, res.width_times_s, strict=True):
        want = exp["per_tensor_parallel_width"][str(t)]["time_per_batch"]
        assert _close(None if math.isinf(tm) else float(tm), want)
    again = problem_from_instance(problem.to_instance_dict())
    assert [p and p.time_per_batch_s for p in place_per_width(again).values()] == [
        p and p.time_per_batch_s for p in place_per_width(problem).values()
    ]


def test_reference_instances_cover_every_graph_path():
    kinds = set()
    for name in NAMES:
        g = load_instance(DATA / f"{name}.instance.json").graphs[0]
        kinds.add(graph_kind(g.edge_src, g.edge_dst, g.n_layers))
    assert kinds == {"chain", "prefix"}  # the general path is covered by brute force below


# --- brute force -------------------------------------------------------------------------


@st.composite
def small_problems(draw, max_layers: int, general: bool):
    """Random placement problems small enough to enumerate every plan.

    ``general=False``: a chain plus random skip edges (downsets = prefixes);
    ``general=True``: any DAG (random edges i -> j, i < j), so layers may run in parallel.
    Values are small integers (ties are common) and a latency is sometimes ``inf``.
    """
    n = draw(st.integers(1, max_layers))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    if general:
        edges = [p for p in pairs if draw(st.booleans())]
    else:
        skips = [p for p in pairs if p[1] > p[0] + 1]
        edges = [(i, i + 1) for i in range(n - 1)] + [
            p for p in skips if draw(st.integers(0, 3)) == 0
        ]
    widths = draw(st.sampled_from([(1,), (2,), (1, 2), (1, 3), (1, 2, 4)]))
    lat = st.integers(0, 40).map(lambda v: math.inf if v == 40 else v / 4)
    size = st.integers(0, 30)
    ref, graphs = {}, []
    for t in widths:
        fw = draw(st.lists(lat, min_size=n, max_size=n))
        bw = draw(st.lists(lat, min_size=n, max_size=n))
        params = draw(st.lists(size, min_size=n, max_size=n))
        acts = draw(st.lists(size, min_size=n, max_size=n))
        tp = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        eb = draw(st.lists(st.integers(0, 20), min_size=len(edges), max_size=len(edges)))
        ref[t] = {
            "fwd": fw,
            "bwd": bw,
            "params": params,
            "acts": acts,
            "tp": tp,
            "edges": [(u, v, c) for (u, v), c in zip(edges, eb, strict=True)],
        }
        graphs.append(
            WidthGraph(
                list(range(n)),
                fw,
                bw,
                params,
                acts,
                tp,
                [e[0] for e in edges],
                [e[1] for e in edges],
                eb,
                width=t,
            )
        )
    cluster = {
        "devices": draw(st.integers(1, 12)),
        "bandwidth": draw(st.sampled_from([1.0, 2.0, 4.0])),
        "hbm": draw(st.integers(1, 400)),
        "micro_batches": draw(st.integers(1, 6)),
        "recompute": draw(st.booleans()),
        "adam": draw(st.booleans()),
    }
    problem = PlacementProblem(
        widths=widths,
        graphs=tuple(graphs),
        devices=cluster["devices"],
        link_bandwidth_Bps=cluster["bandwidth"],
        hbm_bytes=cluster["hbm"],
        num_micro_batches=cluster["micro_batches"],
        recompute=cluster["recompute"],
        optimizer="adam" if cluster["adam"] else "sgd",
    )
    return problem, ref, cluster


def _agrees_with_brute_force(problem, ref, cluster) -> None:
    want = brute_force(
        ref,
        cluster["devices"],
        cluster["bandwidth"],
        cluster["hbm"],
        cluster["micro_batches"],
        cluster["recompute"],
        cluster["adam"],
    )
    got = place_per_width(problem)
    for t in problem.widths:
        plan = got[t]
        g = plan.time_per_batch_s if plan is not None else math.inf
        assert _close(g, want[t]), f"t={t}: DP {g}, brute force {want[t]}; {cluster}, {ref[t]}"
        if plan is not None:
            _check_plan(problem, plan)
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
    )
    for a, t in zip(arr.width_times_s, problem.widths, strict=True):
        assert _close(a, want[t]), f"t={t}: place_arrays {a}, brute force {want[t]}; {cluster}"
    assert _close(arr.time_per_batch_s, min(want.values()))


@given(small_problems(max_layers=8, general=False))
def test_chain_and_skip_edges_match_brute_force(case):
    _agrees_with_brute_force(*case)


@given(small_problems(max_layers=6, general=True))
def test_general_dag_matches_brute_force(case):
    problem = case[0]
    g = problem.graphs[0]
    assume(graph_kind(g.edge_src, g.edge_dst, g.n_layers) == "dag")
    _agrees_with_brute_force(*case)


@given(
    n=st.integers(2, 14),
    skips=st.lists(st.tuples(st.integers(0, 13), st.integers(2, 6)), max_size=6),
    devices=st.integers(1, 64),
    micro_batches=st.integers(1, 64),
    hbm=st.integers(50, 2000),
    recompute=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_graph_paths_agree_beyond_brute_force(
    n, skips, devices, micro_batches, hbm, recompute, seed
):
    """Chain (prefix sums), prefix (incremental schedules) and downset-bitset tables give
    the same optimum where more than one applies, on sizes brute force cannot reach."""
    rng = np.random.default_rng(seed)
    src = list(range(n - 1)) + [u for u, k in skips if u + k < n]
    dst = list(range(1, n)) + [u + k for u, k in skips if u + k < n]
    widths = (1, 2, 4)
    shape = (len(widths), n)
    args = (
        widths,
        rng.integers(0, 9, shape) / 4,
        rng.integers(0, 9, shape) / 4,
        rng.integers(0, 30, shape),
        rng.integers(0, 30, shape),
        rng.random(shape) < 0.8,
        np.array(src),
        np.array(dst),
        rng.integers(0, 20, (len(widths), len(src))),
    )
    kw = {
        "devices": devices,
        "link_bandwidth_Bps": 2.0,
        "hbm_bytes": hbm,
        "num_micro_batches": micro_batches,
        "recompute": recompute,
        "adam": bool(seed % 2),
    }
    kinds = ["prefix", "dag"] + (["chain"] if len(src) == n - 1 else [])
    results = {k: place_arrays(*args, **kw, kind=k) for k in kinds}
    base = results["prefix"].width_times_s
    for k, res in results.items():
        assert all(_close(a, b) for a, b in zip(res.width_times_s, base, strict=True)), (k, res)


# --- phaze model graphs ------------------------------------------------------------------


def test_from_graphs_with_real_model_graphs():
    from phaze.models import build_graph, preset

    spec = preset("gpt2-xl")
    graphs = {t: build_graph(spec, 1024, 2, tensor_width=t) for t in (1, 5)}
    rng = np.random.default_rng(7)
    fwd = {t: rng.uniform(1e-3, 2e-3, len(g.layers)) / t for t, g in graphs.items()}
    bwd = {t: 2 * f for t, f in fwd.items()}
    problem = PlacementProblem.from_graphs(
        graphs,
        fwd,
        bwd,
        devices=64,
        link_bandwidth_Bps=25e9,
        hbm_bytes=16 * 2**30,
        num_micro_batches=128,
        recompute=True,
        optimizer="adam",
        fixed_baseline=(4, 5, 2),
    )
    assert problem.micro_batch_size == 2
    assert problem.fixed_baseline == FixedBaseline(4, 5, 2, spec.layers)
    g5 = problem.graph(5)
    assert g5.layer_ids[0] == -1
    assert g5.layer_ids[-1] == spec.layers
    assert g5.param_bytes.sum() == sum(layer.param_bytes for layer in graphs[5].layers)
    plan = place(problem)
    _check_plan(problem, plan)
    assert plan.throughput_samples_per_s == pytest.approx(2 * plan.throughput_micro_batches_per_s)
    assert evaluate_baseline(problem).tensor_width == 5


def test_from_graphs_with_duck_typed_graph_and_skip_edges():
    layers = [
        SimpleNamespace(
            layer_id=i - 1, param_bytes=100, activation_bytes=10, tensor_parallel=i not in (0, 5)
        )
        for i in range(6)
    ]
    edges = [SimpleNamespace(src=i, dst=i + 1, bytes=8) for i in range(5)]
    edges += [SimpleNamespace(src=0, dst=j, bytes=4) for j in range(2, 6)]
    graphs = {t: SimpleNamespace(layers=layers, edges=edges) for t in (1, 2)}
    lat = {1: np.arange(1.0, 7.0), 2: np.arange(1.0, 7.0) / 2}
    problem = PlacementProblem.from_graphs(
        graphs,
        lat,
        lat,
        devices=6,
        link_bandwidth_Bps=4.0,
        hbm_bytes=1000,
        num_micro_batches=4,
        recompute=True,
        optimizer="sgd",
        fixed_baseline=(2, 2, 1),
    )
    assert problem.micro_batch_size is None
    assert problem.fixed_baseline.num_blocks == 4
    ref = {
        t: {
            "fwd": list(lat[t]),
            "bwd": list(lat[t]),
            "params": [100] * 6,
            "acts": [10] * 6,
            "tp": [lay.tensor_parallel for lay in layers],
            "edges": [(e.src, e.dst, e.bytes) for e in edges],
        }
        for t in (1, 2)
    }
    _agrees_with_brute_force(
        problem,
        ref,
        {
            "devices": 6,
            "bandwidth": 4.0,
            "hbm": 1000,
            "micro_batches": 4,
            "recompute": True,
            "adam": False,
        },
    )


def test_from_graphs_rejects_mismatched_latencies():
    layers = [
        SimpleNamespace(layer_id=i, param_bytes=1, activation_bytes=1, tensor_parallel=False)
        for i in range(3)
    ]
    graphs = {1: SimpleNamespace(layers=layers, edges=[])}
    common = {
        "devices": 2,
        "link_bandwidth_Bps": 1.0,
        "hbm_bytes": 10,
        "num_micro_batches": 2,
        "recompute": False,
        "optimizer": "sgd",
    }
    with pytest.raises(ConfigError, match=r"fwd_s has shape \(2,\), expected \(3,\)"):
        PlacementProblem.from_graphs(graphs, {1: np.ones(2)}, {1: np.ones(3)}, **common)
    with pytest.raises(ConfigError, match="bwd_s must map the same widths"):
        PlacementProblem.from_graphs(graphs, {1: np.ones(3)}, {2: np.ones(3)}, **common)


# --- bad input, infeasible input, edge cases ---------------------------------------------


def _tiny() -> dict:
    return json.loads((DATA / "tiny6_8dev.instance.json").read_text())


def _set(path, value):
    def f(obj):
        *head, last = path
        for key in head:
            obj = obj[key]
        obj[last] = value

    return f


def _cycle(obj):
    obj["edges"]["1"].append({"sourceId": 6, "destId": -1, "communicationCost": 1})


def _drop_edges_width(obj):
    del obj["edges"]["2"]


def _drop_head(obj):
    obj["nodes"]["2"].pop()
    obj["edges"]["2"].pop()


def _unknown_edge(obj):
    obj["edges"]["1"].append({"sourceId": 0, "destId": 42, "communicationCost": 1})


BAD = [
    (_cycle, "cycle"),
    (_drop_edges_width, r"widths in 'nodes' \(\['1', '2'\]\) and 'edges' \(\['1'\]\) differ"),
    (_drop_head, "every width must list the same layers"),
    (_unknown_edge, "names layer 42"),
    (_set(("nodes", "1", 2, "parameterSize"), -5.0), "parameter_bytes|param_bytes.*-5"),
    (_set(("nodes", "2", 0, "activationSize"), -1), "activation_bytes of layer -1 is -1"),
    (_set(("nodes", "1", 3, "optimalLatencyFw"), -1e-3), "fwd_s of layer 2 is -0.001"),
    (_set(("nodes", "1", 3, "optimalLatencyBw"), float("nan")), "bwd_s of layer 2 is nan"),
    (_set(("edges", "1", 0, "communicationCost"), -3), "carries -3.0 bytes"),
    (_set(("maxDevices",), 0), "devices=0 is invalid; allowed: an integer from 1 to 16777216"),
    (_set(("bandwidth",), 0), "link_bandwidth_Bps=0 is invalid; allowed: a finite number > 0"),
    (_set(("maxMemoryPerDevice",), -1), "hbm_bytes=-1 is invalid; allowed: a number > 0"),
    (_set(("mbsInBatch",), 0), "num_micro_batches=0"),
    (_set(("optimizerAlgorithm",), "Lion"), "optimizer='Lion' is invalid; allowed: sgd, adam"),
    (_set(("fixedTMPC",), 4), r"fixed baseline width t=4 is not among .* \(1, 2\)"),
    (_set(("nodes", "1", 0, "id"), 0), "distinct"),
]


@pytest.mark.parametrize(("mutate", "match"), BAD)
def test_bad_instances_raise_value_error_naming_the_problem(mutate, match):
    obj = _tiny()
    mutate(obj)
    with pytest.raises(ValueError, match=match):
        problem_from_instance(obj)


def test_missing_fields_and_bad_json(tmp_path):
    obj = _tiny()
    del obj["nodes"]["1"][0]["optimalLatencyBw"]
    with pytest.raises(ConfigError, match=r"nodes\[1\]\[0\] lacks optimalLatencyBw"):
        problem_from_instance(obj)
    obj = _tiny()
    del obj["bandwidth"]
    with pytest.raises(ConfigError, match="missing field.*bandwidth"):
        problem_from_instance(obj)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_instance(bad)


def _problem(
    n=3, t_widths=(1,), devices=4, hbm=1e9, fwd=None, tp=False, edges=None, mb=4, recompute=False
) -> PlacementProblem:
    edges = [(i, i + 1) for i in range(n - 1)] if edges is None else edges
    fwd = [1.0] * n if fwd is None else fwd
    graphs = tuple(
        WidthGraph(
            list(range(n)),
            fwd,
            [2 * f for f in fwd],
            [10] * n,
            [5] * n,
            [tp] * n,
            [e[0] for e in edges],
            [e[1] for e in edges],
            [1.0] * len(edges),
            width=t,
        )
        for t in t_widths
    )
    return PlacementProblem(
        widths=t_widths,
        graphs=graphs,
        devices=devices,
        link_bandwidth_Bps=1.0,
        hbm_bytes=hbm,
        num_micro_batches=mb,
        recompute=recompute,
    )


def test_memory_too_small_is_infeasible_not_an_error():
    problem = _problem(hbm=24)  # one layer alone needs 2*10 + 5 = 25 bytes
    assert place_per_width(problem) == {1: None}
    with pytest.raises(InfeasibleError):
        place(problem)
    plan = evaluate_plan(problem, 1, 1, [[0], [1], [2]])
    assert not plan.feasible
    assert math.isinf(plan.time_per_batch_s)
    assert "HBM" in plan.reason


def test_infinite_latency_is_infeasible_not_an_error():
    problem = _problem(fwd=[1.0, math.inf, 1.0])
    assert place_per_width(problem) == {1: None}
    plan = evaluate_plan(problem, 1, 1, [[0, 1, 2]])
    assert not plan.feasible
    assert "infinite" in plan.reason


def test_one_layer_one_device():
    problem = _problem(n=1, devices=1, mb=3)
    plan = place(problem)
    assert plan.stage_layers == ((0,),)
    assert plan.data_parallel == 1
    assert plan.time_per_batch_s == 3 * 3.0  # load fwd 1 + bwd 2, three micro-batches


def test_width_wider_than_the_cluster_is_infeasible():
    problem = _problem(t_widths=(1, 8), devices=4, tp=True)
    per = place_per_width(problem)
    assert per[8] is None
    assert per[1] is not None
    assert place(problem).tensor_width == 1


def test_mixed_tensor_parallel_layers_count_devices():
    # non-TP embedding and head, TP blocks: at t=4 with 6 devices only plans whose
    # tensor-parallel stages fit are allowed: one TP stage (4) + up to two 1-device stages
    problem = PlacementProblem(
        widths=(4,),
        graphs=(
            WidthGraph(
                [-1, 0, 1, 2],
                [1.0, 4.0, 4.0, 1.0],
                [1.0, 4.0, 4.0, 1.0],
                [1] * 4,
                [1] * 4,
                [False, True, True, False],
                [0, 1, 2],
                [1, 2, 3],
                [0.0] * 3,
                width=4,
            ),
        ),
        devices=6,
        link_bandwidth_Bps=1.0,
        hbm_bytes=1e9,
        num_micro_batches=1,
        recompute=False,
    )
    plan = place(problem)
    assert plan.devices_used <= 6
    assert sorted(plan.devices_per_stage) in ([1, 4], [1, 1, 4], [4])
    _check_plan(problem, plan)


def test_downset_limit_gives_a_clear_error():
    n = 13  # an antichain of 13 layers has 2**13 = 8192 downsets
    assert 2**n > MAX_DOWNSETS
    problem = _problem(n=n, edges=[])
    with pytest.raises(ConfigError, match=f"more than MAX_DOWNSETS={MAX_DOWNSETS} downsets"):
        place(problem)


@pytest.mark.parametrize(
    ("stages", "match"),
    [
        ([[0, 1]], r"layers \[2\] are in no stage"),
        ([[0, 1], [1, 2]], "layer 1 is in stage 0 and stage 1"),
        ([[2], [0, 1]], "goes from stage 1 back to stage 0"),
        ([[0, 1, 2], []], "stage 1 is empty"),
        ([[0, 7], [1, 2]], "names layer 7"),
    ],
)
def test_evaluate_rejects_malformed_plans(stages, match):
    with pytest.raises(ConfigError, match=match):
        evaluate_plan(_problem(), 1, 1, stages)


def test_evaluate_reports_resource_infeasibility():
    problem = _problem(devices=4, mb=2)
    assert "cluster has 4" in evaluate_plan(problem, 1, 2, [[0], [1], [2]]).reason
    assert "exceeds the 2 micro-batches" in evaluate_plan(problem, 1, 3, [[0, 1, 2]]).reason
    with pytest.raises(ConfigError, match="data_parallel=0"):
        evaluate_plan(problem, 1, 0, [[0, 1, 2]])
    with pytest.raises(ConfigError, match="tensor width t=2 is not offered"):
        evaluate_plan(problem, 2, 1, [[0, 1, 2]])
    with pytest.raises(ConfigError, match="has 1 entries for 2 stages"):
        evaluate_plan(problem, 1, 1, [[0], [1, 2]], [1])


def test_baseline_with_an_empty_stage_is_infeasible():
    problem = PlacementProblem(
        widths=(1,),
        graphs=_problem().graphs,
        devices=8,
        link_bandwidth_Bps=1.0,
        hbm_bytes=1e9,
        num_micro_batches=4,
        recompute=False,
        fixed_baseline=FixedBaseline(
            pipeline_stages=4, tensor_width=1, data_parallel=1, num_blocks=2
        ),
    )
    plan = evaluate_baseline(problem)
    assert not plan.feasible
    assert "empty" in plan.reason


def test_unordered_layers_are_sorted_topologically():
    g = WidthGraph.from_unordered(
        [3, 1, 2], [1, 2, 3], [1, 2, 3], [0] * 3, [0] * 3, [False] * 3, [1, 2], [2, 3], [5, 6]
    )
    assert g.layer_ids.tolist() == [1, 2, 3]
    assert g.fwd_s.tolist() == [2.0, 3.0, 1.0]
    assert (g.edge_src.tolist(), g.edge_dst.tolist()) == ([0, 1], [1, 2])
    with pytest.raises(ConfigError, match="goes backwards"):
        WidthGraph([0, 1], [1, 1], [1, 1], [0, 0], [0, 0], [False] * 2, [1], [0], [1])


def test_place_arrays_validates_shapes_and_values():
    kw = {
        "devices": 2,
        "link_bandwidth_Bps": 1.0,
        "hbm_bytes": 1e9,
        "num_micro_batches": 2,
        "recompute": False,
        "adam": False,
    }
    one = np.ones((1, 3))
    src, dst = np.array([0, 1]), np.array([1, 2])
    with pytest.raises(ConfigError, match="fwd_s must have shape"):
        place_arrays([1, 2], one, one, one, one, one > 0, src, dst, np.ones(2), **kw)
    with pytest.raises(ConfigError, match="bwd_s has a negative or NaN"):
        place_arrays([1], one, -one, one, one, one > 0, src, dst, np.ones(2), **kw)
    res = place_arrays([1], one * np.inf, one, one, one, one > 0, src, dst, np.ones(2), **kw)
    assert res.time_per_batch_s == math.inf
    assert res.tensor_width == 0


# --- command line ------------------------------------------------------------------------


def test_cli_table(capsys):
    assert (
        main(["place", "--instance", str(DATA / "llama2-7b_256dev_sgd_hbm32.instance.json")]) == 0
    )
    out = capsys.readouterr().out
    assert "<- best" in out
    assert "<- bottleneck" in out
    assert "infeasible" in out
    assert "best plan: t=2, d=16, 8 stages" in out


@pytest.mark.parametrize("name", ["tiny6_8dev", "infeasible_hbm"])
def test_cli_json_matches_expected(name, capsys):
    status = main(["place", "--instance", str(DATA / f"{name}.instance.json"), "--json"])
    got = json.loads(capsys.readouterr().out)
    exp = json.loads((DATA / f"{name}.expected.json").read_text())
    assert status == (0 if exp["best"] is not None else 1)
    assert _close(
        got["best"] and got["best"]["time_per_batch"], exp["best"] and exp["best"]["time_per_batch"]
    )
    for t, w in exp["per_tensor_parallel_width"].items():
        assert _close(got["per_tensor_parallel_width"][t]["time_per_batch"], w["time_per_batch"])
    assert _close(got["fixed_strategy_time_per_batch"], exp["fixed_strategy_time_per_batch"])


def test_cli_bad_instance_exits_2(tmp_path, capsys):
    obj = _tiny()
    obj["maxDevices"] = 0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(obj))
    assert main(["place", "--instance", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "devices=0" in err
    assert main(["place", "--instance", str(tmp_path / "missing.json")]) == 2


def test_problem_is_immutable():
    problem = _problem()
    with pytest.raises(AttributeError):
        problem.devices = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        problem.graphs[0].fwd_s[0] = 5.0
    assert copy.copy(problem).devices == problem.devices
