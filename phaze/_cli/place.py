"""``phaze place``: solve a device-placement instance (reference JSON format)."""

from __future__ import annotations

import argparse
import json
import math

from phaze.units import GIB

HELP = (
    "find the fastest device placement of a placement instance (reference JSON format); "
    "exit status 1 when no plan fits"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--instance",
        required=True,
        metavar="PATH",
        help="placement instance in the original solver's JSON format",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON (the reference expected.json fields plus details)",
    )


def _best(per_width: dict):
    from phaze.placement import choose_width

    plans = [per_width[t] for t in sorted(per_width)]
    k = choose_width([p.time_per_batch_s if p is not None else math.inf for p in plans])
    return plans[k] if k >= 0 else None


def _layers(ids: tuple[int, ...]) -> str:
    if len(ids) > 2 and list(ids) == list(range(ids[0], ids[0] + len(ids))):
        return f"{ids[0]}..{ids[-1]}"
    return ",".join(map(str, ids))


def run(args: argparse.Namespace) -> int:
    from phaze.placement import evaluate_baseline, load_instance, place_per_width
    from phaze.placement.instance import answer_dict

    problem = load_instance(args.instance)
    per_width = place_per_width(problem)
    best = _best(per_width)
    baseline = evaluate_baseline(problem) if problem.fixed_baseline is not None else None
    if args.json:
        out = answer_dict(best, per_width, baseline)
        print(json.dumps(out, indent=1, allow_nan=False))
        return 0 if best is not None else 1
    print(
        f"instance {args.instance}: {problem.graphs[0].n_layers} layers, "
        f"{problem.devices} devices, {problem.link_bandwidth_Bps / 1e9:.3g} GB/s links, "
        f"{problem.hbm_bytes / GIB:.4g} GiB HBM, {problem.num_micro_batches} micro-batches, "
        f"{problem.optimizer}, recompute {'on' if problem.recompute else 'off'}"
    )
    print()
    print(f"{'t':>4}  {'time/batch (s)':>16}  {'d':>5}  {'stages':>6}")
    for t, p in per_width.items():
        if p is None:
            print(f"{t:>4}  {'infeasible':>16}  {'-':>5}  {'-':>6}")
        else:
            mark = "  <- best" if p is best else ""
            print(
                f"{t:>4}  {p.time_per_batch_s:>16.9g}  {p.data_parallel:>5}  "
                f"{p.num_stages:>6}{mark}"
            )
    if baseline is not None:
        fb = problem.fixed_baseline
        what = (
            f"{baseline.time_per_batch_s:.9g} s"
            if baseline.feasible
            else f"infeasible ({baseline.reason.split('; ')[0]})"
        )
        print(
            f"fixed baseline p={fb.pipeline_stages} t={fb.tensor_width} "
            f"d={fb.data_parallel}: {what}"
        )
    print()
    if best is None:
        print(
            f"no plan fits in {problem.hbm_bytes:.6g} bytes of HBM per device at any width "
            f"({', '.join(map(str, problem.widths))})"
        )
        return 1
    print(
        f"best plan: t={best.tensor_width}, d={best.data_parallel}, {best.num_stages} "
        f"stages, {best.micro_batches_per_pipeline} micro-batches per pipeline, "
        f"{best.devices_used} of {problem.devices} devices, "
        f"{best.throughput_micro_batches_per_s:.6g} micro-batches/s"
    )
    print(
        f"{'stage':>5}  {'layers':<16}  {'devices':>7}  {'load (s)':>12}  "
        f"{'memory (GiB)':>12}  recompute"
    )
    bottleneck = best.bottleneck_stage
    for q, st in enumerate(best.stages):
        mark = "  <- bottleneck" if q == bottleneck else ""
        load = f"{st.load_s:.6g}" if math.isfinite(st.load_s) else "inf"
        print(
            f"{q:>5}  {_layers(st.layer_ids):<16}  {st.devices:>7}  {load:>12}  "
            f"{st.memory_bytes / GIB:>12.4f}  {'yes' if st.recompute else 'no':<9}{mark}"
        )
    return 0
