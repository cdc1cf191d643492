"""Reports of a sweep: ``sweep.csv``, two plots and the summary table.

* ``sweep.csv`` -- one row per cell, the columns of :data:`phaze.sweeps.cell.RECORD_FIELDS`
  (settings, best architecture, throughput, speed-ups against the baselines);
* ``throughput_vs_area.png`` -- best throughput against area budget, one panel per model,
  one line per combination of the other settings that vary across the sweep;
* ``best_arch_heatmap.png`` -- the best architecture's tensor cores, tensor-core array,
  vector cores and global buffer for every cell: rows are the combinations of the
  settings other than the area budget, columns the area budgets.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from phaze.report import _figure, format_table
from phaze.sweeps.cell import RECORD_FIELDS

__all__ = ["plot_best_arch_heatmap", "plot_throughput_vs_area", "summary_text", "write_csv"]

#: Settings that may vary across a sweep, in the order they appear in labels.
_SETTINGS = (
    "model",
    "devices",
    "seq_len",
    "global_batch",
    "optimizer",
    "training",
    "network",
    "link_gibps",
    "hbm_gib",
    "micro_batch_sizes",
    "recompute",
    "area_budget_mm2",
    "area_band",
    "strategy",
)


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _field(rec: dict, key: str):
    """A record's field; a record stored before cells had a training accounting was the
    paper's."""
    return rec.get(key, "paper") if key == "training" else rec.get(key)


def write_csv(path: str | os.PathLike, records: list[dict]) -> int:
    """Write ``sweep.csv`` (one row per record); returns the number of rows."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(RECORD_FIELDS)
        for rec in records:
            w.writerow([_cell_text(_field(rec, f)) for f in RECORD_FIELDS])
    return len(records)


def _varying(records: list[dict], skip: tuple[str, ...]) -> list[str]:
    return [k for k in _SETTINGS if k not in skip and len({str(_field(r, k)) for r in records}) > 1]


def _group_label(rec: dict, keys: list[str]) -> str:
    return (
        ", ".join(f"{k}={_field(rec, k)}" if k != "model" else str(rec[k]) for k in keys) or "all"
    )


def plot_throughput_vs_area(path: str | os.PathLike, records: list[dict]) -> None:
    """Best throughput against area budget, one panel per model."""
    models = list(dict.fromkeys(r["model"] for r in records))
    fig = _figure((max(6, 4.5 * len(models)), 4))
    axes = fig.subplots(1, len(models), squeeze=False)
    others = _varying(records, ("model", "area_budget_mm2"))
    for ax, model in zip(axes[0], models):
        mine = [r for r in records if r["model"] == model]
        groups: dict[str, list[dict]] = {}
        for r in mine:
            groups.setdefault(_group_label(r, others), []).append(r)
        for label, rs in groups.items():
            rs = sorted(rs, key=lambda r: r["area_budget_mm2"])
            x = [r["area_budget_mm2"] for r in rs]
            y = [r["throughput_samples_per_s"] or 0.0 for r in rs]
            ax.plot(x, y, marker="o", label=label if others else None)
        ax.set_title(model)
        ax.set_xlabel("area budget (mm$^2$)")
        ax.set_ylabel("best throughput (samples/s)")
        ax.grid(alpha=0.3)
        if others:
            ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)


def _heat_grid(records: list[dict]):
    rows_keys = _varying(records, ("area_budget_mm2",))
    row_labels = list(dict.fromkeys(_group_label(r, rows_keys) for r in records))
    budgets = sorted({r["area_budget_mm2"] for r in records})
    index = {}
    for r in records:
        index[_group_label(r, rows_keys), r["area_budget_mm2"]] = r
    return row_labels, budgets, index


def plot_best_arch_heatmap(path: str | os.PathLike, records: list[dict]) -> None:
    """The best architecture's key dimensions across the grid (log2 colour scale)."""
    row_labels, budgets, index = _heat_grid(records)
    panels = (
        ("tensor cores", lambda r: r["num_tc"], lambda r: f"{r['num_tc']}"),
        (
            "tensor-core array (MACs)",
            lambda r: r["tc_width"] * r["tc_depth"],
            lambda r: f"{r['tc_width']}x{r['tc_depth']}",
        ),
        ("vector cores", lambda r: r["num_vc"], lambda r: f"{r['num_vc']}"),
        ("global buffer (MiB)", lambda r: r["glb_mib"], lambda r: f"{r['glb_mib']:g}"),
    )
    fig = _figure((3 + len(panels) * (0.8 + 0.7 * len(budgets)), 1.5 + 0.45 * len(row_labels)))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (title, value, text) in zip(axes[0], panels):
        grid = np.full((len(row_labels), len(budgets)), np.nan)
        for i, lab in enumerate(row_labels):
            for j, b in enumerate(budgets):
                r = index.get((lab, b))
                if r is not None and r["feasible"]:
                    grid[i, j] = math.log2(value(r))
                    ax.text(j, i, text(r), ha="center", va="center", fontsize=7)
        ax.imshow(grid, cmap="viridis", aspect="auto", alpha=0.8)
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(len(budgets)), [f"{b:g}" for b in budgets], fontsize=7)
        ax.set_xlabel("area budget (mm$^2$)", fontsize=8)
        first = ax is axes[0][0]
        ax.set_yticks(
            range(len(row_labels)), row_labels if first else [""] * len(row_labels), fontsize=7
        )
    fig.tight_layout()
    fig.savefig(path)


def _fmt(x, spec: str = ",.1f") -> str:
    return "-" if x is None else format(x, spec)


def summary_text(records: list[dict], total: int | None = None) -> str:
    """One line per cell: settings that vary, best architecture, throughput, speed-ups."""
    if not records:
        return "No finished cells."
    keys = _varying(records, ()) or ["model"]
    header = [
        *keys,
        "best architecture",
        "area mm2",
        "HBM GiB",
        "samples/s",
        "vs tpuv4-like",
        "vs megatron",
    ]
    rows = []
    for r in records:
        if r["feasible"]:
            arch = (
                f"{r['num_tc']} TC {r['tc_width']}x{r['tc_depth']}, {r['num_vc']} VC "
                f"{r['vc_width']}, GLB {r['glb_mib']:g} MiB"
            )
        else:
            arch = "infeasible"
        rows.append(
            [
                *(_cell_text(_field(r, k)) for k in keys),
                arch,
                _fmt(r["area_mm2"]),
                _fmt(r["best_hbm_gib"], "g"),
                _fmt(r["throughput_samples_per_s"]),
                _fmt(r["speedup_vs_tpuv4_like"], ".2f")
                + ("x" if r["speedup_vs_tpuv4_like"] else ""),
                _fmt(r["speedup_vs_megatron"], ".2f") + ("x" if r["speedup_vs_megatron"] else ""),
            ]
        )
    lines = [format_table(header, rows)]
    done = len(records)
    wall = sum(r.get("wall_s") or 0.0 for r in records)
    of = f" of {total}" if total is not None else ""
    lines.append(f"{done}{of} cells finished; {wall:.1f} s of search time in all.")
    return "\n".join(lines)


def write_reports(out: str | os.PathLike, records: list[dict]) -> dict[str, Path]:
    """``sweep.csv`` and both plots in ``out``; returns the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "csv": out / "sweep.csv",
        "throughput": out / "throughput_vs_area.png",
        "heatmap": out / "best_arch_heatmap.png",
    }
    write_csv(files["csv"], records)
    plot_throughput_vs_area(files["throughput"], records)
    plot_best_arch_heatmap(files["heatmap"], records)
    return files
