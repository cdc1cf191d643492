"""Fit the a100-vtrain system's few free parameters and report the model's accuracy.

Run from the repository root::

    python bench/fit_systems.py            # accuracy of the shipped constants
    python bench/fit_systems.py --fit      # re-run the fit, then the accuracy report

Data: ``tests/data/measured/vtrain_{multi,single}_node.jsonl`` (vTrain ground truth,
VIA-Research/vTrain commit f8dda84, MIT licence). Fit rows: runs whose id number is
divisible by 3 (a fixed, documented split); every other run is held out. The fit
minimises the mean absolute % error over the fit rows of both files (each file weighted
equally) by coordinate descent over a log-spaced grid of each parameter, starting from
round figures (``START``).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import pathlib
import sys

from phaze.systems.estimate import accuracy_by_split, estimate
from phaze.systems.runs import Run, read_runs

DATA = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "measured"
FILES = ("vtrain_multi_node.jsonl", "vtrain_single_node.jsonl")
#: name -> (where it lives, lower bound, upper bound)
PARAMS = {
    "gemm_efficiency": ("chip", 0.3, 1.0),
    "kernel_launch_s": ("chip", 1e-6, 200e-6),
    "nvlink_efficiency": ("level0", 0.2, 1.0),
    "ib_efficiency": ("level1", 0.2, 1.0),
}


def is_fit_row(run_id: str) -> bool:
    """The fixed split: fit on ids whose trailing number is divisible by 3."""
    digits = run_id.rsplit("-", 1)[-1]
    return digits.isdigit() and int(digits) % 3 == 0


def with_params(system, values: dict):
    chip = dataclasses.replace(
        system.chip,
        **{k: v for k, v in values.items() if PARAMS[k][0] == "chip"},
    )
    levels = list(system.network.levels)
    for k, v in values.items():
        where = PARAMS[k][0]
        if where.startswith("level"):
            j = int(where[5:])
            levels[j] = dataclasses.replace(levels[j], efficiency=v)
    network = dataclasses.replace(system.network, levels=tuple(levels))
    return dataclasses.replace(system, chip=chip, network=network)


def load():
    out = {}
    for name in FILES:
        rows = read_runs(DATA / name)
        bad = [r for r in rows if not isinstance(r, Run)]
        if bad:
            raise SystemExit(f"{name}: unexpected bad rows {bad[:3]}")
        out[name] = rows
    return out


def current(system) -> dict:
    return {
        "gemm_efficiency": system.chip.gemm_efficiency,
        "kernel_launch_s": system.chip.kernel_launch_s,
        "nvlink_efficiency": system.network.levels[0].efficiency,
        "ib_efficiency": system.network.levels[1].efficiency,
    }


def objective(files, system) -> float:
    total = 0.0
    for rows in files.values():
        fit = [dataclasses.replace(r, system=system) for r in rows if is_fit_row(r.id)]
        errs = [abs(e.error) for e in estimate(fit)]
        total += sum(errs) / len(errs)
    return total / len(files)


#: Where the fit starts (round figures, not the shipped constants).
START = {
    "gemm_efficiency": 0.8,
    "kernel_launch_s": 10e-6,
    "nvlink_efficiency": 0.8,
    "ib_efficiency": 0.8,
}


def fit(files, system, rounds: int = 3, points: int = 25) -> dict:
    values = dict(START)
    best = objective(files, with_params(system, values))
    for _ in range(rounds):
        for name, (_, lo, hi) in PARAMS.items():
            for i in range(points):
                x = math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * i / (points - 1))
                trial = dict(values, **{name: x})
                score = objective(files, with_params(system, trial))
                if score < best:
                    best, values = score, trial
        # refine around the best value of each parameter
        for name, (_, lo, hi) in PARAMS.items():
            for f in (0.9, 0.95, 0.98, 1.02, 1.05, 1.1):
                x = min(hi, max(lo, values[name] * f))
                trial = dict(values, **{name: x})
                score = objective(files, with_params(system, trial))
                if score < best:
                    best, values = score, trial
    return values


def report(files, system) -> None:
    print("| file | rows | split | mean abs error | max abs error |")
    print("|---|---|---|---|---|")
    for name, rows in files.items():
        rows = [dataclasses.replace(r, system=system) for r in rows]
        for split, acc in accuracy_by_split(rows, is_fit_row).items():
            print(
                f"| {name} | {acc['rows']} | {split} | {100 * acc['mean_abs_error']:.2f}% | "
                f"{100 * acc['max_abs_error']:.2f}% |"
            )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="re-run the fit first")
    args = parser.parse_args(argv)
    from phaze.systems.presets import load_system

    files = load()
    system = load_system("a100-vtrain")
    if args.fit:
        values = fit(files, system)
        print("fitted:", ", ".join(f"{k}={v:.4g}" for k, v in values.items()))
        system = with_params(system, values)
    else:
        print("shipped:", ", ".join(f"{k}={v:.4g}" for k, v in current(system).items()))
    report(files, system)
    return 0


if __name__ == "__main__":
    sys.exit(main())
