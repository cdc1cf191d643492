"""``phaze estimate``: predict the iteration time of training runs on real systems."""

from __future__ import annotations

import argparse
import json
import sys

from phaze.report import format_table

HELP = (
    "predict iteration time, its breakdown and memory per device of the runs in a JSON-lines "
    "file (exit status 2 if any line is invalid; the others are still estimated)"
)

_TERMS = (
    ("forward_s", "fwd"),
    ("backward_s", "bwd"),
    ("recompute_s", "recomp"),
    ("tp_comm_s", "tp comm"),
    ("bubble_s", "bubble"),
    ("p2p_s", "p2p"),
    ("dp_comm_s", "dp comm"),
    ("optimizer_s", "optim"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs", metavar="RUNS.jsonl", help="one run per line (docs/real-systems.md)"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per input line (invalid lines: predicted_s null and the reason)",
    )


def _plan(run) -> str:
    p = run.plan
    text = f"t{p.tensor_width} p{p.num_stages} d{p.data_parallel} b{p.micro_batch_size}"
    if p.interleave > 1:
        text += f" v{p.interleave}"
    text += f" {p.recompute_mode}"
    if p.sequence_parallel:
        text += " sp"
    if p.distributed_optimizer:
        text += " do"
    return text


def tdp_note(powers) -> None:
    """One line when a predicted board power exceeds the TDP (never capped silently)."""
    over = [p for p in powers if p is not None and p.exceeds_tdp]
    if over:
        worst = max(over, key=lambda p: p.max_power_w / p.tdp_w)
        print(
            f"note: {len(over)} predicted board power(s) exceed the TDP (marked !; worst "
            f"{worst.max_power_w:.0f} W over {worst.tdp_w:.0f} W): a real GPU throttles "
            f"its clocks and runs slower than predicted"
        )


def run(args: argparse.Namespace) -> int:
    from phaze.systems.estimate import accuracy, estimate
    from phaze.systems.runs import Run, read_runs

    rows = read_runs(args.runs)
    estimates = estimate(r for r in rows if isinstance(r, Run))
    errors = [r for r in rows if not isinstance(r, Run)]
    for err in errors:
        print(f"phaze estimate: {err.id}: {err.reason}", file=sys.stderr)
    if args.json:  # one object per input line, in input order
        done = iter(estimates)
        for row in rows:
            if isinstance(row, Run):
                out = next(done).to_dict()
            else:
                out = {"id": row.id, "predicted_s": None, "invalid": row.reason}
            print(json.dumps(out, allow_nan=False))
    else:
        header = ["id", "system", "plan", "predicted s", "measured s", "error"]
        header += [label for _, label in _TERMS] + ["GiB/device", "fits", "W", "J/sample"]
        rows = []
        for e in estimates:
            bd = e.breakdown
            pw = bd.power
            rows.append(
                [
                    e.id,
                    e.run.system.name,
                    _plan(e.run),
                    f"{e.predicted_s:.4g}",
                    "-" if e.run.measured_s is None else f"{e.run.measured_s:.4g}",
                    "-" if e.error is None else f"{100 * e.error:+.1f}%",
                    *(f"{getattr(bd, f):.3g}" for f, _ in _TERMS),
                    f"{bd.memory_bytes / 2**30:.1f}",
                    "yes" if bd.fits else "NO",
                    "-" if pw is None else f"{pw.power_w:.0f}" + ("!" if pw.exceeds_tdp else ""),
                    "-" if pw is None else f"{pw.energy_per_sample_j:.4g}",
                ]
            )
        if rows:
            print(format_table(header, rows))
        tdp_note(e.breakdown.power for e in estimates)
        acc = accuracy(estimates)
        if acc["rows"]:
            print(
                f"{acc['rows']} measured runs: mean |error| {100 * acc['mean_abs_error']:.2f}%, "
                f"max {100 * acc['max_abs_error']:.2f}%"
            )
        print(f"{len(estimates)} runs estimated, {len(errors)} invalid")
    return 2 if errors else 0
