"""Board power of real systems (phaze.systems.power): the board-power check, the work an
iteration counts, monotonicity and additivity of the energy, idle power, output fields."""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phaze import preset
from phaze._cli.estimate import tdp_note
from phaze.cli import main
from phaze.energy import EnergyModel
from phaze.errors import ConfigError
from phaze.systems import Network, NetworkLevel, TrainingPlan, iteration, load_system
from phaze.systems.power import (
    A100_SXM_POWER,
    H100_SXM_POWER,
    ChipPower,
    Work,
    board_power_w,
    energy_by_category_j,
    gemm_work,
    iteration_power,
    node_energy_factor,
)
from phaze.systems.runs import parse_run
from phaze.systems.training import padded_vocab, stage_work

DATA = pathlib.Path(__file__).parent / "data" / "measured"
SELENE = load_system("a100-selene")
H100 = load_system("h100-dgx")
GPT3 = preset("gpt3-175b")
# relative tolerance of sums of a few hundred float64 terms
REL = 1e-9


# ------------------------------------------------------------------ board-power check


@pytest.mark.parametrize("system", [SELENE, H100], ids=["a100", "h100"])
def test_large_gemm_lands_between_idle_plus_100_w_and_the_tdp(system):
    """An 8192^3 fp16 GEMM at the preset's achieved efficiency draws well above idle and
    within the board's TDP (A100 SXM 400 W, H100 SXM 700 W)."""
    chip = system.chip
    work = gemm_work(1, 8192, 8192, 8192)
    seconds = work.flops / (chip.peak_tensor_flops * chip.gemm_efficiency)
    watts = board_power_w(chip.power, work, seconds)
    assert chip.power.idle_w + 100 < watts <= chip.power.tdp_w, (system.name, watts)


def test_datasheet_tdps_and_idle_below_them():
    assert A100_SXM_POWER.tdp_w == 400 and H100_SXM_POWER.tdp_w == 700
    for p in (A100_SXM_POWER, H100_SXM_POWER):
        assert 0 < p.idle_w < p.tdp_w / 4


def test_gpt3_175b_iteration_on_selene_is_between_idle_and_tdp():
    plan = TrainingPlan(8, 16, 8, 1, 1536, recompute_mode="full")
    bd = iteration(SELENE, GPT3, plan, 2048)
    pw = bd.power
    assert A100_SXM_POWER.idle_w < pw.power_w <= pw.max_power_w * (1 + REL)
    assert pw.max_power_w <= A100_SXM_POWER.tdp_w
    assert not pw.exceeds_tdp
    # the same joules, per sample and per device-second
    assert math.isclose(
        pw.energy_per_sample_j * plan.global_batch_size,
        pw.power_w * plan.devices * bd.iteration_s,
        rel_tol=REL,
    )


# ----------------------------------------------------------------------- constants


def test_node_scaling_factor_from_the_published_polynomials():
    # Stillmaker & Baas (2017) energy fits a V^2 + b V + c at 0.8 V, written out by hand:
    e7 = 0.1776 * 0.64 - 0.09097 * 0.8 + 0.02447
    e20 = 0.373 * 0.64 - 0.1582 * 0.8 + 0.04104
    e32 = 0.9559 * 0.64 - 0.7823 * 0.8 + 0.471
    e22 = e20 + (e32 - e20) * 2 / 12
    assert math.isclose(node_energy_factor(7) / node_energy_factor(22), e7 / e22, rel_tol=1e-12)
    with pytest.raises(ConfigError, match="node_nm=3"):
        node_energy_factor(3)


def test_a100_constants_follow_from_the_template_and_the_scaling():
    """flop_j: the template's MAC over 2 FLOPs plus 0.4375 register bytes and 3/64
    shared-memory bytes per FLOP; l2_byte_j: the GLB curve at 40 MiB; both scaled
    22 nm -> 7 nm. HBM: 3.9 pJ/bit."""
    t = EnergyModel()
    k = node_energy_factor(7) / node_energy_factor(22)
    smem = t.core_sram_access_j * math.sqrt(192 / 256) / 2
    flop = (t.mac_j / 2 + 0.4375 * t.register_access_j / 2 + 3 / 64 * smem) * k
    l2 = t.glb_access_j * math.sqrt(40 / 128) / 2 * k
    assert math.isclose(A100_SXM_POWER.flop_j, flop, rel_tol=1e-12)
    assert math.isclose(A100_SXM_POWER.l2_byte_j, l2, rel_tol=1e-12)
    assert math.isclose(A100_SXM_POWER.hbm_byte_j, 3.9e-12 * 8, rel_tol=1e-12)


def test_chip_power_validation_names_the_value():
    fields = A100_SXM_POWER.to_dict()
    with pytest.raises(ConfigError, match="flop_j=-1"):
        ChipPower(**{**fields, "flop_j": -1.0})
    with pytest.raises(ConfigError, match="idle_w=500"):
        ChipPower(**{**fields, "idle_w": 500.0})
    with pytest.raises(ConfigError, match="seconds=0"):
        board_power_w(A100_SXM_POWER, Work(), 0)


# --------------------------------------------------------------------- properties

works = st.builds(
    Work,
    flops=st.floats(0, 1e15),
    l2_bytes=st.floats(0, 1e13),
    hbm_bytes=st.floats(0, 1e12),
    link_bytes=st.tuples(st.floats(0, 1e11), st.floats(0, 1e11)),
)


@given(works, st.sampled_from(["flops", "l2_bytes", "hbm_bytes"]), st.floats(1e6, 1e15))
def test_more_work_in_the_same_time_draws_more_power(work, field, extra):
    more = dataclasses.replace(work, **{field: getattr(work, field) + extra})
    for p in (A100_SXM_POWER, H100_SXM_POWER):
        assert board_power_w(p, more, 1.0) > board_power_w(p, work, 1.0), (work, field)


@given(works, st.floats(1e6, 1e12), st.integers(0, 1))
def test_more_bytes_sent_draw_more_power(work, extra, level):
    links = list(work.link_bytes)
    links[level] += extra
    more = dataclasses.replace(work, link_bytes=tuple(links))
    assert board_power_w(A100_SXM_POWER, more, 1.0) > board_power_w(A100_SXM_POWER, work, 1.0)


@given(works, works)
def test_energy_is_additive_over_work_and_categories(a, b):
    ea, eb = energy_by_category_j(A100_SXM_POWER, a), energy_by_category_j(A100_SXM_POWER, b)
    eab = energy_by_category_j(A100_SXM_POWER, a + b)
    for key, value in eab.items():
        assert math.isclose(value, ea[key] + eb[key], rel_tol=REL, abs_tol=1e-300), key


@given(st.floats(1e-6, 1e4), st.integers(1, 64), st.integers(1, 8))
def test_an_idle_chip_draws_idle_power(seconds, devices_per_stage, stages):
    assert board_power_w(A100_SXM_POWER, Work(), seconds) == A100_SXM_POWER.idle_w
    pw = iteration_power(H100_SXM_POWER, [Work()] * stages, devices_per_stage, seconds, 7)
    assert math.isclose(pw.power_w, H100_SXM_POWER.idle_w, rel_tol=REL)
    assert pw.max_power_w == H100_SXM_POWER.idle_w
    assert pw.compute_j == pw.l2_j == pw.hbm_j == pw.network_j == 0


def test_iteration_energy_is_the_sum_of_its_categories():
    plan = TrainingPlan(4, 8, 2, 2, 64, interleave=2, recompute_mode="selective")
    pw = iteration(H100, GPT3, plan, 2048).power
    parts = pw.idle_j + pw.compute_j + pw.l2_j + pw.hbm_j + pw.network_j
    assert math.isclose(parts, pw.energy_per_iteration_j, rel_tol=REL)
    assert min(pw.compute_j, pw.l2_j, pw.hbm_j, pw.network_j) > 0


# -------------------------------------------------------------------- work counting

SMALL = {"hidden": 1024, "heads": 16, "layers": 24, "ffn": 4096, "vocab": 50257, "seq_len": 1024}


@pytest.mark.parametrize(
    ("mode", "passes"),
    [("none", 3), ("full", 4)],
)
def test_iteration_flops_equal_megatrons_formula(mode, passes):
    """All devices' FLOPs = passes x (24 B s L h^2 (1 + s / (6h)) + 2 B s h V) with V the
    padded vocabulary (Narayanan et al. 2021, eq. 3: 72 or 96 B s L h^2 (1 + s/(6h) +
    V/(12 or 16 L h))); the LM head is never recomputed."""
    run = parse_run(
        {
            "system": "a100-selene",
            "devices": 8,
            "model": SMALL,
            "plan": {"tp": 2, "pp": 2, "dp": 2, "micro_batch": 4, "global_batch": 32},
        }
    )
    plan = dataclasses.replace(run.plan, recompute_mode=mode)
    works = stage_work(SELENE, run.model, plan, run.seq_len)
    total = sum(w.flops for w in works) * plan.tensor_width * plan.data_parallel
    b, s, h, L = 32, 1024, 1024, 24
    v = padded_vocab(run.model, plan.tensor_width)
    expected = passes * 24 * b * s * L * h * h * (1 + s / (6 * h)) + 3 * 2 * b * s * h * v
    assert math.isclose(total, expected, rel_tol=REL), (total, expected)


@given(
    st.integers(2, 512),
    st.sampled_from([1, 2, 4, 8, 16, 64]),
    st.sampled_from([2, 4, 8, 16]),
    st.floats(1.0, 1e12),
)
def test_every_byte_sent_is_on_one_level(n, stride, node, size):
    net = Network(
        (NetworkLevel("nvlink", node, 300e9, 1.0, 0.0), NetworkLevel("ib", 0, 25e9, 1.0, 0.0))
    )
    ring, p2p = net.ring_bytes_by_level(size, n, stride), net.p2p_bytes_by_level(size, n, stride)
    for split in (ring, p2p):
        assert min(split) >= 0 and math.isclose(sum(split), size, rel_tol=1e-12), split
        if n * stride <= node:  # the group fits in one node: NVLink only
            assert split[1] == 0, split
        if stride >= node:  # one member per node: every byte leaves its node
            assert split[0] == 0, split


def test_ring_and_p2p_bytes_split_over_levels_add_up():
    net = SELENE.network
    for n, stride in [(8, 1), (16, 1), (2, 8), (4, 4), (64, 2), (3, 1)]:
        split = net.ring_bytes_by_level(100.0, n, stride)
        assert math.isclose(sum(split), 100.0, rel_tol=1e-12), (n, stride, split)
        if n * stride <= 8:
            assert split[1] == 0
        split = net.p2p_bytes_by_level(100.0, n, stride)
        assert math.isclose(sum(split), 100.0, rel_tol=1e-12), (n, stride, split)
    assert net.ring_bytes_by_level(100.0, 2, 8) == (0.0, 100.0)  # one member per node


# ---------------------------------------------------------------------- interfaces


def test_estimate_json_and_plan_csv_carry_power(tmp_path, capsys):
    assert main(["estimate", "--json", str(DATA / "vtrain_multi_node.jsonl")]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for row in rows:
        # mean <= max up to rounding (one stage: the same number, summed differently)
        assert A100_SXM_POWER.idle_w < row["power_w"] <= row["max_power_w"] * (1 + REL)
        assert row["max_power_w"] <= 400, row["id"]
        assert row["energy_per_sample_j"] > 0 and row["exceeds_tdp"] is False
    out = tmp_path / "plans.csv"
    args = ["plan", "--system", "h100-dgx", "--devices", "16", "--model", "megatron-gpt2-xl"]
    assert main([*args, "--batch", "64", "--top", "2", "--out", str(out)]) == 0
    header, first = out.read_text().splitlines()[:2]
    row = dict(zip(header.split(","), first.split(","), strict=True))
    assert H100_SXM_POWER.idle_w < float(row["power_w"]) <= 700
    assert float(row["energy_per_sample_j"]) > 0


def test_system_without_power_constants_reports_none(tmp_path, capsys):
    data = SELENE.to_dict()
    data["chip"].pop("power")
    path = tmp_path / "nopower.json"
    path.write_text(json.dumps(data))
    system = load_system(str(path))
    assert system.chip.power is None
    bd = iteration(system, GPT3, TrainingPlan(8, 1, 1, 1, 8), 2048)
    assert bd.power is None and bd.to_dict()["power_w"] is None
    data["chip"]["power"] = {"tdp_w": 400}
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="power"):
        load_system(str(path))


def test_power_above_tdp_is_reported_not_capped(capsys):
    """A chip whose constants make a run exceed its TDP: the power is not capped, the
    flag is set and the table says so."""
    hot = dataclasses.replace(A100_SXM_POWER, flop_j=10e-12)
    chip = dataclasses.replace(SELENE.chip, power=hot)
    system = dataclasses.replace(SELENE, chip=chip)
    plan = TrainingPlan(8, 16, 8, 1, 1536, recompute_mode="full")
    pw = iteration(system, GPT3, plan, 2048).power
    assert pw.max_power_w > hot.tdp_w and pw.exceeds_tdp
    tdp_note([pw, iteration(SELENE, GPT3, plan, 2048).power])
    assert "1 predicted board power(s) exceed the TDP" in capsys.readouterr().out
