"""Benchmark: real-system estimation and planning (phaze.systems).

Run: ``pytest bench/bench_systems.py --benchmark-only -s`` (the re-fit is marked ``slow``:
add ``-m ""``). Bars: every measured run (1,007) estimated in < 2 s after warm-up;
``phaze plan`` for gpt3-175b on 1,024 A100s over every option in < 10 s. The accuracy
table (fit rows / held-out rows per file) is printed by ``test_accuracy``; the same table
comes from ``python bench/fit_systems.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from phaze import best_plans, estimate_file, load_system, preset

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fit_systems  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "measured"
FILES = [DATA / name for name in fit_systems.FILES]


def _estimate_all():
    n = 0
    for path in FILES:
        ests, errors = estimate_file(path)
        assert not errors
        n += len(ests)
    return n


def test_estimate_all_measured_runs(benchmark):
    _estimate_all()  # warm-up (imports, first call)
    n = benchmark.pedantic(_estimate_all, rounds=5, iterations=1)
    assert n == 1007
    if benchmark.stats is not None:  # None under --benchmark-disable
        assert benchmark.stats.stats.median < 2.0


def test_plan_gpt3_175b_on_1024_a100(benchmark):
    system, spec = load_system("a100-selene"), preset("gpt3-175b")

    def run():
        return best_plans(system, spec, 1024, 1536, top=5)

    plans, priced = benchmark.pedantic(run, rounds=3, iterations=1)
    print(f"\n{priced} plans fit; best {plans[0].plan} {plans[0].iteration_s:.3f} s")
    assert plans and all(p.breakdown.fits for p in plans)
    if benchmark.stats is not None:
        assert benchmark.stats.stats.median < 10.0


def test_accuracy(capsys):
    files = fit_systems.load()
    with capsys.disabled():
        print()
        fit_systems.report(files, load_system("a100-vtrain"))


@pytest.mark.slow
def test_refit_recovers_the_shipped_constants():
    files = fit_systems.load()
    system = load_system("a100-vtrain")
    values = fit_systems.fit(files, system, rounds=2)
    shipped = fit_systems.current(system)
    print("\nfitted", values, "\nshipped", shipped)
    for name, value in values.items():
        assert value == pytest.approx(shipped[name], rel=0.1), name
