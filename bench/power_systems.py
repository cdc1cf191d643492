"""Predicted board power of real systems: the GEMM check and the measured vTrain runs.

Run from the repository root::

    python bench/power_systems.py
    python bench/power_systems.py --time    # CPU time of estimating and planning

``--time`` imports nothing new, so the same command measures an older checkout
(``PYTHONPATH=OLD_CHECKOUT python bench/power_systems.py --time``).

Prints (1) the board power of one 8192^3 fp16 GEMM at each preset's achieved efficiency
(``peak x gemm_efficiency``), with its energy by resource; (2) gpt3-175b's Megatron
iteration (t8 p16 d8, micro-batch 1, batch 1536, full recompute) on each preset; (3) the
mean, minimum and maximum predicted average board power per device over the runs of
each vTrain file (``tests/data/measured``; vTrain ground truth, VIA-Research/vTrain commit
f8dda84, MIT licence), and of the busiest stage's devices.
"""

from __future__ import annotations

import pathlib
import sys
import time

from phaze import best_plans, estimate_file, load_system, preset
from phaze.systems import TrainingPlan, iteration

DATA = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "measured"
FILES = ("vtrain_multi_node.jsonl", "vtrain_single_node.jsonl")
SYSTEMS = ("a100-vtrain", "a100-selene", "h100-dgx")


def gemm_check() -> None:
    from phaze.systems.power import board_power_w, energy_by_category_j, gemm_work

    print("8192^3 fp16 GEMM at peak x gemm_efficiency")
    work = gemm_work(1, 8192, 8192, 8192)
    for name in ("a100-selene", "h100-dgx"):
        chip = load_system(name).chip
        seconds = work.flops / (chip.peak_tensor_flops * chip.gemm_efficiency)
        watts = board_power_w(chip.power, work, seconds)
        dyn = {k: f"{v / seconds:.1f} W" for k, v in energy_by_category_j(chip.power, work).items()}
        print(
            f"  {chip.name}: {watts:.1f} W (idle {chip.power.idle_w:g} W, TDP "
            f"{chip.power.tdp_w:g} W); dynamic {dyn}"
        )


def gpt3_iteration() -> None:
    print("gpt3-175b, t8 p16 d8 b1, batch 1536, full recompute, seq 2048")
    plan = TrainingPlan(8, 16, 8, 1, 1536, recompute_mode="full")
    for name in SYSTEMS:
        bd = iteration(load_system(name), preset("gpt3-175b"), plan, 2048)
        pw = bd.power
        print(
            f"  {name}: {bd.iteration_s:.2f} s/iteration, mean {pw.power_w:.1f} W, busiest "
            f"stage {pw.max_power_w:.1f} W, {pw.energy_per_sample_j:.0f} J/sample, "
            f"{pw.energy_per_iteration_j / 3.6e6:.3f} kWh/iteration"
        )


def vtrain_runs() -> None:
    print("vTrain runs: predicted average board power per device (W)")
    print("| file | runs | mean | min | max | busiest stage max | over TDP |")
    print("|---|---|---|---|---|---|---|")
    for name in FILES:
        ests, errors = estimate_file(DATA / name)
        assert not errors
        watts = [e.breakdown.power.power_w for e in ests]
        peak = max(e.breakdown.power.max_power_w for e in ests)
        over = sum(e.breakdown.power.exceeds_tdp for e in ests)
        print(
            f"| {name} | {len(ests)} | {sum(watts) / len(watts):.1f} | {min(watts):.1f} | "
            f"{max(watts):.1f} | {peak:.1f} | {over} |"
        )


def timing(rounds: int = 5) -> None:
    """Best CPU time of estimating all 1,007 measured runs, and of best_plans for
    gpt3-175b on 1,024 A100s (after one warm-up call each)."""

    def est():
        for name in FILES:
            estimate_file(DATA / name)

    def plan():
        best_plans(load_system("a100-selene"), preset("gpt3-175b"), 1024, 1536, top=5)

    for label, fn in (("estimate 1,007 runs", est), ("best_plans gpt3-175b x 1024", plan)):
        fn()
        best = float("inf")
        for _ in range(rounds):
            start = time.process_time()
            fn()
            best = min(best, time.process_time() - start)
        print(f"{label}: best CPU {best:.3f} s of {rounds}")


if __name__ == "__main__":
    if "--time" in sys.argv[1:]:
        timing()
        sys.exit(0)
    gemm_check()
    gpt3_iteration()
    vtrain_runs()
