"""``phaze arch``: area and peak figures of an accelerator preset or explicit dimensions."""

from __future__ import annotations

import argparse
import json

from phaze._cli.ranges import GLB_MIB, float_in, int_in
from phaze.errors import ConfigError
from phaze.hardware import ACCELERATOR_PRESETS, MIB, Accelerator
from phaze.hardware.accelerator import INT_FIELD_LIMITS
from phaze.hardware.area import TC_MAC_AREA_UM2, VC_LANE_AREA_UM2, sram_area_um2
from phaze.units import GIB

HELP = "area and peak figures of an accelerator preset or of explicit dimensions"

_DIMS = (
    ("--num-tc", "num_tc", "tensor cores"),
    ("--tc-width", "tc_width", "tensor-core array width"),
    ("--tc-depth", "tc_depth", "tensor-core array depth"),
    ("--num-vc", "num_vc", "vector cores"),
    ("--vc-width", "vc_width", "vector-core lanes"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        default="phaze",
        help=f"starting point: {', '.join(ACCELERATOR_PRESETS)} (default phaze)",
    )
    for flag, field, what in _DIMS:
        parser.add_argument(
            flag,
            type=int_in(1, INT_FIELD_LIMITS[field]),
            default=None,
            help=f"{what} (overrides preset)",
        )
    parser.add_argument(
        "--glb-mib",
        type=float_in(*GLB_MIB, "MiB"),
        default=None,
        help="global buffer in MiB (overrides preset)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def figures(acc: Accelerator) -> dict:
    """Area breakdown (um^2), peak figures and memory of ``acc`` as a JSON-ready dict."""
    parts = {
        "tc_macs_um2": acc.num_tc * acc.tc_width * acc.tc_depth * TC_MAC_AREA_UM2,
        "tc_sram_um2": acc.num_tc * sram_area_um2(acc.tc_sram_bytes),
        "vc_lanes_um2": acc.num_vc * acc.vc_width * VC_LANE_AREA_UM2,
        "vc_sram_um2": acc.num_vc * sram_area_um2(acc.vc_sram_bytes),
        "glb_um2": sram_area_um2(acc.glb_bytes),
    }
    return {
        "accelerator": {f: getattr(acc, f) for f in Accelerator.__dataclass_fields__},
        "area_um2": acc.area_um2,
        "area_mm2": acc.area_um2 / 1e6,
        "area_breakdown_um2": {k: float(v) for k, v in parts.items()},
        "peak_tflops": acc.peak_flops / 1e12,
        "peak_macs_per_cycle": acc.peak_macs_per_cycle,
        "vc_lanes": acc.vc_lanes,
        "hbm_gib": acc.hbm_bytes / GIB,
        "hbm_bandwidth_GBps": acc.hbm_bandwidth_Bps / 1e9,
        "hbm_words_per_cycle": acc.hbm_words_per_cycle,
    }


def run(args: argparse.Namespace) -> int:
    acc = Accelerator.preset(args.preset)
    changes = {
        field: getattr(args, field) for _, field, _ in _DIMS if getattr(args, field) is not None
    }
    if args.glb_mib is not None:
        glb = args.glb_mib * MIB
        if not glb >= 1 or glb != int(glb):
            raise ConfigError(f"--glb-mib={args.glb_mib} must be > 0 and a whole number of bytes")
        changes["glb_bytes"] = int(glb)
    acc = acc.replace(**changes)
    out = figures(acc)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    a = out["accelerator"]
    bw = (
        "per core" if acc.sram_pe_per_core else "chip-wide",
        "per core" if acc.glb_sram_per_core else "chip-wide",
    )
    lines = [
        f"accelerator     {a['num_tc']} TC of {a['tc_width']}x{a['tc_depth']}, "
        f"{a['num_vc']} VC of {a['vc_width']} lanes, GLB {a['glb_bytes'] / MIB:g} MiB",
        f"core SRAM       {a['tc_sram_bytes']} B per TC operand buffer, "
        f"{a['vc_sram_bytes']} B per VC",
        f"area            {out['area_mm2']:.3f} mm^2",
    ]
    for k, v in out["area_breakdown_um2"].items():
        lines.append(f"  {k[:-4]:<13} {v / 1e6:.3f} mm^2")
    lines += [
        f"peak            {out['peak_tflops']:.1f} TFLOP/s at {acc.frequency_hz / 1e9:g} GHz "
        f"({out['peak_macs_per_cycle']} MACs/cycle), {out['vc_lanes']} vector lanes",
        f"bandwidth       SRAM->PE {acc.sram_pe_words_per_cycle:g} words/cycle ({bw[0]}), "
        f"GLB->SRAM {acc.glb_sram_words_per_cycle:g} ({bw[1]}), "
        f"HBM {out['hbm_bandwidth_GBps']:g} GB/s ({out['hbm_words_per_cycle']:g} words/cycle)",
        f"HBM             {out['hbm_gib']:g} GiB, {acc.word_bytes} B/word, "
        f"{acc.register_words} registers/PE",
    ]
    print("\n".join(lines))
    return 0
