"""The placement DP kernels, called directly, against the references in reference/dp.py.

Each kernel of ``phaze._kernels.stage_tables`` and ``phaze._kernels.dp`` gets random
valid inputs, prepared as the public wrapper prepares them (float64 arrays, int64 CSR
edge lists, Python scalars), and its output is compared entry by entry with a slow
reference written from the placement semantics: the memory cap, the downset enumeration,
the three stage-table builders (chain, chain plus skip edges, general DAG) and the
recurrence with its final round over the data-parallel degree (plus :func:`reconstruct`,
whose plan must re-evaluate to the time found).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import dp as ref

from phaze._kernels import dp as kdp
from phaze._kernels import stage_tables as kst

#: Loads are sums of at most ~2 n latencies and edge times. The chain kernel takes them as
#: differences of prefix sums and the skip-edge kernel through a max-plus shortcut, so
#: they add in another order than the reference's list schedule: with n <= 8 layers the
#: difference is below 2 n eps * scale ~ 4e-15 * scale, where ``scale`` is the sum of
#: every finite latency and edge time of the instance. 1e-12 leaves a wide margin and
#: still catches any wrong term (the smallest nonzero term drawn is >= 1e-3 * scale / 64).
LOAD_REL = 1e-12
#: Times per batch: the same formula in the same order on the same table entries, so the
#: two agree to the last bit unless two plans tie up to rounding; 1e-12 relative.
TIME_REL = 1e-12

byte_counts = st.integers(0, 2**30).map(float)  # whole bytes: sums are exact in float64


@st.composite
def latencies(draw, n):
    """n latencies in seconds; now and then one is ``inf`` (a layer that cannot run)."""
    vals = draw(
        st.lists(
            st.one_of(st.floats(1e-3, 100.0), st.sampled_from([0.0, 1.0, 2.5])),
            min_size=n,
            max_size=n,
        )
    )
    if n and draw(st.integers(0, 9)) == 0:
        vals[draw(st.integers(0, n - 1))] = math.inf
    return vals


@st.composite
def layer_graphs(draw, kind, max_layers):
    """A layer graph of the given kind with random per-layer data.

    ``chain``: one or two parallel edges ``i -> i+1`` and nothing else; ``prefix``: every
    ``i -> i+1`` plus random skip edges; ``dag``: random edges ``i -> j`` (``i < j``).
    """
    n = draw(st.integers(1, max_layers))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    if kind == "chain":
        links = [(i, i + 1) for i in range(n - 1) for _ in range(draw(st.integers(1, 2)))]
    elif kind == "prefix":
        links = [(i, i + 1) for i in range(n - 1)]
        links += [p for p in pairs if p[1] > p[0] + 1 and draw(st.integers(0, 2)) == 0]
    else:
        links = [p for p in pairs if draw(st.booleans())]
    edge_bytes = draw(st.lists(byte_counts, min_size=len(links), max_size=len(links)))
    return {
        "n": n,
        "edges": [(u, v, c) for (u, v), c in zip(links, edge_bytes, strict=True)],
        "fwd": draw(latencies(n)),
        "bwd": draw(latencies(n)),
        "params": draw(st.lists(byte_counts, min_size=n, max_size=n)),
        "acts": draw(st.lists(byte_counts, min_size=n, max_size=n)),
        "tp": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        # training accounting: per-layer recomputation latencies and working bytes
        "rec": draw(latencies(n)),
        "work": draw(st.lists(byte_counts, min_size=n, max_size=n)),
    }


clusters = st.fixed_dictionaries(
    {
        # bytes/s: slow links make edge times comparable to the latencies
        "bandwidth": st.sampled_from([1e7, 3e8, 2.5e9, 1e12]),
        "hbm": st.integers(0, 2**34).map(float),
        "n_dev": st.integers(1, 16),
        "t": st.sampled_from([1, 2, 4]),
        "recompute": st.booleans(),
        # bytes of state per parameter byte: paper SGD, paper Adam, mixed-precision Adam
        "state_factor": st.sampled_from([2.0, 3.0, 9.0, 2.5]),
        # the paper's rules (fwd recomputed, no working bytes) or Megatron-style ones
        "paper": st.booleans(),
        "recompute_last": st.booleans(),
        "stash_inputs": st.booleans(),
    }
)


def _rules(g, c):
    """The accounting of case ``c``: the paper's (its ``rec`` = ``fwd``, no working bytes,
    last stage never recomputes, inputs stashed) or the drawn one."""
    if c.get("paper", True):
        return {
            "state_factor": c["state_factor"],
            "rec": g["fwd"],
            "work": [0.0] * g["n"],
            "recompute_last": False,
            "stash_inputs": True,
        }
    return {
        "state_factor": c["state_factor"],
        "rec": g["rec"],
        "work": g["work"],
        "recompute_last": c["recompute_last"],
        "stash_inputs": c["stash_inputs"],
    }


def _csr(g, by):
    """CSR of the edges by destination (``by="in"``) or source (``by="out"``)."""
    key, other = (1, 0) if by == "in" else (0, 1)
    edges = sorted(g["edges"], key=lambda e: e[key])  # stable: ties keep input order
    ptr = [0] * (g["n"] + 1)
    for e in edges:
        ptr[e[key] + 1] += 1
    for v in range(g["n"]):
        ptr[v + 1] += ptr[v]
    return (
        np.array(ptr, dtype=np.int64),
        np.array([e[other] for e in edges], dtype=np.int64),
        np.array([e[2] for e in edges], dtype=np.float64),
    )


def _arrays(g):
    return (
        np.array(g["fwd"], dtype=np.float64),
        np.array(g["bwd"], dtype=np.float64),
        np.array(g["params"], dtype=np.float64),
        np.array(g["acts"], dtype=np.float64),
        np.array(g["tp"], dtype=np.bool_),
    )


def _scalars(g, c):
    r = _rules(g, c)
    return (
        float(c["bandwidth"]),
        float(c["hbm"]),
        int(c["n_dev"]),
        int(c["t"]),
        bool(c["recompute"]),
        float(r["state_factor"]),
        np.array(r["rec"], dtype=np.float64),
        np.array(r["work"], dtype=np.float64),
        bool(r["recompute_last"]),
        bool(r["stash_inputs"]),
    )


def _bits_to_set(words):
    return frozenset(v for v in range(64 * len(words)) if (int(words[v // 64]) >> (v % 64)) & 1)


def _kernel_tables(g, c, kind):
    """Run the kernel of ``kind``; return its tables and each state's placed layers."""
    n = g["n"]
    if kind == "chain":
        link_max = np.zeros(n + 1)
        link_sum = np.zeros(n + 1)
        for _, v, b in g["edges"]:
            link_max[v] = max(link_max[v], b)
            link_sum[v] += b
        tabs = kst.chain_stage_tables(*_arrays(g), link_max, link_sum, *_scalars(g, c))
        placed = [frozenset(range(i)) for i in range(n + 1)]
    elif kind == "prefix":
        tabs = kst.prefix_stage_tables(
            *_arrays(g), *_csr(g, "in"), *_csr(g, "out"), *_scalars(g, c)
        )
        placed = [frozenset(range(i)) for i in range(n + 1)]
    else:
        bits, sizes, count = _enumerate(g)
        tabs = kst.dag_stage_tables(
            bits, sizes, *_arrays(g), *_csr(g, "in"), *_csr(g, "out"), *_scalars(g, c)
        )
        placed = [_bits_to_set(bits[k]) for k in range(count)]
    return tabs, placed


def _pred_bits(g):
    n = g["n"]
    pred = np.zeros((n, (n + 63) // 64), dtype=np.uint64)
    for u, v, _ in g["edges"]:
        pred[v, u // 64] |= np.uint64(1) << np.uint64(u % 64)
    return pred


def _enumerate(g, limit=kst.MAX_DOWNSETS):
    return kst.enumerate_downsets(_pred_bits(g), limit)


def _scale(g, c):
    finite = [x for x in g["fwd"] + g["bwd"] + g.get("rec", []) if x < math.inf]
    return sum(finite) + sum(e[2] for e in g["edges"]) / c["bandwidth"]


def _close(got, want, rel, scale):
    if math.isinf(got) or math.isinf(want):
        return got == want
    return abs(got - want) <= rel * scale


def _check_tables(g, c, kind):
    tabs, placed = _kernel_tables(g, c, kind)
    ptr, partner, load1, loadr, maxs, cheap, pbytes, rem, cheap_cap = tabs
    everything = frozenset(range(g["n"]))
    want_stages, want_states = ref.stage_tables(
        g["n"],
        g["edges"],
        g["fwd"],
        g["bwd"],
        g["params"],
        g["acts"],
        g["tp"],
        c["bandwidth"],
        c["hbm"],
        c["n_dev"],
        c["t"],
        c["recompute"],
        False,
        _rules(g, c),
    )
    case = f"{kind} graph {g}, cluster {c}"
    n_states = len(placed)
    assert placed[0] == frozenset() and placed[-1] == everything, case
    assert ptr[0] == 0 and np.all(np.diff(ptr) >= 0), (ptr.tolist(), case)
    got = {}
    for k in range(n_states):
        unplaced = everything - placed[k]
        assert (int(rem[k]), int(cheap_cap[k])) == want_states[unplaced], (k, case)
        for p in range(ptr[k], ptr[k + 1]):
            k2 = int(partner[p])
            assert k < k2 < n_states, (k, k2, case)  # partners come later
            key = (placed[k], placed[k2] - placed[k])
            assert key not in got, (key, case)
            got[key] = ref.StageRow(
                float(load1[p]), float(loadr[p]), int(maxs[p]), int(cheap[p]), float(pbytes[p])
            )
    assert ptr[n_states - 1] == ptr[-1], case  # nothing is placed from the empty state
    assert set(got) == set(want_stages), (sorted(map(str, set(got) ^ set(want_stages))), case)
    scale = _scale(g, c)
    for key, want in want_stages.items():
        have = got[key]
        where = f"stage {sorted(key[1])} after {sorted(key[0])}: kernel {have}, reference {want}"
        assert _close(have.load_last_s, want.load_last_s, LOAD_REL, scale), f"{where}; {case}"
        assert _close(have.load_other_s, want.load_other_s, LOAD_REL, scale), f"{where}; {case}"
        assert have.max_position == want.max_position, f"{where}; {case}"
        assert have.one_device == want.one_device, f"{where}; {case}"
        assert have.param_bytes == want.param_bytes, f"{where}; {case}"
    if kind == "chain":  # the caps-only kernel: the same caps, pair by pair
        _check_chain_caps(g, c, maxs, case)


def _check_chain_caps(g, c, maxs, case):
    link_sum = np.zeros(g["n"] + 1)
    for _, v, b in g["edges"]:
        link_sum[v] += b
    r = _rules(g, c)
    caps = kst.chain_stage_caps(
        np.array(g["params"], dtype=np.float64),
        np.array(g["acts"], dtype=np.float64),
        np.array(r["work"], dtype=np.float64),
        link_sum,
        float(c["hbm"]),
        int(c["n_dev"]),
        bool(c["recompute"]),
        float(r["state_factor"]),
        bool(r["stash_inputs"]),
    )
    assert caps.tolist() == maxs.tolist(), case


# --- memory cap ------------------------------------------------------------------------


@given(
    const=st.integers(0, 2**40),
    stash=st.integers(0, 2**36),
    hbm=st.integers(0, 2**40),
    n_dev=st.integers(1, 300),
)
def test_max_stages_equals_the_largest_position_that_fits(const, stash, hbm, n_dev):
    got = kst.max_stages(float(const), float(stash), float(hbm), n_dev)
    want = ref.memory_position_cap(const, stash, hbm, n_dev)
    assert got == want, (const, stash, hbm, n_dev, got, want)


# --- downsets --------------------------------------------------------------------------


@given(layer_graphs("dag", max_layers=9))
def test_enumerate_downsets_lists_every_downset_once_by_size(g):
    bits, sizes, count = _enumerate(g)
    want = ref.downsets_by_subsets(g["n"], g["edges"])
    got = [_bits_to_set(bits[k]) for k in range(count)]
    case = f"graph {g}"
    assert count == len(want) == bits.shape[0] == sizes.shape[0], (count, len(want), case)
    assert set(got) == want and len(set(got)) == count, case
    assert sizes.tolist() == [len(s) for s in got], case
    assert sizes.tolist() == sorted(sizes.tolist()), case  # subsets come before supersets


@given(layer_graphs("dag", max_layers=7), st.integers(1, 40))
def test_enumerate_downsets_reports_a_count_past_its_limit(g, limit):
    n_downsets = len(ref.downsets_by_subsets(g["n"], g["edges"]))
    bits, sizes, count = _enumerate(g, limit)
    if n_downsets > limit:
        assert (count, bits.shape[0], sizes.shape[0]) == (-1, 0, 0), (limit, g)
    else:
        assert count == n_downsets, (count, n_downsets, limit, g)


def test_enumerate_downsets_beyond_one_bitset_word():
    # 70 layers: a chain 0 -> ... -> 66 and three layers 67, 68, 69 that need only layer 0
    # (the second uint64 word holds layers 64-69); breadth-first reference downsets.
    edges = [(i, i + 1, 1.0) for i in range(66)] + [(0, v, 1.0) for v in (67, 68, 69)]
    g = {"n": 70, "edges": edges}
    bits, sizes, count = _enumerate(g)
    want = ref.downsets(70, edges)
    got = {_bits_to_set(bits[k]) for k in range(count)}
    assert count == len(want) and got == want, (count, len(want), sorted(map(len, got ^ want)))
    assert sizes.tolist() == sorted(sizes.tolist())


# --- stage tables ----------------------------------------------------------------------


@given(layer_graphs("chain", max_layers=8), clusters)
def test_chain_stage_tables_equal_the_list_schedule_reference(g, c):
    _check_tables(g, c, "chain")


@given(layer_graphs("prefix", max_layers=8), clusters)
def test_prefix_stage_tables_equal_the_list_schedule_reference(g, c):
    _check_tables(g, c, "prefix")


@given(layer_graphs("dag", max_layers=6), clusters)
def test_dag_stage_tables_equal_the_list_schedule_reference(g, c):
    _check_tables(g, c, "dag")


def test_dag_stage_tables_beyond_one_bitset_word():
    # 66 layers (two uint64 words): a chain with one skip edge into the second word
    rng = np.random.default_rng(7)
    n = 66
    edges = [(i, i + 1, float(rng.integers(0, 2**20))) for i in range(n - 1)]
    edges.append((3, 65, 2.0**21))
    g = {
        "n": n,
        "edges": edges,
        "fwd": rng.uniform(0.0, 5.0, n).tolist(),
        "bwd": rng.uniform(0.0, 9.0, n).tolist(),
        "params": rng.integers(0, 2**30, n).astype(float).tolist(),
        "acts": rng.integers(0, 2**30, n).astype(float).tolist(),
        "tp": (rng.uniform(size=n) < 0.7).tolist(),
    }
    c = {"bandwidth": 1e6, "hbm": 2.0**33, "n_dev": 64, "t": 2, "recompute": True}
    _check_tables(g, {**c, "state_factor": 3.0}, "dag")
    g["rec"] = rng.uniform(0.0, 1.0, n).tolist()
    g["work"] = rng.integers(0, 2**28, n).astype(float).tolist()
    megatron = {"paper": False, "state_factor": 9.0, "recompute_last": True, "stash_inputs": False}
    _check_tables(g, {**c, **megatron}, "dag")


# --- the recurrence and the final round -------------------------------------------------


@st.composite
def dp_inputs(draw):
    """Stage tables with free loads and memory caps over a random graph's downsets.

    The layout follows the kernels' contract (states ordered by placed-layer count, so
    partners come later; ``cheap`` from the tensor-parallel flags). A stage's load is the
    sum of its layers' weights plus a random extra (so that splitting into stages pays
    off and pipelines of several stages win), sometimes ``inf``; the recomputation load
    is at least the last-stage load, as in real tables. Weights are small integers now
    and then, so ties are common. Per-stage values come from a seeded generator.
    """
    kind = draw(st.sampled_from(["chain", "dag"]))
    g = draw(layer_graphs(kind, max_layers=7 if kind == "chain" else 5))
    n = g["n"]
    n_dev = draw(st.integers(1, 10 if kind == "chain" else 7))
    t = draw(st.sampled_from([1, 2, 3, 4]))
    micro_batches = draw(st.integers(1, 30))
    bandwidth = draw(st.sampled_from([1.0, 1e3, 2.5e9]))
    # network levels: past `knee` pipelines the all-reduce ring leaves the inner level,
    # its bandwidth drops and each step pays a latency (non-increasing, non-decreasing)
    knee = draw(st.integers(1, 12))
    drop = draw(st.sampled_from([1.0, 4.0]))
    step = draw(st.sampled_from([0.0, 1e-3, 0.5]))
    network = (knee, drop, step)
    weight = st.one_of(st.integers(0, 4).map(float), st.floats(0.0, 10.0))
    weights = draw(st.lists(weight, min_size=n, max_size=n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def stage_values(stage):
        last = sum(weights[v] for v in stage) + rng.choice([0.0, 0.0, 0.25, 3.0])
        if rng.integers(12) == 0:
            last = math.inf
        cap = n_dev if rng.integers(2) else rng.integers(0, n_dev + 1)
        return last, last + rng.choice([0.0, 0.5, 4.0]), int(cap)

    case = _dp_case(g, t, n_dev, micro_batches, bandwidth, stage_values, network)
    if draw(st.booleans()):  # the paper's final round
        return case
    # the data-parallel terms: distributed-optimizer sync, overlap, optimizer step, a
    # range of candidate d, a bound, the per-d record
    d_max = min(n_dev, micro_batches)
    d_lo = draw(st.integers(1, d_max))
    d_hi = draw(st.integers(d_lo, d_max + 2))
    overlap = draw(st.booleans())
    scale = 1.0 / bandwidth  # seconds per parameter byte, comparable to the sync's
    terms = ref.FinalTerms(
        sync=draw(st.sampled_from([4.0, 3.0])),
        overlap=overlap,
        step=draw(st.sampled_from([0.0, 0.5 * scale, 2.0])),
        step_sharded=draw(st.sampled_from([0.0, 0.0, 3.0 * scale, 1.5])),
        d_lo=d_lo,
        d_hi=d_hi,
    )
    n_pairs = case[3][1].shape[0]
    overlap_s = rng.choice([0.0, 0.5, 2.0, 40.0], size=n_pairs) if overlap else np.zeros(0)
    bound = draw(st.sampled_from([math.inf, math.inf, 5.0, 60.0]))
    record = draw(st.booleans())
    return (*case, (terms, overlap_s, bound, record))


def _dp_case(g, t, n_dev, micro_batches, bandwidth, stage_values, network=(99, 1.0, 0.0)):
    """``(g, downs, t, tables, scalars)`` for :func:`kdp.dp_solve` over ``g``'s downsets;
    ``stage_values(stage)`` gives a stage's last-stage load, other load and memory cap."""
    n = g["n"]
    n_tp = sum(g["tp"])
    t_eff = 1 if (t == 1 or n_tp == 0) else t
    n_cheap = 0 if t_eff == 1 else min(n - n_tp, n, n_dev)
    downs = sorted(ref.downsets(n, g["edges"]), key=lambda s: (len(s), sorted(s)))
    rows = {"ptr": [0], "partner": [], "load1": [], "loadr": [], "maxs": [], "cheap": []}
    rows["pbytes"] = []
    for k, before in enumerate(downs):
        for k2 in range(k + 1, len(downs)):
            if not before < downs[k2]:
                continue
            stage = downs[k2] - before
            last, other, cap = stage_values(stage)
            rows["partner"].append(k2)
            rows["load1"].append(last)
            rows["loadr"].append(other)
            rows["maxs"].append(cap)
            rows["cheap"].append(int(t_eff > 1 and not any(g["tp"][v] for v in stage)))
            rows["pbytes"].append(sum(g["params"][v] for v in stage))
        rows["ptr"].append(len(rows["partner"]))
    everything = frozenset(range(n))
    rem = [n - len(d) for d in downs]
    cheap_cap = [
        sum(1 for v in everything - d if not g["tp"][v]) if t_eff > 1 else 0 for d in downs
    ]
    tabs = (
        np.array(rows["ptr"], dtype=np.int64),
        np.array(rows["partner"], dtype=np.int64),
        np.array(rows["load1"], dtype=np.float64),
        np.array(rows["loadr"], dtype=np.float64),
        np.array(rows["maxs"], dtype=np.int64),
        np.array(rows["cheap"], dtype=np.int64),
        np.array(rows["pbytes"], dtype=np.float64),
        np.array(rem, dtype=np.int64),
        np.array(cheap_cap, dtype=np.int64),
    )
    knee, drop, step = network
    d_all = np.arange(min(n_dev, micro_batches) + 1)
    dp_bw = np.where(d_all <= knee, float(bandwidth), bandwidth / drop)
    dp_lat = np.where(d_all <= knee, 0.0, step)
    scalars = (n_dev, micro_batches, dp_bw, t_eff, n_cheap, dp_lat)
    return g, downs, t, tabs, scalars


def _reference_stages(g, downs, t, tabs, overlap_s=()):
    """The tables as the reference sees them: unplaced-layer sets and device counts."""
    ptr, partner, load1, loadr, maxs, _, pbytes = tabs[:7]
    everything = frozenset(range(g["n"]))
    stages_from, by_pair = {}, {}
    for k, before in enumerate(downs):
        for p in range(ptr[k], ptr[k + 1]):
            after = downs[int(partner[p])]
            stage = after - before
            row = ref.TableStage(
                next_state=everything - after,
                load_last_s=float(load1[p]),
                load_other_s=float(loadr[p]),
                max_position=int(maxs[p]),
                devices=t if any(g["tp"][v] for v in stage) else 1,
                param_bytes=float(pbytes[p]),
                overlap_s=float(overlap_s[p]) if len(overlap_s) else 0.0,
            )
            stages_from.setdefault(everything - before, []).append(row)
            by_pair[p] = row
    return stages_from, by_pair


@given(dp_inputs())
def test_dp_solve_finds_the_reference_optimum_and_a_plan_that_achieves_it(case):
    _check_dp(case)


@pytest.mark.parametrize(
    ("tp", "t", "n_dev"),
    [
        # one layer per stage (2 + 1 + 1 + 2 devices) is best, so reconstruction has to
        # count the one-device stages down as it walks the pipeline
        ([True, False, False, True], 2, 6),
        # one layer per stage would need 3 + 3 + 1 = 7 of the 6 devices: the count of
        # one-device stages a pipeline needs is a ceiling, ceil((2 * 3 - 3) / 2) = 2
        ([True, True, False], 3, 6),
    ],
)
def test_dp_solve_with_one_device_stages_under_a_tight_device_budget(tp, t, n_dev):
    # unit loads per layer on a chain; the kernel must match the reference exactly here
    n = len(tp)
    g = {"n": n, "edges": [(i, i + 1, 0.0) for i in range(n - 1)], "params": [0.0] * n}
    g["tp"] = tp
    _check_dp(_dp_case(g, t, n_dev, 64, 1.0, lambda stage: (len(stage), len(stage), n_dev)))


def _check_dp(case):
    g, downs, t, tabs, scalars = case[:5]
    n_dev, micro_batches, bandwidth, _, _, latency = scalars
    d_max = min(n_dev, micro_batches)
    terms, overlap_s, bound, record = (
        case[5] if len(case) > 5 else (None, np.zeros(0), math.inf, False)
    )
    fr = terms or ref.FinalTerms()
    d_best = np.full(d_max + 1, -1.0) if record else np.zeros(0)
    best, d, p, s, r, table = kdp.dp_solve(
        *tabs,
        *scalars,
        fr.sync,
        overlap_s,
        fr.step,
        fr.step_sharded,
        fr.d_lo,
        fr.d_hi,
        bound,
        d_best,
    )
    stages_from, by_pair = _reference_stages(g, downs, t, tabs, overlap_s)
    everything = frozenset(range(g["n"]))
    bandwidth, latency = bandwidth.tolist(), latency.tolist()
    args = (stages_from, everything, frozenset(), n_dev, micro_batches, bandwidth, latency)
    want = ref.best_time(*args, terms)
    if not want < bound:
        want = math.inf
    where = f"kernel {best} (d={d}, s={s}), reference {want}; graph {g}, t={t}, {scalars}, "
    where += f"{terms}, bound {bound}"
    if record:  # the least time at each d: exact, or a lower bound for a skipped d
        per_d = ref.best_time_per_d(*args, terms)
        for dd in range(1, d_max + 1):
            got = float(d_best[dd])
            assert got >= 0.0, (dd, got, where)
            assert got <= per_d[dd] * (1 + TIME_REL) or got == per_d[dd], (dd, got, per_d, where)
        finite = [v for v in per_d.values() if v < math.inf]
        assert _close(float(d_best[1:].min()), min(finite, default=math.inf), TIME_REL, 1.0), where
    if math.isinf(want):
        assert math.isinf(best) and (d, p, s, r) == (-1, -1, -1, -1), where
        return
    assert _close(best, want, TIME_REL, want), where
    assert fr.d_lo <= d <= fr.d_hi, where
    pipeline = kdp.reconstruct(*tabs, table, p, s, r)
    assert all(int(q) in by_pair for q in pipeline), f"plan {pipeline.tolist()}; {where}"
    plan = [by_pair[int(q)] for q in pipeline]
    again = ref.plan_time(
        stages_from,
        plan,
        int(d),
        everything,
        frozenset(),
        n_dev,
        micro_batches,
        bandwidth,
        latency,
        terms,
    )
    assert _close(again, want, TIME_REL, want), f"plan {pipeline.tolist()} takes {again}; {where}"
