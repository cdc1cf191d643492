"""Search building blocks: result store, paper walk, frontier, admissible bounds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference.schedule import brute_force

from phaze.errors import ConfigError
from phaze.joint.bounds import layer_latency_lower_bound, time_per_batch_lower_bound
from phaze.joint.strategy import area_buckets, pareto_frontier, phaze_walk
from phaze.store import ResultStore

# --- store ---------------------------------------------------------------------------------

VALUES = {
    "throughput": [1.5, 2.5],
    "time_per_batch_s": [3.0, 4.0],
    "tensor_width": [1, 2],
    "data_parallel": [8, 4],
    "num_stages": [1, 2],
    "bottleneck_stage": [0, 1],
    "power_w": [40.5, 0.0],
    "energy_per_sample_j": [3.25, float("inf")],  # infeasible rows store inf
}


def test_store_keeps_rows_across_reopen_without_duplicates(tmp_path):
    with ResultStore(tmp_path, {"a": 1}) as s:
        assert s.add("m", 2, 64, True, [7, 3], VALUES) == 2
        assert s.add("m", 2, 64, True, [7, 3], VALUES) == 0  # same keys: ignored
    with ResultStore(tmp_path, {"a": 1}) as s:
        got = s.load("m", 2, 64, True)
        assert got["arch"].tolist() == [3, 7]
        assert got["throughput"].tolist() == [2.5, 1.5]
        assert got["energy_per_sample_j"].tolist() == [float("inf"), 3.25]
        assert s.count() == 2
        assert s.load("m", 2, 64, False)["arch"].size == 0


def test_store_refuses_other_arguments_unless_forced(tmp_path):
    with ResultStore(tmp_path, {"a": 1, "b": 2}) as s:
        s.add("m", 1, 1, False, [0], {k: v[:1] for k, v in VALUES.items()})
    with pytest.raises(ConfigError, match=r"differs in: a: 1 -> 5.*--force"):
        ResultStore(tmp_path, {"a": 5, "b": 2})
    with ResultStore(tmp_path, {"a": 5, "b": 2}, force=True) as s:
        assert s.count() == 0


def test_store_in_read_only_location():
    # /proc refuses new directories even to root, unlike a chmod-ed folder
    with pytest.raises(ConfigError, match="cannot be created"):
        ResultStore("/proc/phaze-test-out", {})


def test_store_directory_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="cannot be created"):
        ResultStore(f / "sub", {})


# --- the paper's walk -----------------------------------------------------------------------


def test_phaze_walk_order_and_stopping_rule_on_crafted_space():
    # 8 buckets of 0.01 mm^2; two architectures in the largest bucket
    area = np.array(
        [80_500.0, 80_100.0, 70_000.0, 60_000.0, 50_000.0, 40_000.0, 30_000.0, 20_000.0, 10_000.0]
    )
    tput = np.array([1.0, 2.0, 3.0, 2.5, 2.5, 2.4, 2.0, 9.0, 9.5])
    calls = []

    def value_of(idx):
        calls.append(idx.tolist())
        return tput[idx]

    visited, values = phaze_walk(area, value_of, patience=5)
    # buckets visited from the largest area down, both members of the first bucket
    assert calls == [[0, 1], [2], [3], [4], [5], [6]]
    # per-bucket best: 2, 3, 2.5, 2.5, 2.4, 2.0 -> last five non-increasing: stop
    assert visited.tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert values.tolist() == tput[:7].tolist()
    # the paper's walk misses the better small designs; that is what it is compared on
    assert values.max() < tput.max()


def test_phaze_walk_keeps_going_while_buckets_improve():
    area = np.arange(10, 0, -1) * 10_000.0
    visited, _ = phaze_walk(area, lambda idx: idx.astype(float), patience=5)
    assert visited.size == 10


def test_area_buckets_are_largest_first():
    b = area_buckets(np.array([15_000.0, 25_000.0, 19_999.0, 5.0]))
    assert [x.tolist() for x in b] == [[1], [0, 2], [3]]


@given(st.lists(st.tuples(st.integers(1, 20), st.integers(0, 20)), min_size=1, max_size=30))
def test_pareto_frontier_matches_brute_force(points):
    area = np.array([p[0] for p in points], dtype=float)
    tput = np.array([p[1] for p in points], dtype=float)
    got = set(pareto_frontier(area, tput).tolist())
    expected = set()
    for i in range(len(points)):
        if tput[i] <= 0:
            continue
        beaten = any(
            (area[j] < area[i] and tput[j] >= tput[i])
            or (area[j] == area[i] and (tput[j] > tput[i] or (tput[j] == tput[i] and j < i)))
            for j in range(len(points))
            if j != i
        )
        if not beaten:
            expected.add(i)
    assert got == expected


# --- bounds ---------------------------------------------------------------------------------


def _brute_makespan(n, edges, kinds, l1, la, num_tc, num_vc):
    """Least makespan over every mode assignment and order (serial SGS), tiny DAGs."""
    return brute_force(n, edges, kinds, l1, la, num_tc, num_vc)[0]


@st.composite
def tiny_layers(draw):
    n = draw(st.integers(1, 5))
    edges = sorted({(i, j) for i in range(n) for j in range(i + 1, n) if draw(st.booleans())})
    kinds = [draw(st.integers(0, 3)) for _ in range(n)]
    l1 = [float(draw(st.integers(1, 20))) for _ in range(n)]
    la = [float(draw(st.integers(1, 20))) if k != 3 else l1[i] for i, k in enumerate(kinds)]
    return n, edges, kinds, l1, la, draw(st.integers(1, 3)), draw(st.integers(1, 3))


@given(tiny_layers())
def test_layer_lower_bound_never_exceeds_the_optimum(inst):
    n, edges, kinds, l1, la, num_tc, num_vc = inst
    lb = layer_latency_lower_bound(
        np.array(edges, dtype=np.int64).reshape(-1, 2),
        np.array(kinds),
        np.array(l1)[:, None],
        np.array(la)[:, None],
        np.array([num_tc]),
        np.array([num_vc]),
    )[0]
    opt = _brute_makespan(n, edges, kinds, l1, la, num_tc, num_vc)
    assert lb <= opt + 1e-12, (inst, lb, opt)


@given(
    st.integers(1, 5),
    st.integers(1, 6),
    st.integers(1, 12),
    st.integers(1, 3),
    st.randoms(use_true_random=False),
)
def test_time_per_batch_bound_below_every_chain_plan(n, devices, micro, t, rnd):
    """Enumerate every partition of a chain into stages, d, and check the bound."""
    fwd = np.array([rnd.uniform(0.1, 2) for _ in range(n)])
    bwd = np.array([rnd.uniform(0.1, 2) for _ in range(n)])
    a = np.full(n, t)
    lb = time_per_batch_lower_bound(fwd[:, None], bwd[:, None], a, devices, micro)[0]
    best = np.inf
    for cuts in itertools.product([False, True], repeat=n - 1):
        bounds = [0, *[i + 1 for i, c in enumerate(cuts) if c], n]
        loads = [float((fwd + bwd)[lo:hi].sum()) for lo, hi in zip(bounds, bounds[1:])]
        s = len(loads)
        for d in range(1, min(devices, micro) + 1):
            if s * t > devices // d:
                continue
            m = -(-micro // d)
            best = min(best, max(loads) * (m + s - 1))
    assert lb <= best * (1 + 1e-12)
