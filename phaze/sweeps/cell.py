"""One cell of a sweep: one ordinary search, summarised as a JSON-ready record.

:func:`run_cell` is the only place where a sweep calls the search. A record holds the
cell's settings, its best design (architecture, HBM, throughput, plan), the speed-ups
against the baselines of the search (the tpuv4-like chip with its own best plan, and the
fixed Megatron plan on it), the throughput/area frontier and the search's counters. Every
field except ``wall_s`` depends only on the cell, not on the process or machine that ran it.
"""

from __future__ import annotations

import time

from phaze import search
from phaze.report import arch_dict
from phaze.sweeps.spec import SweepCell
from phaze.units import GIB, MIB, UM2_PER_MM2

__all__ = ["RECORD_FIELDS", "run_cell"]

#: Scalar fields of a record, in ``sweep.csv`` column order.
RECORD_FIELDS = (
    "cell",
    "key",
    "model",
    "seq_len",
    "global_batch",
    "optimizer",
    "devices",
    "link_gibps",
    "hbm_gib",
    "micro_batch_sizes",
    "recompute",
    "area_budget_mm2",
    "area_band",
    "strategy",
    "training",
    "network",
    "architectures",
    "feasible",
    "arch",
    "num_tc",
    "tc_width",
    "tc_depth",
    "num_vc",
    "vc_width",
    "glb_mib",
    "area_mm2",
    "best_hbm_gib",
    "throughput_samples_per_s",
    "micro_batch_size",
    "recompute_on",
    "tensor_width",
    "data_parallel",
    "num_stages",
    "tpuv4_like_samples_per_s",
    "speedup_vs_tpuv4_like",
    "megatron_samples_per_s",
    "speedup_vs_megatron",
    "frontier_points",
    "designs_evaluated",
    "wall_s",
)


def _settings(cell: SweepCell) -> dict:
    rc = {(False, True): "both", (False,): "off", (True,): "on"}[cell.recompute]
    return {
        "key": cell.key,
        "model": cell.model.name,
        "seq_len": cell.workload().seq_len,
        "global_batch": cell.global_batch,
        "optimizer": cell.optimizer,
        "devices": cell.devices,
        "link_gibps": cell.link_bandwidth_Bps / GIB,
        "hbm_gib": ";".join(f"{h / GIB:g}" for h in cell.hbm_bytes),
        "micro_batch_sizes": ";".join(str(m) for m in cell.micro_batch_sizes),
        "recompute": rc,
        "area_budget_mm2": cell.design_space().budget_um2 / UM2_PER_MM2,
        "area_band": cell.area_band,
        "strategy": cell.strategy,
        # the accounting and the options on, e.g. "megatron/selective+distributed_optimizer"
        # (and "+interleaves=1;2" when interleaved plans are searched)
        "training": _training_label(cell.training),
        "network": cell.network,  # None (empty in sweep.csv): the single link
    }


def _training_label(training) -> str:
    """``paper``, or ``megatron/<recompute mode>`` plus ``+<option>`` per option on and
    ``+interleaves=<v;v...>`` when not just 1."""
    if training.is_paper:
        return "paper"
    parts = [f"megatron/{training.recompute_mode}", *training.options()]
    if training.interleaves != (1,):
        parts.append("interleaves=" + ";".join(map(str, training.interleaves)))
    return "+".join(parts)


def run_cell(cell: SweepCell) -> dict:
    """Run the search of ``cell`` (in this process, ``jobs=1``) and summarise it.

    Returns a dict with the scalar fields of :data:`RECORD_FIELDS` (``cell``, the
    position in the sweep, is filled in by the caller; ``None`` where a field does not
    apply, e.g. when nothing is feasible), plus ``frontier`` (a list of ``[arch,
    area_mm2, samples_per_s]``) and ``counters`` (the search's counters without
    timings).

    Examples
    --------
    >>> from phaze.sweeps import SweepCell
    >>> cell = SweepCell("bert-large", seq_len=128, global_batch=512, devices=64,
    ...                  hbm_bytes=(16 * 2**30,), micro_batch_sizes=(1,), recompute=(True,),
    ...                  num_tc=(4, 8), num_vc=(2,), tc_width=(128,), tc_depth=(128,),
    ...                  glb_bytes=(2**27,), area_band=0.0)
    >>> rec = run_cell(cell)
    >>> rec["feasible"], rec["throughput_samples_per_s"] > 0, rec["num_tc"] in (4, 8)
    (True, True, True)
    """
    started = time.perf_counter()
    result = search(
        cell.workload(),
        cell.cluster(),
        cell.design_space(),
        micro_batch_sizes=cell.micro_batch_sizes,
        hbm_sizes=cell.hbm_bytes,
        recompute=cell.recompute,
        strategy=cell.strategy,
        jobs=1,
    )
    rec: dict = {"cell": None, **_settings(cell)}
    counters = {k: v for k, v in result.counters.items() if not k.endswith("_s")}
    rec["architectures"] = int(counters.get("architectures", 0))
    best = result.best
    rec["feasible"] = best is not None
    empty = dict.fromkeys(RECORD_FIELDS[RECORD_FIELDS.index("arch") :])
    rec.update({k: v for k, v in empty.items() if k not in rec})
    area_um2 = result.arch_table.area_um2
    if best is not None:
        a = arch_dict(result.arch_table, best.arch)
        mine = best.per_workload[0]
        tput = mine.throughput
        det = result.details[0]
        tpu = det["tpuv4_like"]["samples_per_s"]
        meg = det["megatron"]["samples_per_s"]
        rec.update(
            arch=a["index"],
            num_tc=a["num_tc"],
            tc_width=a["tc_width"],
            tc_depth=a["tc_depth"],
            num_vc=a["num_vc"],
            vc_width=a["vc_width"],
            glb_mib=a["glb_bytes"] / MIB,
            area_mm2=a["area_mm2"],
            best_hbm_gib=best.hbm_bytes / GIB,
            throughput_samples_per_s=float(tput),
            micro_batch_size=int(mine.micro_batch_size),
            recompute_on=bool(mine.recompute),
            tensor_width=int(mine.tensor_width),
            data_parallel=int(mine.data_parallel),
            num_stages=int(mine.num_stages),
            tpuv4_like_samples_per_s=float(tpu) if tpu else None,
            speedup_vs_tpuv4_like=float(tput / tpu) if tpu else None,
            megatron_samples_per_s=float(meg) if meg else None,
            speedup_vs_megatron=float(tput / meg) if meg else None,
        )
    rec["frontier"] = [
        [int(a), float(area_um2[a]) / UM2_PER_MM2, float(v)]
        for a, v in zip(result.frontier.tolist(), result.frontier_value.tolist())
    ]
    rec["frontier_points"] = len(rec["frontier"])
    rec["designs_evaluated"] = int(counters.get("designs_evaluated", 0))
    rec["counters"] = {k: (int(v) if float(v).is_integer() else v) for k, v in counters.items()}
    rec["wall_s"] = time.perf_counter() - started
    return rec
