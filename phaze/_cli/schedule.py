"""``phaze schedule``: one layer's operator schedule on one architecture."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

from phaze._cli import ranges as R
from phaze._cli.ranges import float_in, int_in
from phaze.errors import ConfigError
from phaze.hardware.accelerator import INT_FIELD_LIMITS
from phaze.jsonfile import load_json
from phaze.models import build_graph, preset
from phaze.opcodes import OpKind

HELP = "show one layer's least-latency operator schedule on one architecture"

_ROLES = ("embedding", "block", "head")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="gpt3-175b", help="preset name (default gpt3-175b)")
    R.add_graph_shape_arguments(
        parser,
        seq_help="sequence length (default: the model's own)",
        tensor_width_help="tensor-parallel width (default 1)",
    )
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
    parser.add_argument(
        "--arch",
        default="tpuv4-like",
        help="accelerator preset to start from: tpuv4-like or phaze (default tpuv4-like)",
    )
    for flag, what, high in (
        ("--num-tc", "tensor cores", INT_FIELD_LIMITS["num_tc"]),
        ("--tc-width", "tensor-core width", INT_FIELD_LIMITS["tc_width"]),
        ("--tc-depth", "tensor-core depth", INT_FIELD_LIMITS["tc_depth"]),
        ("--num-vc", "vector cores", INT_FIELD_LIMITS["num_vc"]),
        ("--vc-width", "vector-core lanes", INT_FIELD_LIMITS["vc_width"]),
        ("--glb-mib", "global buffer, MiB", int(R.GLB_MIB[1])),
    ):
        parser.add_argument(
            flag, type=int_in(1, high), default=None, help=f"{what} (default: the preset's)"
        )
    parser.add_argument(
        "--latencies",
        metavar="FILE",
        default=None,
        help='JSON file {"lat_one": [...], "lat_all": [...]}: seconds per operator of the '
        "layer in the chosen pass (one core / all cores), instead of the cost model",
    )
    parser.add_argument(
        "--method",
        choices=("auto", "ilp", "enumerate"),
        default="auto",
        help="solver (default auto: bounds, decomposition, enumeration, CBC)",
    )
    parser.add_argument(
        "--time-limit",
        type=float_in(*R.TIME_LIMIT_S, "seconds"),
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
    data = load_json(path, "--latencies")
    expected = (
        f'--latencies {path!r}: expected {{"lat_one": [...], "lat_all": [...]}}'
        f" with {n} seconds >= 0 each"
    )
    if not isinstance(data, dict) or not {"lat_one", "lat_all"} <= set(data):
        raise ConfigError(expected)
    out = []
    for key in ("lat_one", "lat_all"):
        values = data[key]
        ok = isinstance(values, list) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < math.inf
            for v in values
        )
        if not ok:
            raise ConfigError(f"{expected}; {key} is not a list of such numbers")
        if len(values) != n:
            raise ConfigError(
                f"--latencies {path!r}: {key} has shape ({len(values)},) but the layer has "
                f"{n} operators"
            )
        out.append(np.asarray(values, dtype=float))
    return out[0], out[1]


def _accelerator(args):
    from phaze.hardware import MIB, Accelerator

    acc = Accelerator.preset(args.arch)
    names = ("num_tc", "tc_width", "tc_depth", "num_vc", "vc_width")
    changes = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    if args.glb_mib is not None:
        changes["glb_bytes"] = args.glb_mib * MIB
    return acc.replace(**changes) if changes else acc


def run(args: argparse.Namespace) -> int:
    from phaze.models import unique_ops
    from phaze.schedule import ScheduleCache, schedule_layer

    spec = preset(args.model)
    seq = args.seq if args.seq is not None else spec.default_seq
    g = build_graph(spec, seq, args.mbs, args.tensor_width)
    p, layer = _layer(g, args.layer)
    ops = layer.ops
    acc = _accelerator(args)
    pas = 0 if args.pass_ == "fwd" else 1
    if args.latencies is not None:
        one, alll = _latencies(args.latencies, ops.n_ops)
    else:
        from phaze.cost import latency_table
        from phaze.hardware import ArchTable

        table, index = unique_ops(g)
        lat = latency_table(table, ArchTable.from_accelerators([acc])).latency_s
        r = index.rows(0, p)
        one, alll = lat[r, 0, 0, pas], lat[r, 0, 1, pas]
    cache = ScheduleCache()
    s = schedule_layer(
        ops,
        one,
        alll,
        ops.kinds,
        acc.num_tc,
        acc.num_vc,
        reverse=bool(pas),
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
        "tensor_width": args.tensor_width,
        "layer": layer.name,
        "position": p,
        "pass": args.pass_,
        "num_tc": acc.num_tc,
        "num_vc": acc.num_vc,
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
        f"{args.model} t={args.tensor_width} {layer.name} ({args.pass_}) on {acc.num_tc} TC / "
        f"{acc.num_vc} VC: makespan {s.makespan_s * 1e6:.3f} us "
        f"({'optimal' if s.optimal else 'not proven optimal'}, {s.method}); "
        f"TC util avg {s.tc_util_avg:.2f} peak {s.tc_util_peak:.2f}, "
        f"VC util avg {s.vc_util_avg:.2f} peak {s.vc_util_peak:.2f}"
    )
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return 0
