"""``phaze models``: list the model presets with their sizes."""

from __future__ import annotations

import argparse

from phaze._cli import ranges as R
from phaze.errors import ConfigError
from phaze.models import build_graph, preset, preset_names
from phaze.report import format_table

HELP = "list the model presets: parameters, FLOPs per token, activation bytes per block"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    R.add_graph_shape_arguments(
        parser,
        seq_help="sequence length (default: each model's own, see 'seq')",
        tensor_width_help="tensor-parallel width for the per-device figures (default 1)",
    )


def run(args: argparse.Namespace) -> int:
    header = (
        "model",
        "layers",
        "hidden",
        "heads",
        "params",
        "seq",
        "fwd GFLOP/token",
        "train GFLOP/token",
        "act MiB/block",
    )
    for flag, value in (
        ("--seq", args.seq),
        ("--mbs", args.mbs),
        ("--tensor-width", args.tensor_width),
    ):
        if value is not None and value < 1:
            raise ConfigError(f"{flag}={value} must be >= 1")
    rows, skipped = [], []
    for name in preset_names():
        spec = preset(name)
        seq = args.seq if args.seq is not None else spec.default_seq
        try:
            g = build_graph(spec, seq, args.mbs, args.tensor_width)
        except ConfigError as exc:  # t or seq not valid for this model: say so, go on
            skipped.append(f"{name}: {exc}")
            continue
        tokens = seq * args.mbs
        fwd_flops = 2 * sum(layer.fwd_gemm_macs for layer in g.layers) * args.tensor_width / tokens
        rows.append(
            (
                name,
                str(spec.layers),
                str(spec.hidden),
                f"{spec.heads}/{spec.kv_heads}" if spec.kv_heads != spec.heads else str(spec.heads),
                f"{spec.param_count() / 1e9:.3f}B",
                str(seq),
                f"{fwd_flops / 1e9:.2f}",
                f"{3 * fwd_flops / 1e9:.2f}",
                f"{g.block.activation_bytes / 2**20:.1f}",
            )
        )
    if not rows:
        raise ConfigError("no preset accepts these settings: " + "; ".join(skipped))
    print(format_table(list(header), [list(r) for r in rows]))
    for line in skipped:
        print(f"skipped {line}")
    print(
        f"(GEMM FLOPs only; train = fwd + 2x bwd; activation bytes of one block at "
        f"mbs={args.mbs}, t={args.tensor_width}, 2 bytes/element, no recomputation)"
    )
    return 0
