"""Large design spaces: sub-tables that keep their parent's core configurations,
row-by-row latency assembly, the blocked time-per-batch bound, energies kept only for
scheduled architectures and the frontier pass's scheduling ahead -- each gives the same
values as the plain computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import bounds as ref_bounds

from phaze._kernels import dp as kdp
from phaze.cost import latency_table
from phaze.hardware import ArchTable, DesignSpace
from phaze.hardware.archtable import ARCH_COLUMNS
from phaze.joint import arch_bounds as arch_bounds_module
from phaze.joint import bounds as bounds_module
from phaze.joint import evaluator as evaluator_module
from phaze.joint import layer_energy as layer_energy_module
from phaze.joint import search
from phaze.joint import strategy as strategy_module
from phaze.models import build_graph, preset, unique_ops
from phaze.rows import ROW_FIELDS
from phaze.units import GIB
from phaze.workload import Cluster, Workload

SPACE = DesignSpace(
    num_tc=(1, 3, 12),
    num_vc=(1, 5),
    tc_width=(8, 96),
    tc_depth=(24, 128),
    glb_bytes=(3 * 2**20, 2**27),
    area_band=0.0,
)
CLUSTER = Cluster(devices=64)
SETTINGS = dict(micro_batch_sizes=(1, 4), hbm_sizes=(2 * GIB, 16 * GIB), recompute=(False, True))
BERT = Workload(preset("bert-large"), seq_len=128, global_batch=512)
GPT2 = Workload(preset("gpt2-xl"), seq_len=128, global_batch=512, optimizer="adam")


@pytest.fixture(scope="module")
def table() -> ArchTable:
    return SPACE.enumerate()


def _built(table: ArchTable, idx: np.ndarray) -> ArchTable:
    """The sub-table the plain way: checked columns, core configurations sorted again."""
    return ArchTable(
        **{name: getattr(table, name)[idx] for name in ARCH_COLUMNS}, area_um2=table.area_um2[idx]
    )


@given(st.lists(st.integers(-46, 45), max_size=30))
def test_take_equals_the_table_built_from_the_same_rows(idx_list):
    table = SPACE.enumerate()
    assert len(table) == 46
    idx = np.array(idx_list, dtype=np.int64)
    got, want = table.take(idx), _built(table, idx)
    for name in (*ARCH_COLUMNS, "area_um2", "tc_index", "vc_index"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), f"{name} differs for {idx_list}"
        assert not a.flags.writeable, name
    for side in ("tc", "vc"):
        a, b = getattr(got, side).columns, getattr(want, side).columns
        assert list(a) == list(b), side
        for key in a:
            assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), (side, key)


def test_take_of_a_slice_refuses_nothing_and_checks_the_range(table):
    assert len(table.take(slice(3, 30, 4))) == 7
    with pytest.raises(ValueError, match="out of range"):
        table.take(np.array([len(table)]))


def test_latency_table_of_a_sub_table_is_the_columns_of_the_whole_one(table):
    graphs = [build_graph(preset("bert-large"), 128, 2, t) for t in (1, 4)]
    ops, _ = unique_ops(graphs)
    whole = latency_table(ops, table).latency_s
    idx = np.array([45, 0, 5, 5, 31, 12], dtype=np.int64)
    part = latency_table(ops, table.take(idx)).latency_s
    # the same float operations on the same numbers: bit for bit
    assert part.tobytes() == np.ascontiguousarray(whole[:, idx]).tobytes()
    assert (whole > 0).any() and np.isfinite(whole).all()


def _bound_reference(fwd, bwd, a, devices, micro_batches, p0, bw, min_stages, count, sync):
    """Every d and every stage count s, per architecture (the docstring's formula)."""
    work = fwd + bwd
    out = []
    for q in range(work.shape[1]):
        w = [float(work[i, q]) for i in range(work.shape[0]) if count[i] > 0]
        dev = [int(a[i]) for i in range(work.shape[0]) if count[i] > 0]
        cnt = [float(count[i]) for i in range(work.shape[0]) if count[i] > 0]
        n_layers = int(sum(cnt))
        total = sum(x * y * c for x, y, c in zip(w, dev, cnt))
        plain = sum(x * c for x, c in zip(w, cnt))
        widest = max(dev)
        cheap = int(sum(c for c, y in zip(cnt, dev) if y == 1)) if widest > 1 else n_layers
        best = math.inf
        for d in range(1, min(devices, micro_batches) + 1):
            m, n = -(-micro_batches // d), devices // d
            s_hi = min(n_layers, n, (n + (widest - 1) * cheap) // widest)
            if n < widest:
                continue
            for s in range(min_stages, s_hi + 1):
                load = max(total / n, max(w), plain / s)
                best = min(best, load * (m + s - 1) + sync * p0 * (d - 1) / (bw * d))
        out.append(best)
    return np.array(out)


@given(
    st.integers(1, 4),
    st.integers(1, 9),
    st.integers(1, 40),
    st.integers(1, 70),
    st.integers(1, 3),
    st.sampled_from([0.0, 3.0, 4.0]),
    st.integers(0, 2**31),
)
def test_time_bound_equals_every_d_and_s(n_rows, n_arch, devices, mbatches, lo, sync, seed):
    rng = np.random.default_rng(seed)
    fwd, bwd = rng.uniform(0.0, 2.0, (2, n_rows, n_arch))
    a = rng.choice([1, 2, 4], n_rows)
    count = rng.integers(0, 4, n_rows).astype(float)
    count[0] = max(count[0], 1.0)
    args = (fwd, bwd, a, devices, mbatches)
    kw = dict(
        first_layer_param_bytes=1e6,
        link_bandwidth_Bps=1e9,
        min_stages=lo,
        layer_count=count,
        sync_factor=sync,
    )
    want = _bound_reference(*args, 1e6, 1e9, lo, count, sync)
    got = bounds_module.time_per_batch_lower_bound(*args, **kw)
    # the bound evaluates only the knee's stage counts and the first d of each run of
    # equal m: the same minimum up to float rounding (relative 1e-12)
    np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=f"{args}, {kw}")
    assert np.array_equal(got, bounds_module.time_per_batch_lower_bound(*args, **kw))


@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 50.0) | st.just(math.inf),
            st.floats(0.0, 20.0) | st.just(math.inf) | st.just(math.nan),
            st.floats(0.0, 5.0) | st.just(math.nan),
        ),
        min_size=1,
        max_size=12,
    ),
    st.lists(
        st.tuples(st.integers(1, 64), st.integers(1, 64), st.integers(1, 40), st.floats(0.0, 3.0)),
        max_size=6,
    ),
    st.integers(1, 5),
    st.sampled_from([1, 2, 4]),
)
def test_time_bound_kernel_equals_the_numpy_reference(archs, steps, min_stages, interleave):
    # W, U, the slowest layer (inf: a layer no architecture runs; NaN propagates as in
    # numpy), and data-parallel steps
    total, plain, slowest = (np.array(c, dtype=np.float64) for c in zip(*archs, strict=True))
    got = kdp.time_per_batch_bounds(
        total,
        plain,
        slowest,
        np.array([s[0] for s in steps], dtype=np.int64),
        np.array([s[1] for s in steps], dtype=np.int64),
        np.array([s[2] for s in steps], dtype=np.int64),
        np.array([s[3] for s in steps], dtype=np.float64),
        min_stages,
        interleave,
    )
    want = ref_bounds.time_per_batch_bounds(total, plain, slowest, steps, min_stages, interleave)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan), (archs, steps, got, want)
    assert got[~nan].tobytes() == want[~nan].tobytes(), (archs, steps, got, want)


def _columns(result) -> dict:
    return {k: np.asarray(result.rows[k]) for k in result.rows}


@pytest.mark.parametrize("objective", ["throughput", "energy-per-sample"])
def test_energies_of_scheduled_architectures_only_give_the_same_rows(monkeypatch, objective):
    whole = search([BERT], CLUSTER, SPACE, objective=objective, **SETTINGS)
    # 7 architectures per chunk: no energy kept for all architectures; the energy bound
    # then needs the totals of all of them, computed chunk by chunk
    monkeypatch.setattr(arch_bounds_module, "LATENCY_CHUNK_ARCHS", 7)
    chunked = search([BERT], CLUSTER, SPACE, objective=objective, **SETTINGS)
    assert chunked.best == whole.best
    assert chunked.frontier.tolist() == whole.frontier.tolist()
    got, want = _columns(chunked), _columns(whole)
    assert set(got) == {"workload", "arch", "micro_batch_size", "hbm_bytes", "recompute"} | set(
        ROW_FIELDS
    )
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    assert (want["power_w"] > 0).any() and np.isfinite(want["energy_per_sample_j"]).any()


def test_energies_are_kept_only_for_scheduled_architectures(monkeypatch, table):
    monkeypatch.setattr(arch_bounds_module, "LATENCY_CHUNK_ARCHS", 7)
    ev = evaluator_module.WorkloadEvaluator(BERT, CLUSTER, table, (1,))
    assert ev._latencies(1).layer_energy_j is None
    ev.schedule(1, [3, 40])
    kept = evaluator_module.WorkloadEvaluator(BERT, CLUSTER, table, (1,))
    monkeypatch.setattr(arch_bounds_module, "LATENCY_CHUNK_ARCHS", 10**9)
    whole = kept._latencies(1)
    for arch in (3, 40, 17):  # 17: never scheduled, computed on demand
        layer_j, total_j = ev._arch_energy(1, arch)
        assert layer_j.tobytes() == np.ascontiguousarray(whole.layer_energy_j[..., arch]).tobytes()
        assert total_j.tobytes() == np.ascontiguousarray(whole.total_energy_j[..., arch]).tobytes()


@given(
    n_u=st.integers(1, 6),
    n_cols=st.integers(1, 300),
    cut=st.integers(0, 300),
    seed=st.integers(0, 2**32 - 1),
)
def test_energy_totals_of_a_column_slice_are_the_slice_of_the_whole(n_u, n_cols, cut, seed):
    # a large space sums its energies chunk by chunk; every column must come out as the
    # whole table's, bit for bit, whatever the chunk's width (a BLAS product need not)
    rng = np.random.default_rng(seed)
    energy = rng.uniform(1e-3, 10.0, (2, n_u, 2, n_cols))
    unique = rng.integers(0, n_u, (2, 40))
    whole = layer_energy_module.energy_totals(energy, unique)
    cut = min(cut, n_cols)
    for cols in (slice(0, cut), slice(cut, n_cols)):
        part = layer_energy_module.energy_totals(np.ascontiguousarray(energy[..., cols]), unique)
        assert part.tobytes() == np.ascontiguousarray(whole[..., cols]).tobytes()
    per_position = np.stack([energy[g, unique[g]].sum(axis=0) for g in range(2)])
    np.testing.assert_allclose(whole, per_position, rtol=1e-12)


def test_scheduling_ahead_does_not_change_the_rows(monkeypatch):
    # windows of 4 architectures, 16 scheduled ahead (the space has 46)
    monkeypatch.setattr(strategy_module, "BATCH", 4)
    monkeypatch.setattr(strategy_module, "LOOKAHEAD", 16)
    ahead = search([BERT], CLUSTER, SPACE, **SETTINGS)
    monkeypatch.setattr(strategy_module, "LOOKAHEAD", 1)
    one = search([BERT], CLUSTER, SPACE, **SETTINGS)
    assert one.best == ahead.best
    assert one.frontier.tolist() == ahead.frontier.tolist()
    for key, values in _columns(ahead).items():
        np.testing.assert_array_equal(_columns(one)[key], values, err_msg=key)
    assert one.counters["exact_rows"] == ahead.counters["exact_rows"] > 0


@pytest.mark.parametrize("workloads", [[BERT], [BERT, GPT2]], ids=["one", "two"])
def test_exact_rows_are_a_subset_of_the_exhaustive_rows_each_unchanged(workloads):
    exact = search(workloads, CLUSTER, SPACE, **SETTINGS)
    full = search(workloads, CLUSTER, SPACE, strategy="exhaustive", **SETTINGS)
    assert exact.best == full.best
    assert exact.frontier.tolist() == full.frontier.tolist()
    key = ("workload", "arch", "micro_batch_size", "hbm_bytes", "recompute")

    def index(rows):
        return {tuple(rows[k][i].item() for k in key): i for i in range(rows["arch"].size)}

    ie, ifull = index(exact.rows), index(full.rows)
    assert set(ie) <= set(ifull)
    # a batch is placed only for the settings that may reach its floor: fewer rows
    assert 0 < len(ie) < len(ifull)
    for row_key, i in ie.items():
        for f in ROW_FIELDS:
            assert exact.rows[f][i] == full.rows[f][ifull[row_key]], (row_key, f)
