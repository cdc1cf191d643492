"""``phaze plan``: the fastest training plans for a model on a fixed real system."""

from __future__ import annotations

import argparse
import csv
import json
import os

from phaze._cli.estimate import tdp_note
from phaze.errors import ConfigError
from phaze.report import format_table

HELP = (
    "fastest Megatron plans (tp, pp, dp, micro-batch, interleave, recompute, sequence "
    "parallelism, distributed optimizer) for a model on a real system, within device memory; "
    "exit status 1 when no plan fits"
)


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers"
        ) from None
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--system", required=True, help="a system name or a system .json file")
    parser.add_argument("--devices", type=int, required=True, help="devices to use (all of them)")
    parser.add_argument(
        "--model", required=True, help="a model preset name or a Hugging Face config.json path"
    )
    parser.add_argument(
        "--batch", type=int, default=1536, help="global batch in samples (default 1536)"
    )
    parser.add_argument("--seq", type=int, default=None, help="sequence length (default: model's)")
    parser.add_argument(
        "--micro-batch-sizes",
        type=_ints,
        default=(1, 2, 4, 8, 16),
        metavar="LIST",
        help="candidate micro-batch sizes (default 1,2,4,8,16)",
    )
    parser.add_argument(
        "--max-tensor-width",
        "--max-tp",
        dest="max_tensor_width",
        type=int,
        default=None,
        help="largest tensor width",
    )
    parser.add_argument("--top", type=int, default=5, help="plans to print (default 5)")
    parser.add_argument(
        "--out", metavar="PATH", default=None, help="write the top plans to a .json or .csv file"
    )


def _spec(name: str):
    from phaze.models import TransformerSpec, preset

    if name.endswith(".json") and os.path.exists(name):
        return TransformerSpec.from_hf_config(name)
    return preset(name)


def run(args: argparse.Namespace) -> int:
    from phaze.systems.plan import best_plans
    from phaze.systems.presets import load_system

    if args.out is not None and not args.out.endswith((".json", ".csv")):
        raise ConfigError(f"--out={args.out!r} must end in .json or .csv")
    system = load_system(args.system)
    spec = _spec(args.model)
    results, priced = best_plans(
        system,
        spec,
        args.devices,
        args.batch,
        args.seq,
        top=args.top,
        micro_batch_sizes=args.micro_batch_sizes,
        max_tensor_width=args.max_tensor_width,
    )
    seq = spec.default_seq if args.seq is None else args.seq
    print(
        f"{spec.name} (seq {seq}, global batch {args.batch}) on {args.devices} x "
        f"{system.chip.name} ({system.name}): {priced} plans fit in "
        f"{system.chip.hbm_bytes / 1e9:g} GB"
    )
    if not results:
        print("no plan fits in device memory")
        return 1
    header = ["#", "t", "p", "d", "b", "v", "recompute", "sp", "dist opt", "iter s"]
    header += ["samples/s", "fwd", "bwd", "recomp", "tp comm", "bubble", "p2p", "dp comm"]
    header += ["optim", "GiB/device", "W", "J/sample"]
    rows = []
    for i, r in enumerate(results, 1):
        p, bd = r.plan, r.breakdown
        pw = bd.power
        rows.append(
            [
                str(i),
                str(p.tensor_width),
                str(p.num_stages),
                str(p.data_parallel),
                str(p.micro_batch_size),
                str(p.interleave),
                p.recompute_mode,
                "yes" if p.sequence_parallel else "no",
                "yes" if p.distributed_optimizer else "no",
                f"{r.iteration_s:.4g}",
                f"{r.samples_per_s:.4g}",
                *(
                    f"{getattr(bd, f):.3g}"
                    for f in (
                        "forward_s",
                        "backward_s",
                        "recompute_s",
                        "tp_comm_s",
                        "bubble_s",
                        "p2p_s",
                        "dp_comm_s",
                        "optimizer_s",
                    )
                ),
                f"{bd.memory_bytes / 2**30:.1f}",
                "-" if pw is None else f"{pw.power_w:.0f}" + ("!" if pw.exceeds_tdp else ""),
                "-" if pw is None else f"{pw.energy_per_sample_j:.4g}",
            ]
        )
    print(format_table(header, rows))
    tdp_note(r.breakdown.power for r in results)
    if args.out is not None:
        dicts = [r.to_dict() for r in results]
        with open(args.out, "w", encoding="utf-8", newline="") as fh:
            if args.out.endswith(".json"):
                json.dump({"system": system.name, "model": spec.name, "plans": dicts}, fh, indent=1)
            else:
                writer = csv.DictWriter(fh, fieldnames=list(dicts[0]))
                writer.writeheader()
                writer.writerows(dicts)
        print(f"wrote {len(dicts)} plans to {args.out}")
    return 0
