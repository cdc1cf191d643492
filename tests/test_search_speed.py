"""The search's fast paths give the same answers as the plain ones: the prepared chain
placement, the placement memo, the time bound with pipeline bubbles and memory-forced
stages, and per-workload floors with several workloads."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from phaze.hardware import DesignSpace
from phaze.joint import search
from phaze.joint.bounds import stages_lower_bound, time_per_batch_lower_bound
from phaze.joint.evaluator import WorkloadEvaluator
from phaze.models import preset
from phaze.placement import place_arrays
from phaze.placement.chain import place_chain, prepare_chain
from phaze.systems import Network, NetworkLevel
from phaze.units import GIB
from phaze.workload import Cluster, Workload


@st.composite
def chains(draw):
    """A random chain placement instance: widths, per-width layer arrays, cluster."""
    n = draw(st.integers(1, 6))
    widths = draw(st.sampled_from([(1,), (1, 2), (1, 2, 4), (2,)]))
    w = len(widths)
    rnd = draw(st.randoms(use_true_random=False))
    lat = lambda: [[rnd.uniform(0.1, 3.0) for _ in range(n)] for _ in range(w)]  # noqa: E731
    fwd, bwd = np.array(lat()), np.array(lat())
    pb = np.array([[rnd.randint(0, 20) / (1 + k) for _ in range(n)] for k in range(w)], float)
    ab = np.array([[rnd.randint(0, 10) for _ in range(n)] for _ in range(w)], float)
    tp = np.array([[widths[k] > 1 and rnd.random() < 0.7 for _ in range(n)] for k in range(w)])
    eb = np.array([[rnd.randint(0, 4) for _ in range(n - 1)] for _ in range(w)], float)
    return dict(
        widths=widths,
        fwd=fwd,
        bwd=bwd,
        pb=pb,
        ab=ab,
        tp=tp,
        src=np.arange(n - 1),
        dst=np.arange(1, n),
        eb=eb.reshape(w, n - 1),
        devices=draw(st.integers(1, 12)),
        bw=draw(st.sampled_from([0.5, 1.0, 8.0])),
        micro=draw(st.integers(1, 9)),
        hbm=float(draw(st.integers(5, 150))),
        recompute=draw(st.booleans()),
        adam=draw(st.booleans()),
        rules=_rules(draw, rnd, w, n),
        network=(
            Network(
                (
                    NetworkLevel("node", draw(st.sampled_from([2, 4])), 8.0, 1.0, 0.25),
                    NetworkLevel("scale-out", 0, draw(st.sampled_from([1.0, 2.0])), 0.5, 1.0),
                )
            )
            if draw(st.booleans())
            else None
        ),
    )


def _rules(draw, rnd, w, n) -> dict:
    """Training-accounting overrides (none: the paper's rules)."""
    if not draw(st.booleans()):
        return {}
    return {
        "activation_bytes": np.array(
            [[rnd.randint(0, 10) for _ in range(n)] for _ in range(w)], float
        ),
        "state_factor": draw(st.sampled_from([2.0, 3.0, 9.0])),
        "recompute_s": np.array([[rnd.uniform(0.0, 2.0) for _ in range(n)] for _ in range(w)]),
        "work_bytes": np.array([[rnd.randint(0, 6) for _ in range(n)] for _ in range(w)], float),
        "recompute_last": draw(st.booleans()),
        "stash_inputs": draw(st.booleans()),
    }


def _place_arrays(c, widths=None, k=None, rules=None):
    """place_arrays on the instance ``c`` (one width ``k`` if given), with the training
    overrides ``rules`` as place_chain takes them (activation bytes replace ``c["ab"]``)."""
    sel = slice(None) if k is None else slice(k, k + 1)
    rules = dict(rules or {})
    ab = rules.pop("activation_bytes", c["ab"])
    return place_arrays(
        widths or c["widths"],
        c["fwd"][sel],
        c["bwd"][sel],
        c["pb"][sel],
        ab[sel],
        c["tp"][sel],
        c["src"],
        c["dst"],
        c["eb"][sel],
        devices=c["devices"],
        link_bandwidth_Bps=c["bw"],
        hbm_bytes=c["hbm"],
        num_micro_batches=c["micro"],
        recompute=c["recompute"],
        adam=c["adam"],
        network=c.get("network"),
        **rules,
    )


@given(chains())
def test_prepared_chain_placement_equals_place_arrays(c):
    prep = prepare_chain(
        c["widths"],
        c["pb"],
        c["ab"],
        c["tp"],
        c["src"],
        c["dst"],
        c["eb"],
        devices=c["devices"],
        link_bandwidth_Bps=c["bw"],
        num_micro_batches=c["micro"],
        adam=c["adam"],
        network=c["network"],
    )
    rules = c["rules"]
    got = place_chain(
        prep, c["fwd"], c["bwd"], hbm_bytes=c["hbm"], recompute=c["recompute"], **rules
    )
    want = _place_arrays(c, rules=rules)
    assert got[:5] == want[:5], (got, want)
    np.testing.assert_array_equal(got.width_times_s, want.width_times_s)
    assert got.last_stage_layers == want.last_stage_layers, (got, want)


def test_prepare_chain_refuses_a_graph_that_is_not_a_chain():
    from phaze.errors import ConfigError

    with pytest.raises(ConfigError, match="chain"):
        prepare_chain(
            [1], [[1.0] * 3], [[1.0] * 3], [False] * 3, [0, 0], [1, 2], [0.0, 0.0],
            devices=2, link_bandwidth_Bps=1.0, num_micro_batches=2, adam=False,
        )  # fmt: skip


@given(chains())
def test_time_bound_with_bubble_and_memory_stages_is_below_the_dp_optimum(c):
    """The DP is exact (checked against brute force elsewhere), so its optimum at each
    width bounds the time bound from below, with exact layer latencies as the layer
    lower bounds and the stage count the HBM size forces (with or without network
    levels for the gradient all-reduce)."""
    state = 3.0 if c["adam"] else 2.0
    for k, t in enumerate(c["widths"]):
        opt = _place_arrays(c, widths=[t], k=k).time_per_batch_s
        a = np.where(c["tp"][k], t, 1)
        s_min = stages_lower_bound(state * c["pb"][k] + c["ab"][k], c["hbm"])
        lb = time_per_batch_lower_bound(
            c["fwd"][k][:, None],
            c["bwd"][k][:, None],
            a,
            c["devices"],
            c["micro"],
            first_layer_param_bytes=float(c["pb"][k, 0]),
            # on network levels: the fastest ring, two pipelines (as the evaluator's bound)
            # (stride t, or 1 when no layer is tensor-parallel: the placement's t_eff)
            link_bandwidth_Bps=(
                c["bw"]
                if c["network"] is None
                else c["network"].ring(2, t if c["tp"][k].any() else 1)[0]
            ),
            min_stages=s_min,
        )[0]
        assume(math.isfinite(opt) or math.isfinite(lb))
        assert lb <= opt * (1 + 1e-9), (t, lb, opt, s_min, c)


def test_time_bound_counts_the_pipeline_bubble():
    # 4 layers of work 1, 4 devices, 1 micro-batch: spreading the work gives W / n = 1,
    # but every plan with s stages takes max load * s >= 4 (the bubble)
    ones = np.ones((4, 1))
    args = (0.5 * ones, 0.5 * ones, np.ones(4), 4, 1)
    assert time_per_batch_lower_bound(*args).tolist() == [4.0]
    # 3 stages forced by memory: s = 3 is still possible (loads 2, 1, 1: 2 * 3 = 6)
    assert time_per_batch_lower_bound(*args, min_stages=3).tolist() == [4.0]
    # 5 stages cannot be held by 4 layers: no plan
    assert time_per_batch_lower_bound(*args, min_stages=5).tolist() == [math.inf]
    # 8 micro-batches on 2 devices: d = 1, s = 2 gives 2 * 9 = 18; d = 2 gives 4 * 4 = 16
    assert time_per_batch_lower_bound(0.5 * ones, 0.5 * ones, np.ones(4), 2, 8).tolist() == [16.0]


SMALL_SPACE = DesignSpace(
    num_tc=(1, 4, 16),
    num_vc=(1, 4),
    tc_width=(8, 128),
    tc_depth=(8, 128),
    glb_bytes=(2**21, 2**27),
    area_band=0.0,
)
BERT = Workload(preset("bert-large"), seq_len=128, global_batch=512)


def test_placement_memo_reuses_a_plan_only_for_equal_latencies():
    table = SMALL_SPACE.enumerate()
    ev = WorkloadEvaluator(BERT, Cluster(devices=64), table, [4])
    fresh = WorkloadEvaluator(BERT, Cluster(devices=64), table, [4])
    ev.schedule(4, [0, 1])
    fwd, bwd = ev.layer_latencies(4, 0)
    ev.set_layers(4, 2, fwd.copy(), bwd.copy())  # arch 2 given arch 0's latencies
    ev.set_layers(4, 3, 2 * fwd, 2 * bwd)  # and arch 3 slower ones
    first = ev.exact(4, 0, 16 * GIB, False)
    assert ev.dp_calls == 1
    again = ev.exact(4, 2, 16 * GIB, False)
    assert (ev.dp_calls, ev.placements_reused) == (1, 1)
    assert again[:6] == first[:6]
    slower = ev.exact(4, 3, 16 * GIB, False)
    assert ev.dp_calls == 2
    assert slower.time_per_batch_s > first.time_per_batch_s
    ev.exact(4, 0, 16 * GIB, True)  # another setting: another placement
    assert ev.dp_calls == 3
    assert first == fresh.exact(4, 0, 16 * GIB, False)


def test_three_workloads_exact_equals_exhaustive_with_per_workload_floors():
    opt = Workload(preset("opt-350m"), seq_len=256, global_batch=512, optimizer="adam")
    gpt2 = Workload(preset("gpt2-xl"), seq_len=128, global_batch=512)
    settings = dict(micro_batch_sizes=(1, 4), hbm_sizes=(8 * GIB, 16 * GIB), recompute=(False,))
    space = DesignSpace(
        num_tc=(1, 16), num_vc=(1, 4), tc_width=(8, 128), tc_depth=(128,), glb_bytes=(2**27,),
        area_band=0.0,
    )  # fmt: skip
    ws = [BERT, opt, gpt2]
    exact = search(ws, Cluster(devices=64), space, **settings)
    full = search(ws, Cluster(devices=64), space, strategy="exhaustive", **settings)
    assert exact.best == full.best
    assert exact.frontier.tolist() == full.frontier.tolist()
    np.testing.assert_array_equal(exact.frontier_value, full.frontier_value)
    for got, want in zip(exact.details, full.details, strict=True):
        assert got["own_best"] == want["own_best"]


def test_nothing_fits_message_says_how_many_devices_memory_needs():
    from phaze.report import summary_text

    space = DesignSpace(
        num_tc=(4,), num_vc=(2,), tc_width=(128,), tc_depth=(128,), glb_bytes=(2**27,),
        area_band=0.0,
    )  # fmt: skip
    r = search(Workload(preset("gpt3-175b")), Cluster(devices=8), space, hbm_sizes=(32 * GIB,))
    assert r.best is None
    need = r.counters["memory_devices_needed"]
    assert 8 < need < 2**24  # 175 B parameters do not fit on 8 devices of 32 GiB
    assert r.counters["dp_calls"] == 0
    text = summary_text(r)
    assert f"needs at least {need:,} devices" in text, text
    # on that many devices the bound no longer rules the search out
    r2 = search(Workload(preset("gpt3-175b")), Cluster(devices=need), space,
                hbm_sizes=(32 * GIB,))  # fmt: skip
    assert r2.counters["memory_devices_needed"] == need
    assert r2.counters["exact_rows"] > 0
