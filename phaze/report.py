"""Reports of a search: summary text, results.csv, best.json, frontier and stage plots.

The engine (:func:`phaze.search`) returns a :class:`~phaze.joint.SearchResult`; this
module turns it into what people read. Nothing here changes a result.

``best.json`` schema (``"schema": "phaze.best/2"``)::

    {
      "schema": "phaze.best/2",
      "strategy": str,
      "cluster": {"devices": int, "link_bandwidth_Bps": float},
      "architecture": {"index": int, "num_tc": int, "tc_width": int, "tc_depth": int,
                       "num_vc": int, "vc_width": int, "glb_bytes": int,
                       "area_um2": float, "area_mm2": float},
      "hbm_bytes": int,
      "objective": str,                       # throughput | throughput-per-watt | ...
      "power_budget_w": float | null,         # average power per device allowed
      "value_samples_per_s": float,          # mean throughput over the workloads
      "objective_value": float,              # mean score: samples/s, or samples/J
      "workloads": [{
          "model": str, "seq_len": int, "global_batch": int, "optimizer": str,
          "training": str,                    # paper | megatron (phaze.training)
          "recompute_mode": str,              # none | full | selective: what recompute means
          "training_options": [str],          # Megatron options on, e.g. distributed_optimizer
          "interleaves": [int],               # candidate model chunks per device searched
          "throughput_samples_per_s": float, "micro_batch_size": int, "recompute": bool,
          "power_w": float,                   # average power per device of the plan
          "energy_per_sample_j": float,       # cluster energy per sample
          "plan": {... Plan.to_dict(): time_per_batch_s, tensor_width, data_parallel,
                   num_stages, stage_layers, devices_per_stage, stage_load_s,
                   stage_memory_bytes, bottleneck_stage, interleave, ...},
          "own_best_samples_per_s": float | null,   # this model's best design alone
          "loss_vs_own_best": float | null,         # 1 - throughput / own best
          "tpuv4_like_samples_per_s": float | null, # tpuv4-like chip, its own best plan
          "speedup_vs_tpuv4_like": float | null,
          "megatron_samples_per_s": float | null,   # fixed (p, t, d) plan on tpuv4-like
          "megatron_plan": [p, t, d],
          "speedup_vs_megatron": float | null
      }],
      "frontier": [{"arch": int, "area_mm2": float, "value_samples_per_s": float}],
                                              # value_samples_per_j for energy objectives
      "counters": {...}
    }

Plots are drawn with matplotlib's Agg renderer on figures made outside pyplot: writing
them changes neither the calling process's matplotlib backend nor its open figures.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from phaze.outdir import OutputDir, atomic_path
from phaze.rows import ROW_FIELDS, ROW_FLOAT_FIELDS
from phaze.units import GIB, MIB, UM2_PER_MM2
from phaze.validate import MAX_DEVICES

if TYPE_CHECKING:
    from phaze.joint import SearchResult

__all__ = [
    "arch_dict",
    "best_payload",
    "format_table",
    "plot_frontier",
    "plot_stages",
    "row_scores",
    "summary_text",
    "write_best_json",
    "write_outputs",
    "write_results_csv",
]

_ARCH_FIELDS = ("num_tc", "tc_width", "tc_depth", "num_vc", "vc_width", "glb_bytes")


def arch_dict(arch_table, index: int) -> dict:
    """One architecture of an ArchTable as a JSON-ready dict."""
    out = {"index": int(index)}
    for f in _ARCH_FIELDS:
        out[f] = int(np.asarray(getattr(arch_table, f))[index])
    area = float(np.asarray(arch_table.area_um2)[index])
    out.update(area_um2=area, area_mm2=area / UM2_PER_MM2)
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
                "micro_batch_size",
                "hbm_gib",
                "recompute",
                *("throughput_samples_per_s" if f == "throughput" else f for f in ROW_FIELDS),
            ]
        )
        for i in range(rows["arch"].shape[0]):
            a = int(rows["arch"][i])
            w.writerow(
                [
                    names[rows["workload"][i]],
                    a,
                    *(int(cols[f][a]) for f in _ARCH_FIELDS),
                    f"{area[a] / UM2_PER_MM2:.6f}",
                    int(rows["micro_batch_size"][i]),
                    f"{rows['hbm_bytes'][i] / GIB:g}",
                    int(rows["recompute"][i]),
                    *(
                        f"{rows[f][i]:.6g}" if f in ROW_FLOAT_FIELDS else int(rows[f][i])
                        for f in ROW_FIELDS
                    ),
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


def row_scores(rows: dict, objective: str, power_budget_w: float | None) -> np.ndarray:
    """:func:`phaze.joint.objective.row_score` of every row of a row table, vectorised."""
    tput = np.asarray(rows["throughput"], dtype=float)
    ok = tput > 0
    if power_budget_w is not None:
        ok &= np.asarray(rows["power_w"]) <= power_budget_w
    if objective == "throughput":
        return np.where(ok, tput, 0.0)
    e = np.asarray(rows["energy_per_sample_j"], dtype=float)
    ok &= (e > 0) & np.isfinite(e)
    with np.errstate(divide="ignore"):
        return np.where(ok, 1.0 / np.where(ok, e, 1.0), 0.0)


def _figure(figsize: tuple[float, float]):
    """A matplotlib figure drawn and saved by the Agg renderer, outside pyplot: the
    calling process's backend and its open figures are left alone."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=120)


def plot_frontier(
    path: str | os.PathLike,
    area_um2: np.ndarray,
    value: np.ndarray,
    frontier: np.ndarray,
    best: int | None,
    title: str,
    *,
    objective: str = "throughput",
    rows: dict | None = None,
    best_points=(),
    power_budget_w: float | None = None,
) -> None:
    """Value against area: every evaluated architecture, the frontier, the best; with
    ``rows``, a second panel of throughput against average power per device of every
    feasible row, the best design's plans and the power budget."""
    if rows is None:
        fig = _figure((7, 4.5))
        ax = fig.subplots()
    else:
        fig = _figure((13, 4.5))
        ax, ax_p = fig.subplots(1, 2)
        ok = rows["throughput"] > 0
        ax_p.scatter(
            rows["power_w"][ok], rows["throughput"][ok], s=6, color="0.6", label="evaluated plans"
        )
        if best_points:
            pw, tp = zip(*best_points)
            ax_p.scatter(pw, tp, marker="*", s=180, color="C3", zorder=5, label="best")
        if power_budget_w is not None:
            ax_p.axvline(power_budget_w, color="k", ls="--", lw=1, label="power budget")
        ax_p.set_xlabel("average power per device (W)")
        ax_p.set_ylabel("throughput (samples/s)")
        ax_p.grid(alpha=0.3)
        ax_p.legend(loc="lower right")
    seen = value > 0
    ax.scatter(
        area_um2[seen] / UM2_PER_MM2, value[seen], s=6, color="0.6", label="evaluated architectures"
    )
    if frontier.size:
        ax.step(
            area_um2[frontier] / UM2_PER_MM2,
            value[frontier],
            where="post",
            color="C0",
            label="frontier",
        )
        ax.scatter(area_um2[frontier] / UM2_PER_MM2, value[frontier], s=14, color="C0")
    if best is not None:
        ax.scatter(
            [area_um2[best] / UM2_PER_MM2],
            [value[best]],
            marker="*",
            s=180,
            color="C3",
            zorder=5,
            label="best",
        )
    ax.set_xlabel("chip area (mm$^2$)")
    ax.set_ylabel("throughput (samples/s)" if objective == "throughput" else "samples per joule")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)


def plot_stages(path: str | os.PathLike, plans: list[tuple[str, object]], hbm_bytes: float) -> None:
    """Per-stage load and memory of the best plan of each workload."""
    fig = _figure((max(6, 5 * len(plans)), 6))
    axes = fig.subplots(2, len(plans), squeeze=False)
    for col, (name, plan) in enumerate(plans):
        loads = [st.load_s * 1e3 for st in plan.stages]
        mem = [st.memory_bytes / GIB for st in plan.stages]
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
        axes[1, col].axhline(hbm_bytes / GIB, color="k", lw=1, ls="--", label="HBM")
        axes[1, col].set_ylabel("memory per device (GiB)")
        axes[1, col].set_xlabel("pipeline stage")
        axes[1, col].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def best_payload(result: SearchResult) -> dict:
    """The ``best.json`` document (schema in :mod:`phaze.report`)."""
    best = result.best
    table = result.arch_table
    area = np.asarray(table.area_um2)
    value_key = "value_samples_per_s" if result.objective == "throughput" else "value_samples_per_j"
    doc = {
        "schema": "phaze.best/2",
        "strategy": result.strategy,
        "cluster": {
            "devices": result.cluster.devices,
            "link_bandwidth_Bps": result.cluster.link_bandwidth_Bps,
            **(
                {}
                if result.cluster.network is None
                else {
                    "network": [
                        {f: getattr(lv, f) for f in type(lv).__slots__}
                        for lv in result.cluster.network.levels
                    ]
                }
            ),
        },
        "architecture": arch_dict(table, best.arch) if best else None,
        "hbm_bytes": best.hbm_bytes if best else None,
        "objective": result.objective,
        "power_budget_w": result.power_budget_w,
        "value_samples_per_s": (
            float(np.mean([p.throughput for p in best.per_workload])) if best else 0.0
        ),
        "objective_value": best.value if best else 0.0,
        "workloads": [],
        "frontier": [
            {
                "arch": int(a),
                "area_mm2": float(area[a]) / UM2_PER_MM2,
                value_key: float(v),
            }
            for a, v in zip(result.frontier, result.frontier_value)
        ],
        "counters": result.counters,
    }
    for w, det in zip(result.workloads, result.details):
        tput = det["throughput"]
        tpu, meg = det["tpuv4_like"], det["megatron"]
        doc["workloads"].append(
            {
                "model": w.name,
                "seq_len": w.seq_len,
                "global_batch": w.global_batch,
                "optimizer": w.optimizer,
                "training": w.training.accounting,
                "recompute_mode": w.training.mode(bool(det["recompute"])),
                "training_options": sorted(w.training.options()),
                "interleaves": list(w.training.interleaves),
                "throughput_samples_per_s": tput,
                "micro_batch_size": det["micro_batch_size"],
                "recompute": det["recompute"],
                "power_w": det["power_w"],
                "energy_per_sample_j": det["energy_per_sample_j"],
                "plan": det["plan"].to_dict() if det["plan"] is not None else None,
                "own_best_samples_per_s": det["own_best"],
                "loss_vs_own_best": 1 - tput / det["own_best"] if det["own_best"] else None,
                "tpuv4_like_samples_per_s": tpu["samples_per_s"] or None,
                "speedup_vs_tpuv4_like": tput / tpu["samples_per_s"]
                if tpu["samples_per_s"]
                else None,
                "megatron_samples_per_s": meg["samples_per_s"] or None,
                "megatron_plan": list(det["megatron_plan"]),
                "speedup_vs_megatron": tput / meg["samples_per_s"]
                if meg["samples_per_s"]
                else None,
            }
        )
    return doc


def write_outputs(result: SearchResult, out: str | os.PathLike | OutputDir) -> dict[str, Path]:
    """results.csv, best.json, frontier.png and stages.png in ``out``, each written to a
    temporary file and renamed over the old one; a stale stages.png is removed when no
    plan exists. ``out`` is locked for the duration unless an open ``OutputDir``."""
    if not isinstance(out, OutputDir):
        with OutputDir(out) as outdir:
            return write_outputs(result, outdir)
    files = {
        "results": out.file("results.csv"),
        "best": out.file("best.json"),
        "frontier": out.file("frontier.png"),
        "stages": out.file("stages.png"),
    }
    with atomic_path(files["results"]) as tmp:
        write_results_csv(tmp, result)
    with atomic_path(files["best"]) as tmp:
        write_best_json(tmp, best_payload(result))
    area = np.asarray(result.arch_table.area_um2, dtype=float)
    rows = result.rows
    n_w = len(result.workloads)
    # value per architecture: mean over workloads of the best row (any setting, any HBM)
    per = np.zeros((n_w, area.shape[0]))
    scores = row_scores(rows, result.objective, result.power_budget_w)
    np.maximum.at(per, (rows["workload"], rows["arch"]), scores)
    value = per.mean(axis=0)
    best = result.best.arch if result.best else None
    names = ", ".join(w.name for w in result.workloads)
    with atomic_path(files["frontier"]) as tmp:
        plot_frontier(
            tmp,
            area,
            value,
            result.frontier,
            best,
            f"{names} on {result.cluster.devices} devices ({result.strategy})",
            objective=result.objective,
            rows=rows,
            best_points=[
                (p.power_w, p.throughput) for p in (result.best.per_workload if result.best else ())
            ],
            power_budget_w=result.power_budget_w,
        )
    plans = [
        (w.name, d["plan"])
        for w, d in zip(result.workloads, result.details)
        if d["plan"] is not None
    ]
    if plans:
        with atomic_path(files["stages"]) as tmp:
            plot_stages(tmp, plans, result.best.hbm_bytes)
    else:  # a stale plot of an earlier run must not pass for this one's
        out.remove("stages.png")
        files.pop("stages")
    return files


def _why(name: str, plan, hbm_bytes: float) -> str:
    """One line on what limits a plan: its bottleneck stage and memory headroom."""
    k = plan.bottleneck_stage
    st = plan.stages[k]
    ids = st.layer_ids
    span = f"layer {ids[0]}" if len(ids) == 1 else f"layers {ids[0]}..{ids[-1]}"
    peak = max(s.memory_bytes for s in plan.stages)
    return (
        f"{name}: bottleneck stage {k} of {plan.num_stages} ({span}, {st.devices} "
        f"device{'s' if st.devices > 1 else ''}, {st.load_s * 1e3:,.1f} ms per micro-batch"
        f"{', recomputing' if st.recompute else ''}"
        f"{f', {plan.interleave} chunks' if plan.interleave > 1 else ''}); "
        f"{plan.micro_batches_per_pipeline} micro-batches per pipeline; peak memory "
        f"{peak / GIB:.3g} of "
        f"{hbm_bytes / GIB:g} GiB per device"
    )


def _fmt(x: float | None) -> str:
    return "-" if not x else f"{x:,.1f}"


def summary_text(
    result: SearchResult,
    out: str | os.PathLike | None = None,
    files: dict[str, Path] | None = None,
) -> str:
    """Human-readable summary: best architecture, plans, throughput, speed-ups, counters,
    and the files written into ``out`` (``files`` as :func:`write_outputs` returns them)."""
    lines = []
    c = result.counters
    if result.best is None:
        need = c.get("memory_devices_needed")
        if need is not None and need > result.cluster.devices:
            lines.append(
                "No design has a plan that fits in memory: the memory bound needs at least "
                + (
                    f"{need:,} devices"
                    if need <= MAX_DEVICES
                    else f"more than {MAX_DEVICES:,} devices (a layer alone is too large)"
                )
                + f" at the largest HBM size, the cluster has {result.cluster.devices:,}; "
                "try larger --hbm or more --devices."
            )
        else:
            lines.append(
                "No design has a plan that fits in memory: try larger --hbm, more "
                "--devices or recomputation (--recompute on)."
            )
    else:
        a = arch_dict(result.arch_table, result.best.arch)
        lines.append(
            f"Best architecture (#{a['index']}): {a['num_tc']} TC of {a['tc_width']}x"
            f"{a['tc_depth']}, {a['num_vc']} VC of {a['vc_width']} lanes, GLB "
            f"{a['glb_bytes'] / MIB:g} MiB, area {a['area_mm2']:.1f} mm^2, HBM "
            f"{result.best.hbm_bytes / GIB:g} GiB"
        )
        if result.objective != "throughput" or result.power_budget_w is not None:
            budget = result.power_budget_w
            lines.append(
                f"Objective: {result.objective}"
                + ("" if budget is None else f"; power budget {budget:g} W per device")
            )
        rows = []
        for w, d in zip(result.workloads, result.details):
            p = d["plan"]
            tpu, meg = d["tpuv4_like"]["samples_per_s"], d["megatron"]["samples_per_s"]
            plan = (
                f"t={p.tensor_width} d={p.data_parallel} stages={p.num_stages} "
                + (f"v={p.interleave} " if p.interleave > 1 else "")
                + f"mbs={d['micro_batch_size']} rc={'on' if d['recompute'] else 'off'}"
                if p is not None
                else "infeasible"
            )
            rows.append(
                [
                    w.name,
                    plan,
                    _fmt(d["throughput"]),
                    _fmt(tpu),
                    f"{d['throughput'] / tpu:.2f}x" if tpu else "-",
                    _fmt(meg),
                    f"{d['throughput'] / meg:.2f}x" if meg else "infeasible",
                    f"{1 - d['throughput'] / d['own_best']:.1%}" if d["own_best"] else "-",
                    f"{d['power_w']:,.1f}" if d["throughput"] else "-",
                    f"{d['energy_per_sample_j']:,.4g}" if d["throughput"] else "-",
                ]
            )
        lines.append(
            format_table(
                [
                    "model",
                    "plan",
                    "samples/s",
                    "tpuv4-like",
                    "speed-up",
                    "megatron",
                    "speed-up",
                    "loss vs own best",
                    "W/device",
                    "J/sample",
                ],
                rows,
            )
        )
        for w, d in zip(result.workloads, result.details):
            if d["plan"] is not None:
                lines.append(_why(w.name, d["plan"], result.best.hbm_bytes))
    lines.append(
        f"{c['architectures']:,} architectures; {c['designs_evaluated']:,} designs "
        f"evaluated exactly, {c['designs_pruned']:,} architectures pruned by bounds; "
        f"{c['exact_rows']:,} placement rows ({c['stored_rows_reused']:,} reused from the "
        f"store); {c['layer_schedules']:,} layer schedules computed "
        f"({c['bound_closed']:,} closed by bounds, "
        f"{c['enumerated']:,} by enumeration, {c['solved']:,} CBC solves), "
        f"{c['segment_hits'] + c['layer_hits']:,} memo hits; {c['wall_s']:.1f} s"
    )
    if out is not None:
        names = [p.name for p in files.values()] if files is not None else None
        if names is None:
            names = ["results.csv", "best.json", "frontier.png"]
            names += ["stages.png"] if result.best is not None else []
        lines.append(f"Results in {out}/: {', '.join(names)}")
    return "\n".join(lines)
