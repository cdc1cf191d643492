"""Interleaved plans in the placement DP (phaze.placement.interleave, docs/placement.md).

* the kernels against tests/reference/placement.py: the interleaved stage loads are the
  sum of the chunks' list-schedule loads (and ``v = 1`` is the chain kernel's, bit for
  bit); the memory caps are the largest position whose in-flight micro-batches fit;
* the placement over every split, ``p``, ``d`` and candidate ``v`` equals a brute force
  written from the rules, with and without the data-parallel terms;
* the costing against the systems engine (phaze.systems.training): on uniform splits the
  first stage's bytes are ``memory_per_device(..., interleave=v)`` and the later stages'
  differ by the documented amount; a uniform plan's time is the systems engine's bubble
  form ``m T + (p - 1) T / v``.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from reference.placement import (
    brute_force_interleaved,
    chunks_of,
    interleaved_in_flight,
    stage_load,
)

from phaze._kernels import stage_tables as kst
from phaze.placement import DataParallelTerms
from phaze.placement.chain import place_chain, prepare_chain

#: Loads: sums of at most ~2 n latencies and link times, added in another order than the
#: reference's list schedule (prefix-sum differences): below 2 n eps * scale for n <= 7.
LOAD_REL = 1e-12
#: Times per batch: the same formula on loads that agree to LOAD_REL.
TIME_REL = 1e-9

whole = st.integers(0, 2**30).map(float)  # whole bytes: sums are exact in float64
links = st.integers(0, 2**26).map(float)  # up to ~0.2 s on the 3e8 B/s link used below


@st.composite
def chains(draw, max_layers=7):
    """A chain of layers with random data; ``blocks`` marks the transformer blocks."""
    n = draw(st.integers(2, max_layers))
    lat = st.lists(st.floats(1e-3, 10.0), min_size=n, max_size=n)
    return {
        "n": n,
        "fwd": draw(lat),
        "bwd": draw(lat),
        "rec": draw(lat),
        "params": draw(st.lists(whole, min_size=n, max_size=n)),
        "acts": draw(st.lists(whole, min_size=n, max_size=n)),
        "work": draw(st.lists(whole, min_size=n, max_size=n)),
        "tp": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        # mostly blocks (an embedding or head now and then), so that chunks exist
        "blocks": draw(st.lists(st.sampled_from([True] * 4 + [False]), min_size=n, max_size=n)),
        "edges": [
            (i, i + 1, c)
            for i, c in enumerate(draw(st.lists(links, min_size=n - 1, max_size=n - 1)))
        ],
    }


def _link_max(g):
    out = np.zeros(g["n"] + 1)
    for _, v, c in g["edges"]:
        out[v] = max(out[v], c)
    return out


def _close(a, b, rel):
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


@settings(deadline=None)
@given(
    chains(),
    st.sampled_from([1, 2, 3]),
    st.sampled_from([1.0, 3e8]),
    st.booleans(),
    st.booleans(),
    st.sampled_from([1, 2]),
)
def test_interleaved_stage_loads_are_the_sum_of_their_chunks(g, v, bw, recompute, last, t):
    n = g["n"]
    f = np.array(g["fwd"])
    tabs = kst.interleaved_chain_tables(
        f, np.array(g["bwd"]), np.array(g["params"]), np.array(g["acts"]),
        np.array(g["tp"]), np.array(g["blocks"]), _link_max(g), bw, t, recompute,
        np.array(g["rec"]), np.array(g["work"]), last, v,
    )  # fmt: skip
    ptr, partner, load1, loadr = tabs[:4]
    valid = tabs[11]
    for i in range(n):
        for p in range(ptr[i], ptr[i + 1]):
            stage = list(range(i, partner[p]))
            chunks = chunks_of(stage, g["blocks"], v)
            assert bool(valid[p]) == (chunks is not None), (i, partner[p], v)
            if chunks is None:
                assert load1[p] == math.inf and loadr[p] == math.inf
                continue
            for load, here in ((loadr[p], recompute), (load1[p], recompute and last)):
                want = sum(
                    stage_load(c, g["edges"], g["fwd"], g["bwd"], bw, here, g["rec"])
                    for c in chunks
                )
                assert _close(load, want, LOAD_REL), (stage, v, load, want)
            assert tabs[9][p] == sum(g["acts"][x] for x in stage)
            assert tabs[10][p] == max(g["work"][x] for x in stage)
    if v == 1 and all(g["blocks"]):  # one chunk: the chain kernel's loads, bit for bit
        z = np.zeros(n + 1)
        chain = kst.chain_stage_tables(
            f, np.array(g["bwd"]), np.array(g["params"]), np.array(g["acts"]),
            np.array(g["tp"]), _link_max(g), z, bw, 1e30, 4, t, recompute, 2.0,
            np.array(g["rec"]), np.array(g["work"]), last, False,
        )  # fmt: skip
        for a, b in zip(tabs[:4] + tabs[5:9], chain[:4] + chain[5:9], strict=True):
            np.testing.assert_array_equal(a, b)


@settings(deadline=None)
@given(
    st.lists(whole, min_size=1, max_size=6),
    st.lists(whole, min_size=6, max_size=6),
    st.integers(0, 2**33).map(float),
    st.integers(1, 4),
    st.integers(1, 9),
    st.sampled_from([math.inf, 2.0, 5.0]),
    st.sampled_from([2.0, 9.0, 4.5]),
)
def test_interleaved_caps_are_the_largest_position_whose_activations_fit(
    pb, ab, hbm, v, n_stages, m_cap, factor
):
    k = len(pb)
    ab = ab[:k]
    work = [a / 3 for a in ab]
    valid = np.array([True] * (k - 1) + [False])
    got = kst.interleaved_stage_caps(
        np.array(pb), np.array(ab), np.array(work), valid, factor, hbm, v, n_stages, m_cap,
        n_stages,
    )  # fmt: skip
    for p in range(k):
        want = 0
        for pos in range(1, n_stages + 1):
            e = interleaved_in_flight(pos, v, n_stages, m_cap) if v > 1 else min(pos, m_cap)
            if valid[p] and factor * pb[p] + ab[p] + work[p] + (e - 1.0) * ab[p] <= hbm:
                want = pos
        assert got[p] == want, (p, got[p], want)


# --- the placement against brute force ------------------------------------------------


@settings(deadline=None, max_examples=80)
@given(
    chains(max_layers=7),
    st.sampled_from([(1, 2), (2,), (3,), (2, 3), (1, 2, 3)]),
    st.integers(2, 8),
    st.sampled_from([4, 6, 8, 12]),
    st.booleans(),
    st.sampled_from(["paper", "dist", "overlap"]),
    st.floats(0.0, 1.0),
    st.sampled_from([1, 2]),
)
def test_placement_with_interleaves_equals_brute_force(
    g, interleaves, devices, micro_batches, recompute, terms_kind, hbm_frac, t
):
    n = g["n"]
    assume(sum(g["blocks"]) >= 2)
    factor = 9.0
    terms = {
        "paper": DataParallelTerms(),
        "dist": DataParallelTerms(sharded_state_factor=6.0, sync_factor=3.0),
        "overlap": DataParallelTerms(overlap_dp=True, step_s_per_B=1e-9),
    }[terms_kind]
    # from what the largest single layer needs at d = 1 up to the whole model's stash
    one = max(factor * p + a + w for p, a, w in zip(g["params"], g["acts"], g["work"]))
    total = factor * sum(g["params"]) + sum(g["acts"]) * micro_batches + max(g["work"])
    hbm = one + hbm_frac * max(0.0, total - one)
    bw = 3e8
    src = np.arange(n - 1, dtype=np.int64)
    dst = src + 1
    eb = np.array([c for _, _, c in g["edges"]])
    prep = prepare_chain(
        [t], [g["params"]], [g["acts"]], [g["tp"]], src, dst, [eb],
        devices=devices, link_bandwidth_Bps=bw, num_micro_batches=micro_batches,
        adam=True, state_factor=factor,
    )  # fmt: skip
    res = place_chain(
        prep, np.array([g["fwd"]]), np.array([g["bwd"]]), hbm_bytes=hbm,
        recompute=recompute, activation_bytes=np.array([g["acts"]]), state_factor=factor,
        recompute_s=np.array([g["rec"]]), work_bytes=np.array([g["work"]]),
        recompute_last=recompute, stash_inputs=False, dp_terms=terms,
        interleaves=interleaves, block_mask=np.array([g["blocks"]]),
    )  # fmt: skip
    rules = {
        "state_factor": factor,
        "recompute_last": recompute,
        "stash_inputs": False,
        "dp_terms": terms,
        "blocks": g["blocks"],
    }
    want = brute_force_interleaved(
        {t: g}, devices, bw, hbm, micro_batches, recompute, rules, interleaves
    )[t]
    assert _close(res.time_per_batch_s, want[0], TIME_REL), (res, want)
    if want[0] < math.inf:
        assert res.interleave in interleaves
