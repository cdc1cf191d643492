"""Reports of a search: summary table, results.csv, best.json, frontier and stage plots.

``best.json`` schema (``"schema": "phaze.best/1"``)::

    {
      "schema": "phaze.best/1",
      "strategy": str,
      "cluster": {"devices": int, "link_bandwidth_Bps": float},
      "architecture": {"index": int, "num_tc": int, "tc_width": int, "tc_depth": int,
                       "num_vc": int, "vc_width": int, "glb_bytes": int,
                       "area_um2": float, "area_mm2": float},
      "hbm_bytes": int,
      "value_samples_per_s": float,          # mean throughput over the workloads
      "workloads": [{
          "model": str, "seq_len": int, "global_batch": int, "optimizer": str,
          "throughput_samples_per_s": float, "micro_batch": int, "recompute": bool,
          "plan": {... Plan.to_dict(): time_per_batch, tensor_parallel, data_parallel,
                   stages, stage_layers, devices_per_stage, stage_load_s,
                   stage_memory_bytes, bottleneck_stage, ...},
          "own_best_samples_per_s": float | null,   # this model's best design alone
          "loss_vs_own_best": float | null,         # 1 - throughput / own best
          "tpuv4_like_samples_per_s": float | null, # tpuv4-like chip, its own best plan
          "speedup_vs_tpuv4_like": float | null,
          "megatron_samples_per_s": float | null,   # fixed (p, t, d) plan on tpuv4-like
          "megatron_plan": [p, t, d],
          "speedup_vs_megatron": float | null
      }],
      "frontier": [{"arch": int, "area_mm2": float, "value_samples_per_s": float}],
      "counters": {...}
    }

Plots use matplotlib with the non-interactive Agg backend.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np

__all__ = ["format_table", "plot_frontier", "plot_stages", "write_best_json", "write_results_csv"]

_ARCH_FIELDS = ("num_tc", "tc_width", "tc_depth", "num_vc", "vc_width", "glb_bytes")


def arch_dict(arch_table, index: int) -> dict:
    """One architecture of an ArchTable as a JSON-ready dict."""
    out = {"index": int(index)}
    for f in _ARCH_FIELDS:
        out[f] = int(np.asarray(getattr(arch_table, f))[index])
    area = float(np.asarray(arch_table.area_um2)[index])
    out.update(area_um2=area, area_mm2=area / 1e6)
    return out


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Plain-text table, first column left-aligned, others right-aligned."""
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(
            str(h).ljust(w) if i == 0 else str(h).rjust(w)
            for i, (h, w) in enumerate(zip(header, widths))
        )
    ]
    for r in rows:
        lines.append(
            "  ".join(
                str(c).ljust(w) if i == 0 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(r, widths))
            )
        )
    return "\n".join(lines)


def write_results_csv(path: str | os.PathLike, result) -> int:
    """Every evaluated row with its architecture; returns the number of rows."""
    rows, table = result.rows, result.arch_table
    names = [w.name for w in result.workloads]
    cols = {f: np.asarray(getattr(table, f)) for f in _ARCH_FIELDS}
    area = np.asarray(table.area_um2)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "model",
                "arch",
                *_ARCH_FIELDS,
                "area_mm2",
                "micro_batch",
                "hbm_gib",
                "recompute",
                "throughput_samples_per_s",
                "time_per_batch_s",
                "tp",
                "dp",
                "stages",
                "bottleneck_stage",
            ]
        )
        for i in range(rows["arch"].shape[0]):
            a = int(rows["arch"][i])
            w.writerow(
                [
                    names[rows["workload"][i]],
                    a,
                    *(int(cols[f][a]) for f in _ARCH_FIELDS),
                    f"{area[a] / 1e6:.6f}",
                    int(rows["mbs"][i]),
                    f"{rows['hbm_bytes'][i] / 2**30:g}",
                    int(rows["recompute"][i]),
                    f"{rows['throughput'][i]:.6g}",
                    f"{rows['time_per_batch_s'][i]:.6g}",
                    int(rows["tp"][i]),
                    int(rows["dp"][i]),
                    int(rows["stages"][i]),
                    int(rows["bottleneck"][i]),
                ]
            )
    return int(rows["arch"].shape[0])


def write_best_json(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` (see the module docstring) with NaN/inf as null."""
    Path(path).write_text(json.dumps(_finite(payload), indent=1) + "\n", encoding="utf-8")


def _finite(x):
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_frontier(
    path: str | os.PathLike,
    area_um2: np.ndarray,
    value: np.ndarray,
    frontier: np.ndarray,
    best: int | None,
    title: str,
) -> None:
    """Throughput against area: every evaluated architecture, the frontier, the best."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    seen = value > 0
    ax.scatter(area_um2[seen] / 1e6, value[seen], s=6, color="0.6", label="evaluated architectures")
    if frontier.size:
        ax.step(
            area_um2[frontier] / 1e6, value[frontier], where="post", color="C0", label="frontier"
        )
        ax.scatter(area_um2[frontier] / 1e6, value[frontier], s=14, color="C0")
    if best is not None:
        ax.scatter(
            [area_um2[best] / 1e6],
            [value[best]],
            marker="*",
            s=180,
            color="C3",
            zorder=5,
            label="best",
        )
    ax.set_xlabel("chip area (mm$^2$)")
    ax.set_ylabel("throughput (samples/s)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_stages(path: str | os.PathLike, plans: list[tuple[str, object]], hbm_bytes: float) -> None:
    """Per-stage load and memory of the best plan of each workload."""
    plt = _pyplot()
    fig, axes = plt.subplots(
        2, len(plans), figsize=(max(6, 5 * len(plans)), 6), dpi=120, squeeze=False
    )
    for col, (name, plan) in enumerate(plans):
        loads = [st.load_s * 1e3 for st in plan.stages]
        mem = [st.memory_bytes / 2**30 for st in plan.stages]
        x = np.arange(len(loads))
        colors = ["C3" if i == plan.bottleneck_stage else "C0" for i in x]
        axes[0, col].bar(x, loads, color=colors)
        axes[0, col].set_ylabel("load per micro-batch (ms)")
        axes[0, col].set_title(
            f"{name}: t={plan.tensor_width}, d={plan.data_parallel}, "
            f"{plan.num_stages} stages (red: bottleneck)",
            fontsize=9,
        )
        axes[1, col].bar(x, mem, color="C2")
        axes[1, col].axhline(hbm_bytes / 2**30, color="k", lw=1, ls="--", label="HBM")
        axes[1, col].set_ylabel("memory per device (GiB)")
        axes[1, col].set_xlabel("pipeline stage")
        axes[1, col].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
