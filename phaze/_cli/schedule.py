"""``phaze schedule``: one layer's operator schedule on one architecture."""

from __future__ import annotations

import argparse
import json

import numpy as np

from phaze.errors import ConfigError
from phaze.models import build_graph, preset
from phaze.opcodes import OpKind

HELP = "show one layer's least-latency operator schedule on one architecture"

_ROLES = ("embedding", "block", "head")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="gpt3-175b", help="preset name (default gpt3-175b)")
    parser.add_argument(
        "--seq", type=int, default=None, help="sequence length (default: the model's own)"
    )
    parser.add_argument("--mbs", type=int, default=1, help="micro-batch size (default 1)")
    parser.add_argument("--tp", type=int, default=1, help="tensor-parallel width (default 1)")
    parser.add_argument(
        "--layer",
        default="block",
        help="embedding, block (the first block), head, or a layer position (default block)",
    )
    parser.add_argument(
        "--pass",
        dest="pass_",
        choices=("fwd", "bwd"),
        default="fwd",
        help="forward, or backward on the reversed DAG (default fwd)",
    )
    parser.add_argument("--num-tc", type=int, default=8, help="tensor cores (default 8)")
    parser.add_argument("--num-vc", type=int, default=2, help="vector cores (default 2)")
    parser.add_argument(
        "--latencies",
        metavar="FILE",
        required=True,
        help='JSON file {"lat_one": [...], "lat_all": [...]}: seconds per '
        "operator of the layer in the chosen pass (one core / all cores)",
    )
    parser.add_argument(
        "--method",
        choices=("auto", "ilp", "enumerate"),
        default="auto",
        help="solver (default auto: bounds, decomposition, enumeration, CBC)",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=10.0,
        help="CBC time limit per solve, seconds (default 10)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _layer(g, which: str):
    for p, layer in enumerate(g.layers):
        if layer.role == which:
            return p, layer
    try:
        p = int(which)
    except ValueError:
        raise ConfigError(
            f"--layer={which!r} is invalid; allowed: {_ROLES} or a position "
            f"0 .. {len(g.layers) - 1}"
        ) from None
    if not 0 <= p < len(g.layers):
        raise ConfigError(f"--layer={p} is out of range; allowed: 0 .. {len(g.layers) - 1}")
    return p, g.layers[p]


def _latencies(path: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    with open(path, encoding="utf-8") as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--latencies {path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or not {"lat_one", "lat_all"} <= set(data):
        raise ConfigError(
            f'--latencies {path}: expected {{"lat_one": [...], "lat_all": [...]}}'
            f" with {n} seconds each"
        )
    return np.asarray(data["lat_one"], dtype=float), np.asarray(data["lat_all"], dtype=float)


def run(args: argparse.Namespace) -> int:
    from phaze.schedule import ScheduleCache, schedule_layer

    spec = preset(args.model)
    g = build_graph(spec, args.seq or spec.default_seq, args.mbs, args.tp)
    p, layer = _layer(g, args.layer)
    ops = layer.ops
    one, alll = _latencies(args.latencies, ops.n_ops)
    cache = ScheduleCache()
    s = schedule_layer(
        ops,
        one,
        alll,
        ops.kinds,
        args.num_tc,
        args.num_vc,
        reverse=args.pass_ == "bwd",
        method=args.method,
        time_limit_s=args.time_limit,
        cache=cache,
    )
    rows = []
    for i, op in enumerate(ops.ops):
        kind = OpKind(int(ops.kinds[i]))
        if s.intra_op[i]:
            where = "all cores"
        elif kind == OpKind.COMM:
            where = "link"
        else:
            parts = [
                f"tc{s.tc_core[i]}" if s.tc_core[i] >= 0 else "",
                f"vc{s.vc_core[i]}" if s.vc_core[i] >= 0 else "",
            ]
            where = "+".join(x for x in parts if x)
        rows.append(
            {
                "op": i,
                "name": op.name,
                "kind": kind.name,
                "where": where,
                "start_s": float(s.start_s[i]),
                "finish_s": float(s.finish_s[i]),
            }
        )
    summary = {
        "model": args.model,
        "tp": args.tp,
        "layer": layer.name,
        "position": p,
        "pass": args.pass_,
        "num_tc": args.num_tc,
        "num_vc": args.num_vc,
        "makespan_s": s.makespan_s,
        "lower_bound_s": s.lower_bound_s,
        "optimal": s.optimal,
        "method": s.method,
        "tc_util_avg": s.tc_util_avg,
        "tc_util_peak": s.tc_util_peak,
        "vc_util_avg": s.vc_util_avg,
        "vc_util_peak": s.vc_util_peak,
        "cbc_solves": cache.solved,
    }
    if args.json:
        print(json.dumps({**summary, "ops": rows}, indent=2))
        return 0
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["start_s"], i))
    header = ("op", "name", "kind", "where", "start_us", "finish_us")
    table = [
        (
            str(i),
            rows[i]["name"],
            rows[i]["kind"],
            rows[i]["where"],
            f"{rows[i]['start_s'] * 1e6:.3f}",
            f"{rows[i]['finish_s'] * 1e6:.3f}",
        )
        for i in order
    ]
    widths = [max(len(r[c]) for r in (header, *table)) for c in range(len(header))]
    print(
        f"{args.model} t={args.tp} {layer.name} ({args.pass_}) on {args.num_tc} TC / "
        f"{args.num_vc} VC: makespan {s.makespan_s * 1e6:.3f} us "
        f"({'optimal' if s.optimal else 'not proven optimal'}, {s.method}); "
        f"TC util avg {s.tc_util_avg:.2f} peak {s.tc_util_peak:.2f}, "
        f"VC util avg {s.vc_util_avg:.2f} peak {s.vc_util_peak:.2f}"
    )
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return 0
