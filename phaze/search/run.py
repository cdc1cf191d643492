"""A search as the command line runs it: progress bar, output files, summary table."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from phaze.report import (
    arch_dict,
    format_table,
    plot_frontier,
    plot_stages,
    write_best_json,
    write_results_csv,
)
from phaze.search.core import SearchResult, search

__all__ = ["best_payload", "run_search", "summary_text", "write_outputs"]


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None, None
    from tqdm import tqdm

    bar = tqdm(
        total=total,
        unit="design",
        desc="search",
        mininterval=0.5,
        bar_format="{desc}: {n_fmt} designs [{elapsed}<{remaining}, {rate_fmt}]"
        " (of at most {total_fmt}; pruning ends it early)",
    )
    return bar, bar.update


def run_search(
    workloads,
    cluster,
    space,
    micro_batches,
    hbm_sizes,
    recompute,
    strategy,
    out: str,
    force: bool = False,
    jobs: int = 1,
    progress: bool = True,
) -> str:
    """Run :func:`~phaze.search.search`, write the files into ``out``, return the summary
    text."""
    total = len(space.enumerate()) * (
        2 if strategy == "exact" else len(hbm_sizes) * len(micro_batches) * len(recompute)
    )
    bar, update = _progress_bar(total, progress)
    try:
        result = search(
            workloads,
            cluster,
            space,
            micro_batches,
            hbm_sizes,
            recompute,
            strategy,
            out=out,
            force=force,
            progress=update,
            jobs=jobs,
        )
    finally:
        if bar is not None:
            bar.close()
    write_outputs(result, out)
    return summary_text(result, out)


def best_payload(result: SearchResult) -> dict:
    """The ``best.json`` document (schema in :mod:`phaze.report`)."""
    best = result.best
    table = result.arch_table
    area = np.asarray(table.area_um2)
    doc = {
        "schema": "phaze.best/1",
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
        "value_samples_per_s": best.value if best else 0.0,
        "workloads": [],
        "frontier": [
            {"arch": int(a), "area_mm2": float(area[a]) / 1e6, "value_samples_per_s": float(v)}
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
                "throughput_samples_per_s": tput,
                "micro_batch": det["micro_batch"],
                "recompute": det["recompute"],
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


def write_outputs(result: SearchResult, out: str | os.PathLike) -> dict[str, Path]:
    """results.csv, best.json, frontier.png and stages.png in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "results": out / "results.csv",
        "best": out / "best.json",
        "frontier": out / "frontier.png",
        "stages": out / "stages.png",
    }
    write_results_csv(files["results"], result)
    write_best_json(files["best"], best_payload(result))
    area = np.asarray(result.arch_table.area_um2, dtype=float)
    rows = result.rows
    n_w = len(result.workloads)
    # value per architecture: mean over workloads of the best row (any setting, any HBM)
    per = np.zeros((n_w, area.shape[0]))
    np.maximum.at(per, (rows["workload"], rows["arch"]), rows["throughput"])
    value = per.mean(axis=0)
    best = result.best.arch if result.best else None
    names = ", ".join(w.name for w in result.workloads)
    plot_frontier(
        files["frontier"],
        area,
        value,
        result.frontier,
        best,
        f"{names} on {result.cluster.devices} devices ({result.strategy})",
    )
    plans = [
        (w.name, d["plan"])
        for w, d in zip(result.workloads, result.details)
        if d["plan"] is not None
    ]
    if plans:
        plot_stages(files["stages"], plans, result.best.hbm_bytes)
    else:
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
        f"{', recomputing' if st.recompute else ''}); {plan.micro_batches_per_pipeline} "
        f"micro-batches per pipeline; peak memory {peak / 2**30:.3g} of "
        f"{hbm_bytes / 2**30:g} GiB per device"
    )


def _fmt(x: float | None) -> str:
    return "-" if not x else f"{x:,.1f}"


def summary_text(result: SearchResult, out: str | os.PathLike | None = None) -> str:
    """Human-readable summary: best architecture, plans, throughput, speed-ups, counters."""
    lines = []
    c = result.counters
    if result.best is None:
        lines.append(
            "No design has a plan that fits in memory: try larger --hbm, more "
            "--devices or recomputation (--recompute on)."
        )
    else:
        a = arch_dict(result.arch_table, result.best.arch)
        lines.append(
            f"Best architecture (#{a['index']}): {a['num_tc']} TC of {a['tc_width']}x"
            f"{a['tc_depth']}, {a['num_vc']} VC of {a['vc_width']} lanes, GLB "
            f"{a['glb_bytes'] / 2**20:g} MiB, area {a['area_mm2']:.1f} mm^2, HBM "
            f"{result.best.hbm_bytes / 2**30:g} GiB"
        )
        rows = []
        for w, d in zip(result.workloads, result.details):
            p = d["plan"]
            tpu, meg = d["tpuv4_like"]["samples_per_s"], d["megatron"]["samples_per_s"]
            plan = (
                f"t={p.tensor_width} d={p.data_parallel} stages={p.num_stages} "
                f"mbs={d['micro_batch']} rc={'on' if d['recompute'] else 'off'}"
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
        f"store); layer schedules: {c['bound_closed']:,} closed by bounds, "
        f"{c['enumerated']:,} by enumeration, {c['solved']:,} CBC solves, "
        f"{c['segment_hits'] + c['layer_hits']:,} memo hits; {c['wall_s']:.1f} s"
    )
    if out is not None:
        lines.append(f"Results in {out}/: results.csv, best.json, frontier.png, stages.png")
    return "\n".join(lines)
