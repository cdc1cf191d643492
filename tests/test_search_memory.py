"""Memory per architecture: lower bounds per unique layer, operator latencies in chunks
for large spaces, core counts validated once per run; results unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from phaze.hardware import DesignSpace
from phaze.joint import arch_bounds as arch_bounds_module
from phaze.joint import search
from phaze.joint.evaluator import WorkloadEvaluator
from phaze.models import build_graph, preset, unique_ops
from phaze.schedule import ScheduleCache, schedule_model
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


def _rows(result) -> dict:
    key = ("workload", "arch", "micro_batch_size", "hbm_bytes", "recompute")
    return {
        tuple(int(result.rows[k][i]) for k in key): result.rows["throughput"][i]
        for i in range(result.rows["arch"].size)
    }


@pytest.mark.parametrize("patched", ["LATENCY_CHUNK_ARCHS", "KEEP_TABLE_ARCHS"])
def test_chunked_latencies_give_the_same_search(monkeypatch, patched):
    whole = search([BERT], CLUSTER, SPACE, **SETTINGS)
    assert arch_bounds_module.keeps_whole_table(len(SPACE.enumerate()))
    # 7 architectures per chunk: several chunks, a short last one, and the latencies of
    # scheduled architectures computed again; or (as the paper's space of 29,360 is
    # searched) no table kept, in one chunk
    monkeypatch.setattr(arch_bounds_module, patched, 7)
    chunked = search([BERT], CLUSTER, SPACE, **SETTINGS)
    assert len(SPACE.enumerate()) > 2 * 7
    assert chunked.best == whole.best
    assert chunked.frontier.tolist() == whole.frontier.tolist()
    assert _rows(chunked) == _rows(whole)


def test_lower_bounds_are_stored_per_unique_layer(monkeypatch):
    monkeypatch.setattr(arch_bounds_module, "LATENCY_CHUNK_ARCHS", 5)
    table = SPACE.enumerate()
    ev = WorkloadEvaluator(BERT, CLUSTER, table, (1,))
    lat = ev._latencies(1)
    n_layers = ev._mbs[1].param_bytes.shape[1]
    # bert-large: 24 identical blocks and a few other layers, per width
    assert lat.lb_fwd_s.shape[1] <= 4 < n_layers
    assert lat.lb_fwd_s.shape[2] == len(table)
    assert lat.latency_s is None  # not kept above the chunk size
    assert (lat.lb_count.sum(axis=1) == n_layers).all()
    # the bound equals the one from per-layer rows (each layer its own row)
    full = WorkloadEvaluator(BERT, CLUSTER, table, (1,))
    monkeypatch.setattr(arch_bounds_module, "LATENCY_CHUNK_ARCHS", 10**9)
    np.testing.assert_allclose(ev.upper_bound(1), full.upper_bound(1), rtol=1e-12)


def test_core_counts_are_checked_once_per_run():
    g = build_graph(preset("bert-large"), 128, 1, 1)
    ops, index = unique_ops(g)
    lat = np.full((len(ops), 3, 2, 2), 1e-4)
    lat[:, :, 1, :] = 5e-5
    num_tc, num_vc = np.array([1, 2, 4]), np.array([1, 1, 2])
    cache = ScheduleCache()
    a = schedule_model(g, lat, [0], cache, num_tc=num_tc, num_vc=num_vc, op_index=index)
    b = schedule_model(g, lat, [1, 2], cache, num_tc=num_tc, num_vc=num_vc, op_index=index)
    entries = [v for k, v in cache.structures.items() if k[0] == "cores"]
    assert len(entries) == 1 and entries[0][0] is num_tc
    c = schedule_model(g, lat, [0, 1, 2], num_tc=num_tc, num_vc=num_vc, op_index=index)
    np.testing.assert_array_equal(c.fwd_s, np.concatenate([a.fwd_s, b.fwd_s], axis=1))


def test_bad_core_counts_still_raise_with_a_cache():
    g = build_graph(preset("bert-large"), 128, 1, 1)
    ops, index = unique_ops(g)
    lat = np.full((len(ops), 2, 2, 2), 1e-4)
    with pytest.raises(ValueError, match="num_tc has a value 0"):
        schedule_model(
            g, lat, [0], ScheduleCache(), num_tc=np.array([0, 1]), num_vc=np.array([1, 1]),
            op_index=index,
        )  # fmt: skip
