"""Layer scheduling: exactness against brute force, bounds, checker, memo, bad input."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from reference.schedule import brute_force, count_linear_extensions

from phaze.errors import ConfigError
from phaze.schedule import ScheduleCache, check_schedule, schedule_layer, schedule_model
from phaze.schedule._bounds import list_schedule, lower_bound
from phaze.schedule._problem import make_problem

#: Latencies are small integers times 2**-10 s, exact in binary, so distinct schedules
#: differ by >= 2**-10 s. Equal optima found through different summation orders can differ
#: by a few ulps only: compare with this relative tolerance.
RTOL = 1e-12
UNIT = 2.0**-10
#: Serial SGS runs the brute force may take per example (keeps each example < ~1 s).
BRUTE_BUDGET = 12_000


@st.composite
def instances(draw, max_ops: int = 7, budget: int = BRUTE_BUDGET):
    """A random DAG with random kinds, latencies and core counts; nodes relabelled by a
    random permutation so edges do not always point from lower to higher labels."""
    n = draw(st.integers(1, max_ops) | st.integers(max(1, max_ops - 2), max_ops))
    perm = draw(st.permutations(range(n)))
    edges = [(perm[i], perm[j]) for i in range(n) for j in range(i + 1, n) if draw(st.booleans())]
    kinds = draw(st.lists(st.sampled_from([0, 1, 2, 3]), min_size=n, max_size=n))
    one = draw(st.lists(st.integers(0, 16), min_size=n, max_size=n))
    alll = draw(st.lists(st.integers(0, 16), min_size=n, max_size=n))
    num_tc = draw(st.integers(1, 3))
    num_vc = draw(st.integers(1, 3))
    if budget:
        modes = 2 ** sum(k != 3 for k in kinds)
        assume(modes * count_linear_extensions(n, edges) <= budget)
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edges)
    return (g, [v * UNIT for v in one], [v * UNIT for v in alll], kinds, num_tc, num_vc)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= RTOL * max(abs(a), abs(b), UNIT)


def _assert_valid(s, inst, reverse=False):
    g, one, alll, kinds, _, _ = inst
    # rtol=0: schedules are built so that "starts when another ends" holds exactly
    errors = check_schedule(s, g, one, alll, kinds, reverse=reverse, rtol=0.0)
    assert not errors, f"{errors} for {inst}"
    assert s.tc_util_peak <= 1.0
    assert s.vc_util_peak <= 1.0


@settings(max_examples=35)
@given(instances())
def test_ilp_matches_brute_force(inst):
    """The ILP alone (no bounds shortcut, no decomposition) is an exact solver."""
    g, one, alll, kinds, num_tc, num_vc = inst
    opt, _, _ = brute_force(g.number_of_nodes(), list(g.edges), kinds, one, alll, num_tc, num_vc)
    cache = ScheduleCache()
    s = schedule_layer(g, one, alll, kinds, num_tc, num_vc, method="ilp", cache=cache)
    assert s.method == "ilp"
    assert cache.solved <= 1  # 0 when the formulation has no binaries (a longest path)
    assert s.optimal
    assert _close(s.makespan_s, opt), f"ilp {s.makespan_s} != brute force {opt} for {inst}"
    _assert_valid(s, inst)
    prob = make_problem(g, one, alll, kinds, num_tc, num_vc)
    lb, ub = lower_bound(prob), list_schedule(prob)[0]
    assert lb <= s.makespan_s * (1 + RTOL), (lb, inst)
    assert s.makespan_s <= ub * (1 + RTOL), (ub, inst)


@given(instances())
def test_auto_and_enumeration_match_brute_force(inst):
    g, one, alll, kinds, num_tc, num_vc = inst
    opt, _, _ = brute_force(g.number_of_nodes(), list(g.edges), kinds, one, alll, num_tc, num_vc)
    for method in ("auto", "enumerate"):
        s = schedule_layer(g, one, alll, kinds, num_tc, num_vc, method=method)
        assert s.optimal
        assert _close(s.makespan_s, opt), f"{method} {s.makespan_s} != {opt} for {inst}"
        assert s.lower_bound_s <= s.makespan_s
        _assert_valid(s, inst)


@given(instances(max_ops=14, budget=0), st.booleans(), st.sampled_from([1.0, 1 / 3, 1e-3 / 7]))
def test_auto_on_larger_dags_is_valid_and_bounded(inst, reverse, scale):
    """Beyond brute force: auto equals branch and bound on the whole DAG, lies between the
    bounds, and the checker accepts it exactly (forward and reversed; latencies also
    scaled to values that do not add up exactly in binary)."""
    g, one, alll, kinds, num_tc, num_vc = inst
    one, alll = [v * scale for v in one], [v * scale for v in alll]
    inst = (g, one, alll, kinds, num_tc, num_vc)
    s = schedule_layer(g, one, alll, kinds, num_tc, num_vc, reverse=reverse)
    _assert_valid(s, inst, reverse=reverse)
    prob = make_problem(g, one, alll, kinds, num_tc, num_vc, reverse=reverse)
    lb, ub = lower_bound(prob), list_schedule(prob)[0]
    assert lb <= s.makespan_s * (1 + RTOL)
    assert s.makespan_s <= ub * (1 + RTOL)
    if g.number_of_nodes() <= 9:
        e = schedule_layer(g, one, alll, kinds, num_tc, num_vc, reverse=reverse, method="enumerate")
        assert _close(s.makespan_s, e.makespan_s), (s.makespan_s, e.makespan_s, inst)


def test_reverse_is_the_reversed_dag():
    g = nx.DiGraph([(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)])
    one = [1.0, 3.0, 2.0, 1.0, 4.0]
    alll = [0.5, 1.0, 1.5, 1.0, 1.0]
    kinds = [2, 0, 1, 3, 0]
    a = schedule_layer(g, one, alll, kinds, 2, 1, reverse=True)
    b = schedule_layer(g.reverse(), one, alll, kinds, 2, 1)
    assert a.makespan_s == b.makespan_s
    assert not check_schedule(a, g, one, alll, kinds, reverse=True)


def test_chain_needs_no_solver():
    g = nx.DiGraph([(0, 1), (1, 2), (2, 3)])
    cache = ScheduleCache()
    s = schedule_layer(
        g, [1.0, 2.0, 3.0, 1.0], [2.0, 1.0, 1.0, 9.0], [2, 0, 1, 3], 4, 2, cache=cache
    )
    assert s.makespan_s == 1.0 + 1.0 + 1.0 + 1.0
    assert s.intra_op.tolist() == [False, True, True, False]
    assert s.method == "chain"
    assert s.optimal
    assert (cache.chains, cache.solved, cache.enumerated, cache.bound_closed) == (1, 0, 0, 0)
    assert cache.layer_schedules == 0  # a chain is not a schedule computed


def test_bounds_close_without_search():
    """Enough cores and intra-op never faster: the critical path is achieved."""
    g = nx.DiGraph([(0, 1), (0, 2), (0, 3), (1, 4), (2, 4), (3, 4)])
    cache = ScheduleCache()
    s = schedule_layer(
        g, [1.0, 2.0, 3.0, 4.0, 1.0], [1.0, 9.0, 9.0, 9.0, 1.0], [2, 0, 0, 0, 2], 8, 1, cache=cache
    )
    assert s.makespan_s == 6.0
    assert s.method == "bounds"
    assert (cache.bound_closed, cache.enumerated, cache.solved) == (1, 0, 0)
    assert cache.layer_schedules == cache.stats()["layer_schedules"] == 1
    assert s.tc_util_peak == 3 / 8
    assert s.tc_util_avg == pytest.approx(9.0 / (8 * 6.0))


def test_intra_op_runs_alone_even_against_comm():
    """A COMM operator may not overlap an intra-op operator (docs/scheduling.md)."""
    g = nx.DiGraph()
    g.add_nodes_from([0, 1])
    # alone: GEMM intra-op (1 s) then the collective (1 s), or GEMM single (3 s) beside it
    s = schedule_layer(g, [3.0, 1.0], [1.0, 1.0], [0, 3], 4, 1)
    assert s.makespan_s == 2.0
    assert s.intra_op.tolist() == [True, False]


def test_core_capacity_binds():
    """Four independent single-core GEMMs on 2 cores take two rounds."""
    g = nx.DiGraph()
    g.add_nodes_from(range(4))
    for method in ("auto", "ilp", "enumerate"):
        s = schedule_layer(g, [1.0] * 4, [0.9] * 4, [0] * 4, 2, 1, method=method)
        assert s.makespan_s == 2.0, method
        assert sorted(s.tc_core.tolist()) == [0, 0, 1, 1]


def test_memo_hits_and_determinism():
    g = nx.DiGraph([(0, 1), (0, 2), (1, 3), (2, 3)])
    args = ([1.0, 3.0, 2.0, 1.0], [1.0, 1.0, 1.5, 1.0], [2, 0, 0, 2])
    cache = ScheduleCache()
    a = schedule_layer(g, *args, 2, 1, cache=cache)
    b = schedule_layer(g, *args, 2, 1, cache=cache)
    assert a is b
    assert cache.layer_hits == 1
    c = schedule_layer(g, *args, 1, 1, cache=cache)  # other core counts: not a hit
    assert cache.layer_hits == 1
    assert c.num_tc == 1
    fresh = schedule_layer(g, *args, 2, 1)
    assert fresh.makespan_s == a.makespan_s
    assert np.array_equal(fresh.start_s, a.start_s)
    # the same segment inside a bigger layer is a segment hit
    g2 = nx.DiGraph([(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)])
    schedule_layer(g2, [*args[0], 1.0], [*args[1], 1.0], [*args[2], 2], 2, 1, cache=cache)
    assert cache.segment_hits == 1
    assert cache.stats()["segment_hits"] == 1
    cache.clear()
    assert cache.hits == 0
    assert not cache.layers


def test_opgraph_input_and_results_are_read_only():
    from phaze.models import build_graph, preset

    layer = build_graph(preset("gpt3-175b"), 2048, 1, 8).layers[1]
    n = layer.ops.n_ops
    rng = np.random.default_rng(0)
    one = rng.uniform(1e-5, 1e-3, n)
    alll = one / rng.uniform(0.5, 8.0, n)
    s = schedule_layer(layer.ops, one, alll, layer.ops.kinds, 8, 2)
    assert not check_schedule(s, layer.ops, one, alll, layer.ops.kinds, rtol=0.0)
    assert s.optimal
    with pytest.raises(ValueError, match="read-only"):
        s.start_s[0] = 0.0


def test_ilp_time_limit_flags_not_optimal():
    """16 independent GEMMs on 3 cores (P||Cmax): the paper's formulation cannot prove the
    optimum in a millisecond; the result is the incumbent, valid and flagged."""
    rng = np.random.default_rng(3)
    g = nx.DiGraph()
    g.add_nodes_from(range(16))
    one = rng.integers(5, 40, 16).astype(float)
    cache = ScheduleCache()
    s = schedule_layer(g, one, one, [0] * 16, 3, 1, method="ilp", time_limit_s=1e-3, cache=cache)
    assert not check_schedule(s, g, one, one, [0] * 16)
    assert not s.optimal
    assert cache.not_optimal == 1
    assert cache.ilp_stats[0].status in ("FEASIBLE", "NO_SOLUTION_FOUND")
    assert s.lower_bound_s <= s.makespan_s
    assert s.makespan_s <= list_schedule(make_problem(g, one, one, [0] * 16, 3, 1))[0]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"op_dag": nx.DiGraph([(0, 1), (1, 2), (2, 0)])}, "cycle"),
        ({"op_dag": nx.DiGraph([(0, 0), (0, 1), (1, 2)])}, "cycle"),
        ({"lat_one": [1.0, 1.0]}, "lat_one has shape"),
        ({"lat_all": [1.0, 1.0, 1.0, 1.0]}, "lat_all has shape"),
        ({"lat_one": [1.0, -1.0, 1.0]}, "lat_one\\[1\\]"),
        ({"lat_all": [1.0, float("nan"), 1.0]}, "lat_all\\[1\\]"),
        ({"kinds": [0, 7, 0]}, "kinds\\[1\\]=7"),
        ({"kinds": [0, 0]}, "kinds has shape"),
        ({"num_tc": 0}, "num_tc=0"),
        ({"num_vc": 0}, "num_vc=0"),
        ({"num_tc": 2.0}, "num_tc=2.0"),
        ({"op_dag": nx.DiGraph([(0, 1), (1, 5)])}, "nodes must be"),
        ({"op_dag": nx.Graph([(0, 1), (1, 2)])}, "undirected"),
        ({"op_dag": [(0, 1)]}, "not supported"),
        ({"time_limit_s": 0}, "time_limit_s"),
        ({"gap": -0.1}, "gap"),
        ({"method": "gurobi"}, "method"),
    ],
)
def test_bad_input(change, match):
    args = {
        "op_dag": nx.DiGraph([(0, 1), (1, 2)]),
        "lat_one": [1.0, 1.0, 1.0],
        "lat_all": [1.0, 1.0, 1.0],
        "kinds": [0, 2, 0],
        "num_tc": 2,
        "num_vc": 1,
    }
    args.update(change)
    with pytest.raises(ConfigError, match=match):
        schedule_layer(**args)
    with pytest.raises(ValueError, match=match):  # ConfigError is a ValueError
        schedule_layer(**args)


def test_checker_rejects_broken_schedules():
    import dataclasses

    g = nx.DiGraph([(0, 1), (0, 2)])
    one, alll, kinds = [1.0, 2.0, 2.0], [1.0, 1.0, 1.0], [2, 0, 0]
    s = schedule_layer(g, one, alll, kinds, 2, 1)
    ok = check_schedule(s, g, one, alll, kinds)
    assert ok == []
    early = dataclasses.replace(s, start_s=np.zeros(3))
    assert any("precedence" in e for e in check_schedule(early, g, one, alll, kinds))
    same_core = dataclasses.replace(
        s,
        start_s=np.array([0.0, 1.0, 1.0]),
        duration_s=np.array([1.0, 2.0, 2.0]),
        intra_op=np.zeros(3, bool),
        tc_core=np.array([-1, 0, 0]),
        makespan_s=3.0,
    )
    assert any("overlap on tc core" in e for e in check_schedule(same_core, g, one, alll, kinds))
    with pytest.raises(ConfigError):
        check_schedule(s, nx.DiGraph([(0, 1)]), one[:2], alll[:2], kinds[:2])


def _random_table(n_rows: int, n_arch: int, seed: int) -> np.ndarray:
    """Random latencies [op, arch, mode, pass]; all cores faster on about half the rows."""
    rng = np.random.default_rng(seed)
    one = rng.uniform(1e-6, 1e-3, (n_rows, n_arch, 1, 2))
    speedup = rng.choice([0.5, 1.0, 2.0, 8.0], (n_rows, n_arch, 1, 2))
    return np.concatenate([one, one / speedup], axis=2)


@pytest.mark.parametrize(("name", "tp"), [("gpt3-175b", 8), ("llama2-7b", 1), ("opt-350m", 2)])
def test_schedule_model_matches_schedule_layer(name, tp):
    from phaze.models import build_graph, preset, unique_ops

    g = build_graph(preset(name), 128, 1, tp)
    table, index = unique_ops(g)
    n_arch = 6
    lat = _random_table(len(table), n_arch, seed=tp)
    num_tc = np.array([1, 2, 8, 4096, 3, 1])
    num_vc = np.array([1, 1, 2, 4096, 1, 8])
    archs = [5, 0, 2, 3, 1]
    cache = ScheduleCache()
    out = schedule_model(g, lat, archs, cache, num_tc=num_tc, num_vc=num_vc, op_index=index)
    assert out.fwd_s.shape == (len(g.layers), len(archs))
    assert bool(out.optimal.all())
    for p in {0, 1, len(g.layers) - 1}:  # embedding, a block, the head
        layer = g.layers[p]
        rows = index.rows(0, p)
        for col, a in enumerate(archs):
            for pas, got in ((0, out.fwd_s), (1, out.bwd_s)):
                s = schedule_layer(
                    layer.ops,
                    lat[rows, a, 0, pas],
                    lat[rows, a, 1, pas],
                    layer.ops.kinds,
                    int(num_tc[a]),
                    int(num_vc[a]),
                    reverse=bool(pas),
                )
                assert got[p, col] == pytest.approx(s.makespan_s, rel=RTOL), (p, a, pas)
    # identical blocks are scheduled once: a second run is all memo hits
    before = cache.segment_hits
    again = schedule_model(g, lat, archs, cache, num_tc=num_tc, num_vc=num_vc, op_index=index)
    assert np.array_equal(again.fwd_s, out.fwd_s)
    assert np.array_equal(again.bwd_s, out.bwd_s)
    assert cache.segment_hits > before


def test_schedule_model_bad_input():
    from phaze.models import build_graph, preset, unique_ops

    g = build_graph(preset("bert-large"), 128, 1, 1)
    table, index = unique_ops(g)
    lat = _random_table(len(table), 2, seed=0)
    ok = {"num_tc": [1, 2], "num_vc": [1, 1], "op_index": index}
    with pytest.raises(ConfigError, match="arch_rows"):
        schedule_model(g, lat, [0, 2], **ok)
    with pytest.raises(ConfigError, match="num_tc"):
        schedule_model(g, lat, [0], num_tc=[0, 1], num_vc=[1, 1], op_index=index)
    with pytest.raises(ConfigError, match="core counts unknown"):
        schedule_model(g, lat, [0], op_index=index)
    with pytest.raises(ConfigError, match="shape"):
        schedule_model(g, lat[:, :, 0], [0], **ok)
    bad = lat.copy()
    bad[0, 0, 0, 0] = -1.0
    with pytest.raises(ConfigError, match="negative"):
        schedule_model(g, bad, [0], **ok)
    with pytest.raises(ConfigError, match="unique operators"):
        schedule_model(g, lat[:-1], [0], num_tc=[1, 2], num_vc=[1, 1])


def test_cli_schedule(tmp_path, capsys):
    import json

    from phaze.cli import main
    from phaze.models import build_graph, preset

    n = build_graph(preset("llama2-7b"), 4096, 1, 8).layers[1].ops.n_ops
    rng = np.random.default_rng(1)
    one = rng.uniform(1e-6, 1e-4, n)
    path = tmp_path / "lat.json"
    path.write_text(json.dumps({"lat_one": one.tolist(), "lat_all": (one / 4).tolist()}))
    argv = ["schedule", "--model", "llama2-7b", "--tp", "8", "--latencies", str(path)]
    assert main([*argv, "--pass", "bwd"]) == 0
    out = capsys.readouterr().out
    assert "makespan" in out
    assert "gate_proj+silu" in out
    assert main([*argv, "--json", "--num-tc", "1", "--num-vc", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["optimal"]
    assert len(data["ops"]) == n
    assert data["makespan_s"] == pytest.approx(max(op["finish_s"] for op in data["ops"]))
    assert main([*argv, "--tp", "1"]) == 2  # latencies of another layer size
    assert "lat_one has shape" in capsys.readouterr().err
    assert main([*argv, "--layer", "nope"]) == 2
    assert "--layer='nope'" in capsys.readouterr().err
    # latencies from the cost model (tpuv4-like preset with overrides)
    assert main(["schedule", "--tp", "8", "--num-tc", "2", "--layer", "head", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["num_tc"] == 2
    assert data["optimal"]
    assert data["makespan_s"] > 0
    assert main(["schedule", "--arch", "nope"]) == 2
    assert "unknown accelerator preset" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["auto", "ilp", "enumerate"])
def test_empty_and_single_operator_layers(method):
    g = nx.DiGraph()
    s = schedule_layer(g, [], [], [], 1, 1, method=method)
    assert s.makespan_s == 0.0
    assert s.tc_util_avg == 0.0
    g.add_node(0)
    s = schedule_layer(g, [2.0], [1.0], [1], 1, 1, method=method)
    assert s.makespan_s == 1.0
    assert s.intra_op.tolist() == [True]
    assert s.optimal
    assert not check_schedule(s, g, [2.0], [1.0], [1])


@pytest.mark.parametrize(("name", "tp"), [("gpt3-175b", 8), ("llama2-7b", 1)])
def test_real_blocks_with_the_cost_model(name, tp):
    """Real latencies (phaze.cost) on tpuv4-like and 1- and 2-tensor-core variants: the
    whole-block ILP equals the default path; schedule_model reads the cores from the
    latency table and matches schedule_layer."""
    from phaze.cost import latency_table
    from phaze.hardware import Accelerator, ArchTable
    from phaze.models import build_graph, preset, unique_ops

    tpu = Accelerator.preset("tpuv4-like")
    accs = [tpu, tpu.replace(num_tc=1, num_vc=1), tpu.replace(num_tc=2, tc_width=64)]
    g = build_graph(preset(name), 2048, 1, tp)
    table, index = unique_ops(g)
    lt = latency_table(table, ArchTable.from_accelerators(accs))
    out = schedule_model(g, lt, [0, 1, 2])
    assert bool(out.optimal.all())
    p = 1  # the first block
    ops, rows = g.layers[p].ops, index.rows(0, p)
    for a, acc in enumerate(accs):
        for pas, got in ((0, out.fwd_s), (1, out.bwd_s)):
            args = (ops, lt.latency_s[rows, a, 0, pas], lt.latency_s[rows, a, 1, pas],
                    ops.kinds, acc.num_tc, acc.num_vc)  # fmt: skip
            cache = ScheduleCache()
            ilp = schedule_layer(*args, reverse=bool(pas), method="ilp", cache=cache)
            auto = schedule_layer(*args, reverse=bool(pas))
            # CBC reaches the default path's proven optimum and bounds it to 1e-6 (its
            # exact proof flag depends on LP round-off, which differs between machines)
            assert auto.optimal
            assert ilp.makespan_s == pytest.approx(auto.makespan_s, rel=1e-9)
            assert ilp.lower_bound_s >= ilp.makespan_s * (1 - 1e-6)
            assert got[p, a] == pytest.approx(auto.makespan_s, rel=RTOL)
            assert cache.ilp_stats[0].seconds <= 2.0
            for sched in (ilp, auto):
                assert not check_schedule(sched, ops, *args[1:4], reverse=bool(pas), rtol=0.0)
                assert sched.tc_util_peak <= 1.0
