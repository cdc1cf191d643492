"""Search under a power budget and the energy objectives: ``exact`` equals ``exhaustive``,
the budget holds, and the objectives pick what they say (docs/energy.md)."""

from __future__ import annotations

import numpy as np
import pytest

from phaze.errors import ConfigError
from phaze.hardware import DesignSpace
from phaze.joint import search
from phaze.joint.objective import row_score
from phaze.models import preset
from phaze.rows import ROW_FIELDS, PlanRow
from phaze.units import GIB
from phaze.workload import Cluster, Workload

#: 143 architectures: an exhaustive reference per objective stays cheap.
SPACE = DesignSpace(
    num_tc=(1, 2, 4, 8),
    num_vc=(1, 2, 4),
    tc_width=(8, 32, 128),
    tc_depth=(32, 128),
    glb_bytes=(2**21, 2**27),
    area_band=0.0,
)
CLUSTER = Cluster(devices=64)
SETTINGS = dict(micro_batch_sizes=(1, 4), hbm_sizes=(2 * GIB, 16 * GIB), recompute=(False, True))
BERT = Workload(preset("bert-large"), seq_len=128, global_batch=512)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One result store shared by the exhaustive runs (rows do not depend on the
    objective or the budget), so each objective's reference costs no new placements."""
    return str(tmp_path_factory.mktemp("energy-store"))


@pytest.fixture(scope="module")
def plain(store):
    return search(BERT, CLUSTER, SPACE, strategy="exhaustive", out=store, **SETTINGS)


def test_space_is_big_enough_to_prune():
    assert len(SPACE.enumerate()) >= 100


def _check_exact_equals_exhaustive(store, **kw):
    exact = search(BERT, CLUSTER, SPACE, strategy="exact", **kw, **SETTINGS)
    full = search(BERT, CLUSTER, SPACE, strategy="exhaustive", out=store, **kw, **SETTINGS)
    assert full.best is not None
    assert exact.best == full.best, (exact.best, full.best)
    assert exact.frontier.tolist() == full.frontier.tolist()
    np.testing.assert_array_equal(exact.frontier_value, full.frontier_value)
    assert exact.counters["exact_rows"] < full.counters["stored_rows_reused"]
    return exact, full


def test_exact_equals_exhaustive_under_a_binding_power_budget(plain, store):
    best_power = plain.best.per_workload[0].power_w
    feasible = plain.rows["throughput"] > 0
    budget = float(np.quantile(plain.rows["power_w"][feasible], 0.3))
    assert budget < best_power, "the budget must exclude the unconstrained optimum"
    exact, full = _check_exact_equals_exhaustive(store, power_budget_w=budget)
    assert exact.best.per_workload[0].power_w <= budget
    assert exact.best.value < plain.best.value  # the budget cost throughput
    # the budgeted optimum is the fastest row within the budget
    ok = feasible & (plain.rows["power_w"] <= budget)
    assert exact.best.value == plain.rows["throughput"][ok].max()


@pytest.mark.parametrize("objective", ["throughput-per-watt", "energy-per-sample"])
def test_exact_equals_exhaustive_under_energy_objectives(plain, store, objective):
    exact, _ = _check_exact_equals_exhaustive(store, objective=objective)
    # the optimum is the row with the least energy per sample of all rows
    least = plain.rows["energy_per_sample_j"].min()
    assert exact.best.per_workload[0].energy_per_sample_j == least
    assert exact.best.value == pytest.approx(1 / least, rel=1e-12)


def test_exact_equals_exhaustive_under_energy_objective_and_budget(plain, store):
    feasible = plain.rows["throughput"] > 0
    budget = float(np.quantile(plain.rows["power_w"][feasible], 0.5))
    exact, _ = _check_exact_equals_exhaustive(
        store, objective="throughput-per-watt", power_budget_w=budget
    )
    assert exact.best.per_workload[0].power_w <= budget


def test_a_budget_below_every_leakage_finds_nothing(plain):
    got = search(BERT, CLUSTER, SPACE, strategy="exact", power_budget_w=1e-3, **SETTINGS)
    assert got.best is None
    assert got.counters["exact_rows"] == 0  # leakage alone rules every design out


def test_row_score():
    row = PlanRow(100.0, 5.12, 1, 64, 1, 0, 50.0, 2.0)
    assert row_score(row, "throughput", None) == 100.0
    assert row_score(row, "throughput", 49.9) == 0.0
    assert row_score(row, "throughput-per-watt", 50.0) == 0.5
    assert row_score(PlanRow(0.0, np.inf, 0, 0, 0, -1), "energy-per-sample", None) == 0.0
    assert ROW_FIELDS[-3:] == ("power_w", "energy_per_sample_j", "interleave")


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"objective": "watts"}, "objective='watts'.*throughput-per-watt"),
        ({"power_budget_w": 0}, "power_budget_w=0"),
        ({"power_budget_w": "300"}, "power_budget_w='300'"),
    ],
)
def test_bad_objective_arguments(kw, match):
    with pytest.raises(ConfigError, match=match):
        search(BERT, CLUSTER, SPACE, **kw, **SETTINGS)


SMALL = "--model bert-large --batch 512 --devices 64 --hbm 16 --mbs 4 --area-budget 40 --seq 128"


def test_cli_power_budget_and_objective_reach_every_output(tmp_path, capsys):
    import csv
    import json

    from phaze.cli import main

    out = tmp_path / "out"
    argv = ["search", *SMALL.split(), "--recompute", "off", "--out", str(out), "--no-progress"]
    budget = 60.0  # above the leakage of every chip of <= 40 mm^2 (3.4 W)
    assert main([*argv, "--power-budget", "60", "--objective", "throughput-per-watt"]) == 0
    text = capsys.readouterr().out
    assert f"power budget {budget:g} W" in text and "J/sample" in text
    best = json.loads((out / "best.json").read_text())
    w = best["workloads"][0]
    assert best["objective"] == "throughput-per-watt" and best["power_budget_w"] == budget
    assert 0 < w["power_w"] <= budget
    assert best["objective_value"] == pytest.approx(1 / w["energy_per_sample_j"], rel=1e-12)
    assert all("value_samples_per_j" in f for f in best["frontier"])
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and {"power_w", "energy_per_sample_j"} <= set(rows[0])
    feasible = [r for r in rows if float(r["throughput_samples_per_s"]) > 0]
    assert all(float(r["power_w"]) > 0 for r in feasible)
    assert (out / "frontier.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--power-budget", "-5"], "--power-budget=-5.0"),
        (["--power-budget", "nan"], "--power-budget=nan"),
    ],
)
def test_cli_bad_power_arguments_exit_2_with_one_line(argv, message, capsys):
    from phaze.cli import main

    code = main(["search", *SMALL.split(), *argv, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
