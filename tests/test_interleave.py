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

import json
import math
import sqlite3

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from reference.golden_searches import SPACE as GOLDEN_SPACE
from reference.placement import (
    brute_force_interleaved,
    chunks_of,
    interleaved_in_flight,
    interleaved_plan_time,
    ordered_stage_partitions,
    stage_load,
)

import phaze
from phaze import GIB, Cluster, ConfigError, Training, Workload, preset
from phaze._kernels import dp as kdp
from phaze._kernels import stage_tables as kst
from phaze.cli import main
from phaze.models import build_graph
from phaze.placement import DataParallelTerms
from phaze.placement.chain import place_chain, prepare_chain
from phaze.rows import ROW_FIELDS, ROW_FLOAT_FIELDS
from phaze.store import ResultStore
from phaze.sweeps import parse_sweep
from phaze.sweeps.cell import _training_label
from phaze.systems.training import (
    TrainingPlan,
    block_activation_bytes,
    end_activation_bytes,
    memory_per_device,
)
from phaze.training import megatron_layer_bytes, stage_rules

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
        "blocks": draw(st.lists(st.sampled_from([True] * 6 + [False]), min_size=n, max_size=n)),
        "edges": [
            (i, i + 1, c)
            for i, c in enumerate(draw(st.lists(links, min_size=n - 1, max_size=n - 1)))
        ],
    }


@st.composite
def transformer_chains(draw):
    """:func:`chains` shaped like a model: an optional embedding, 4 or 6 blocks (splits
    into chunks of 2 or 3 exist) and an optional head."""
    g = draw(chains(max_layers=8))
    nb = draw(st.sampled_from([4, 6]))
    emb, head = draw(st.booleans()), draw(st.booleans())
    n = nb + emb + head
    assume(g["n"] >= n)
    for key in ("fwd", "bwd", "rec", "params", "acts", "work", "tp"):
        g[key] = g[key][:n]
    g["n"] = n
    g["blocks"] = [False] * emb + [True] * nb + [False] * head
    g["edges"] = g["edges"][: n - 1]
    return g


def _link_max(g):
    out = np.zeros(g["n"] + 1)
    for _, v, c in g["edges"]:
        out[v] = max(out[v], c)
    return out


def _close(a, b, rel, scale=0.0):
    """``a`` and ``b`` agree to ``rel`` of the larger of them and ``scale`` (the kernels
    take stage loads as differences of prefix sums, whose rounding is relative to the
    running totals: pass their size as ``scale``)."""
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= rel * max(abs(a), abs(b), scale, 1e-300)


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
                totals = sum(g["fwd"]) + sum(g["bwd"]) + sum(g["rec"])
                assert _close(load, want, LOAD_REL, totals), (stage, v, load, want)
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


@settings(deadline=None, max_examples=100)
@given(
    transformer_chains(),
    st.sampled_from([(1, 2), (2,), (3,), (2, 3), (1, 2, 3)]),
    st.integers(2, 8),
    st.sampled_from([4, 6, 8, 12]),
    st.booleans(),
    st.sampled_from(["paper", "dist", "overlap", "all"]),
    st.sampled_from([0.0, 0.05, 0.2, 0.5, 1.0]),
    st.sampled_from([1, 2]),
)
def test_placement_with_interleaves_equals_brute_force(
    g, interleaves, devices, micro_batches, recompute, terms_kind, hbm_frac, t
):
    n = g["n"]
    factor = 9.0
    terms = {
        "paper": DataParallelTerms(),
        "dist": DataParallelTerms(sharded_state_factor=6.0, sync_factor=3.0),
        "overlap": DataParallelTerms(overlap_dp=True, step_s_per_B=1e-9),
        "all": DataParallelTerms(6.0, 3.0, 1e-10, 1e-9, overlap_dp=True),
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


# --- the joint search, the command line, sweeps and the store ---------------------------

SMALL_SPACE = phaze.DesignSpace(**GOLDEN_SPACE)


def test_exact_search_equals_exhaustive_with_interleaves():
    # the upper bound divides the bubble by the largest v: pruning never changes the result
    w = Workload(preset("gpt2-xl"), seq_len=512, global_batch=256, optimizer="adam")
    cluster = Cluster(devices=32, network=phaze.load_system("a100-selene").network)
    out = {}
    for strategy in ("exact", "exhaustive"):
        out[strategy] = phaze.search(
            w,
            cluster,
            SMALL_SPACE,
            micro_batch_sizes=(1, 2),
            hbm_sizes=(4 * GIB, 8 * GIB),
            recompute=(False, True),
            training=Training("megatron", "full", interleaves=(1, 2)),
            strategy=strategy,
        )
    exact, full = out["exact"], out["exhaustive"]
    assert (exact.best.arch, exact.best.hbm_bytes) == (full.best.arch, full.best.hbm_bytes)
    assert exact.best.value == full.best.value > 0
    assert np.array_equal(exact.frontier_value, full.frontier_value)
    # interleaved plans won some settings, and only where they are strictly faster
    v = np.asarray(full.rows["interleave"])
    assert (v == 2).any() and set(v.tolist()) <= {1, 2}
    plain = phaze.search(
        w,
        cluster,
        SMALL_SPACE,
        micro_batch_sizes=(1, 2),
        hbm_sizes=(4 * GIB, 8 * GIB),
        recompute=(False, True),
        training=Training("megatron", "full"),
        strategy="exhaustive",
    )
    t_plain = np.asarray(plain.rows["time_per_batch_s"])
    t_both = np.asarray(full.rows["time_per_batch_s"])
    assert (t_both <= t_plain).all() and (t_both[v == 2] < t_plain[v == 2]).all()
    assert (t_both[v == 1] == t_plain[v == 1]).all()


CLI_ARGS = [
    "search",
    "--model",
    "megatron-gpt2-72",
    "--seq",
    "256",
    "--batch",
    "32",
    "--devices",
    "16",
    "--mbs",
    "1",
    "--hbm",
    "16",
    "--max-tp",
    "2",
    "--network",
    "a100-selene",
    "--training",
    "megatron",
    "--area-budget",
    "3.4",
    "--no-progress",
]


def test_cli_interleave_reports_the_plan_and_a_store_of_other_interleaves_is_refused(
    tmp_path, capsys
):
    out = tmp_path / "out"
    args = [*CLI_ARGS, "--out", str(out)]
    assert main([*args, "--interleave", "1,2"]) == 0
    printed = capsys.readouterr().out
    best = json.loads((out / "best.json").read_text())["workloads"][0]
    assert best["interleaves"] == [1, 2]
    plan = best["plan"]
    # on this memory-bound pipeline the interleaved schedule wins: its v is reported
    assert plan["interleave"] == 2 and f"stages={plan['num_stages']} v=2" in printed
    assert ", 2 chunks)" in printed  # the bottleneck line
    p = plan["num_stages"]
    assert all(len(ids) % 2 == 0 for ids in plan["stage_layers"][1:-1])
    # the reported stages are the placement's: every layer once, in order, within memory
    assert sum(plan["stage_layers"], []) == list(range(-1, 73))
    assert max(plan["stage_memory_bytes"]) <= 16 * GIB
    m = -(-32 // plan["data_parallel"])
    assert m % p == 0
    # the plan's time is the interleaved schedule's on its own stage loads (no DP terms at d=1)
    if plan["data_parallel"] == 1:
        want = max(plan["stage_load_s"]) * (2 * m + p - 1) / 2
        assert math.isclose(plan["time_per_batch_s"], want, rel_tol=1e-12)
    csv_head = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert "interleave" in csv_head
    # another interleave list is another search: refused, one line
    assert main([*args, "--interleave", "1"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    for bad, named in (
        (["--interleave", "1,1"], "interleaves=(1, 1)"),
        (["--interleave", "2", "--training", "paper"], "interleaves=(2,)"),
        (["--interleave", "0"], "--interleave"),
    ):
        assert main(["search", "--out", str(tmp_path / "bad"), *bad]) == 2
        err = capsys.readouterr().err
        assert named in err and len(err.strip().splitlines()) == 1, err


def test_training_interleaves_are_checked_and_named_in_the_fingerprint():
    assert Training("megatron", interleaves=[4, 1, 2]).interleaves == (1, 2, 4)
    assert (
        Training("megatron").fingerprint() == Training("megatron", interleaves=(1,)).fingerprint()
    )
    assert "interleaves=(1, 2)" in Training("megatron", interleaves=(1, 2)).fingerprint()
    for bad in ((), (0,), (1, 1), (65,), (True,), "12", 2, (1.0,)):
        with pytest.raises(ConfigError, match="interleaves="):
            Training("megatron", interleaves=bad)
    with pytest.raises(ConfigError, match="accounting='paper'"):
        Training(interleaves=(1, 2))


def test_sweep_interleaves_key_sets_the_training_and_its_label():
    doc = {
        "search": {"devices": 64, "training": "megatron"},
        "grid": {"model": ["gpt2-xl"], "interleaves": [1, [1, 2]]},
    }
    spec = parse_sweep(doc)
    assert [c.training.interleaves for c in spec.cells] == [(1,), (1, 2)]
    assert spec.cells[0].key != spec.cells[1].key
    assert _training_label(spec.cells[1].training) == "megatron/full+interleaves=1;2"
    plain = parse_sweep(
        {"search": {"devices": 64, "training": "megatron"}, "grid": {"model": ["gpt2-xl"]}}
    )
    assert plain.cells[0].key == spec.cells[0].key  # interleave 1: the key of before
    with pytest.raises(ConfigError, match="interleaves"):
        parse_sweep(
            {"search": {"devices": 64, "interleaves": [1, 2]}, "grid": {"model": ["gpt2-xl"]}}
        )
    with pytest.raises(ConfigError, match="interleaves"):
        parse_sweep({**doc, "grid": {"model": ["gpt2-xl"], "interleaves": [0]}})


def test_a_store_written_before_the_interleave_column_is_read_with_v_1(tmp_path):
    db = tmp_path / "results.sqlite"
    con = sqlite3.connect(db)
    old_cols = [f for f in ROW_FIELDS if f != "interleave"]
    con.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE rows (model TEXT NOT NULL, arch INTEGER NOT NULL, "
        "micro_batch_size INTEGER NOT NULL, hbm_bytes INTEGER NOT NULL, "
        "recompute INTEGER NOT NULL, "
        + ", ".join(
            f"{f} {'REAL' if f in ROW_FLOAT_FIELDS else 'INTEGER'} NOT NULL" for f in old_cols
        )
        + ", PRIMARY KEY (model, arch, micro_batch_size, hbm_bytes, recompute));"
    )
    con.execute(
        "INSERT INTO rows VALUES (?, ?, ?, ?, ?, " + ", ".join("?" * len(old_cols)) + ")",
        ("x", 3, 2, 2**30, 0, 9.5, 1.0, 1, 4, 2, 0, 80.0, 8.4),
    )
    con.execute("INSERT INTO meta VALUES ('fingerprint', ?)", (json.dumps({"model": "x"}),))
    con.commit()
    con.close()
    with ResultStore(tmp_path, {"model": "x"}) as store:
        got = store.load("x", 2, 2**30, False)
        assert got["throughput"].tolist() == [9.5] and got["interleave"].tolist() == [1]
        store.add(
            "x", 2, 2**30, False, [4], {**{f: [got[f][0]] for f in ROW_FIELDS}, "interleave": [2]}
        )
        assert store.load("x", 2, 2**30, False)["interleave"].tolist() == [1, 2]


# --- the costing against the systems engine ----------------------------------------------


def _uniform_pairs(ptr, n, p):
    """Pair indices of the uniform split of a chain (embedding, ``n - 2`` blocks, head)
    into ``p`` stages: the embedding with the first, the head with the last."""
    per = (n - 2) // p
    bounds = [0] + [1 + i * per for i in range(1, p)] + [n]
    return [int(ptr[a] + (b - a - 1)) for a, b in zip(bounds, bounds[1:], strict=False)]


@pytest.mark.parametrize("mode", ["none", "full"])
@pytest.mark.parametrize(("t", "p", "v"), [(1, 2, 2), (2, 4, 2), (1, 4, 5), (2, 5, 4), (1, 8, 5)])
def test_uniform_stage_memory_is_the_systems_engine_first_stage_and_the_documented_rest(
    mode, t, p, v
):
    spec, seq, batch, mbs = preset("megatron-gpt2-xl"), 512, 240, 2  # 40 blocks
    graph = build_graph(spec, seq, mbs, t)
    act, work = megatron_layer_bytes(graph, mode)
    params = np.array([layer.param_bytes for layer in graph.layers], dtype=float)
    tp = np.array([layer.tensor_parallel for layer in graph.layers])
    blocks = np.array([layer.role == "block" for layer in graph.layers])
    n = len(graph.layers)
    factor = stage_rules(Training("megatron", "full"), "adam", mode != "none")[0]
    z = np.zeros(n)
    tabs = kst.interleaved_chain_tables(
        z, z, params, act, tp, blocks, np.zeros(n + 1), 1.0, t, False, z, work, False, v
    )
    pairs = _uniform_pairs(tabs[0], n, p)
    plan = TrainingPlan(t, p, 1, mbs, batch, interleave=v, recompute_mode=mode)
    per_block = block_activation_bytes(spec, seq, mbs, t, mode)
    last_extra = end_activation_bytes(spec, seq, mbs, t)[1]
    for i, pair in enumerate(pairs):
        k = p - i
        e_dp = (2 * k - 1 + (v - 1) * p) / v
        e_sys = k * (1 + (p - 1) / (p * v))  # the systems engine's in-flight factor
        want = memory_per_device(spec, plan, seq, stage=i)
        # documented differences: later stages hold more warm-up chunks; the last stage's
        # head activations count as in flight (the systems engine keeps one micro-batch)
        want += (spec.layers // p) * per_block * (e_dp - e_sys)
        if i == p - 1:
            want += last_extra * (e_dp - 1)
        if i == 0:
            assert math.isclose(e_dp, e_sys, rel_tol=1e-15)  # the busiest stage: equal
        for hbm, fits in ((want * (1 + 1e-12), True), (want * (1 - 1e-9), False)):
            caps = kst.interleaved_stage_caps(
                tabs[6], tabs[9], tabs[10], tabs[11], factor, hbm, v, p, math.inf, p
            )
            assert (caps[pair] >= k) == fits, (i, k, caps[pair], want, fits)


@pytest.mark.parametrize(("p", "v", "m"), [(3, 2, 6), (2, 3, 8), (4, 3, 4), (4, 1, 8)])
def test_uniform_plan_time_is_the_systems_engine_bubble_form(p, v, m):
    # 12 identical blocks: the best plan on p devices is the uniform one; its time is
    # m T + (sum of stage times - slowest) / v (phaze.systems.training.iteration)
    n_blocks, f, b = 12, 0.25, 0.5
    n = n_blocks + 2
    fwd = np.array([0.0] + [f] * n_blocks + [0.0])
    bwd = np.array([0.0] + [b] * n_blocks + [0.0])
    params = np.full(n, 2.0**30)  # a slow data-parallel all-reduce: d = 1 wins
    blocks = np.array([False] + [True] * n_blocks + [False])
    src = np.arange(n - 1, dtype=np.int64)
    prep = prepare_chain(
        [1], [params], [np.zeros(n)], [np.zeros(n, bool)], src, src + 1, [np.zeros(n - 1)],
        devices=p, link_bandwidth_Bps=1e3, num_micro_batches=m, adam=True, state_factor=9.0,
    )  # fmt: skip
    res = place_chain(
        prep, fwd[None], bwd[None], hbm_bytes=math.inf, recompute=False, stash_inputs=False,
        interleaves=(v,), block_mask=blocks[None],
    )  # fmt: skip
    stage_s = (n_blocks // p) * (f + b)
    want = m * stage_s + (p * stage_s - stage_s) / v
    assert (res.num_stages, res.data_parallel, res.interleave) == (p, 1, v)
    assert math.isclose(res.time_per_batch_s, want, rel_tol=1e-12), (res, want)
    if v > 1:  # free links: the smaller bubble wins against plain 1F1B
        both = place_chain(
            prep, fwd[None], bwd[None], hbm_bytes=math.inf, recompute=False,
            stash_inputs=False, interleaves=(1, v), block_mask=blocks[None],
        )  # fmt: skip
        assert both.interleave == v and both.time_per_batch_s == res.time_per_batch_s


@settings(deadline=None, max_examples=60)
@given(
    transformer_chains(),
    st.sampled_from([2, 3]),
    st.integers(2, 8),
    st.sampled_from([4, 6, 8, 12]),
    st.booleans(),
    st.sampled_from([0.0, 0.2, 1.0]),
    st.sampled_from([1, 2]),
)
def test_interleaved_final_round_equals_brute_force_per_stage_count(
    g, v, devices, micro_batches, recompute, hbm_frac, t
):
    # the kernels alone: tables, caps at p, dp_solve's recurrence, interleaved_final for
    # exactly p stages and the degrees with m > p; interleaved_bounds never above it
    n = g["n"]
    factor, bw = 9.0, 3e8
    one = max(factor * p + a + w for p, a, w in zip(g["params"], g["acts"], g["work"]))
    total = factor * sum(g["params"]) + sum(g["acts"]) * micro_batches + max(g["work"])
    hbm = one + hbm_frac * max(0.0, total - one)
    tp = np.array(g["tp"])
    t_eff = t if tp.any() else 1
    base = kst.interleaved_chain_tables(
        np.array(g["fwd"]), np.array(g["bwd"]), np.array(g["params"]), np.array(g["acts"]),
        tp, np.array(g["blocks"]), _link_max(g), bw, t_eff, recompute, np.array(g["rec"]),
        np.array(g["work"]), recompute, v,
    )  # fmt: skip
    n_cheap = int((~tp).sum()) if t_eff > 1 else 0
    d_max = min(devices, micro_batches)
    dp_bw, dp_lat, none = np.full(d_max + 1, bw), np.zeros(d_max + 1), np.zeros(0)
    terms = DataParallelTerms()
    rules = {"state_factor": factor, "recompute_last": recompute, "blocks": g["blocks"]}
    graph = {**g, "tp": g["tp"]}
    for p in range(2, min(n, devices) + 1):
        caps = kst.interleaved_stage_caps(
            base[6], base[9], base[10], base[11], factor, hbm, v, p, math.inf, p
        )
        tabs = (*base[:4], caps, *base[5:9])
        gg = kdp.dp_solve(
            *tabs, devices, micro_batches, dp_bw, t_eff, n_cheap, dp_lat, 4.0, none, 0.0,
            0.0, 1, 0, math.inf, none,
        )[5]  # fmt: skip
        got = kdp.interleaved_final(
            *tabs, gg, p, v, devices, micro_batches, dp_bw, t_eff, dp_lat, 4.0, none, 0.0,
            0.0, 1, d_max, 0, math.inf,
        )[0]  # fmt: skip
        want = math.inf
        for stages in ordered_stage_partitions(n, g["edges"]):
            if len(stages) != p:
                continue
            for d in range(1, d_max + 1):
                if -(-micro_batches // d) > p:
                    tm = interleaved_plan_time(
                        stages, v, t_eff, d, graph, devices, bw, hbm, micro_batches,
                        recompute, {**rules, "dp_terms": terms},
                    )  # fmt: skip
                    want = min(want, tm)
        assert _close(got, want, TIME_REL), (p, got, want)
        bounds = kdp.interleaved_bounds(
            *tabs, gg, v, devices, micro_batches, dp_bw, t_eff, dp_lat, 4.0, none, 0.0, 0.0,
            math.inf,
        )  # fmt: skip
        # (a stage count the devices cannot hold has no entry: nothing fits)
        assert (bounds[p] if p < bounds.shape[0] else math.inf) <= got * (1 + TIME_REL)
