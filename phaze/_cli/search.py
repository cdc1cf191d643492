"""``phaze search``: search accelerator architectures and plans jointly."""

from __future__ import annotations

import argparse
import os
import sys

import phaze
from phaze import report
from phaze._cli import ranges as R
from phaze._cli.ranges import float_in, float_list_in, int_in, int_list_in
from phaze.errors import ConfigError
from phaze.joint.core import STRATEGIES
from phaze.joint.objective import OBJECTIVES
from phaze.outdir import OutputDir
from phaze.training import ACCOUNTINGS, MAX_INTERLEAVE, MEGATRON_OPTIONS, Training
from phaze.validate import OPTIMIZERS, check_number

HELP = "search accelerator architectures and execution plans jointly (the main job)"

#: Exit status when the search ran but no design has a plan that fits in memory (bad input
#: exits 2, as for every command).
EXIT_NOTHING_FITS = 3

DEFAULT_MODEL = "bert-large"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        f"exit status: 0 a design was found; 2 bad input, or --out in use by another "
        f"search (one line on stderr); {EXIT_NOTHING_FITS} the search ran but no design "
        f"has a plan that fits in memory; 130 interrupted"
    )
    g = parser.add_argument_group("workload")
    g.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help=f"preset model (repeatable; see 'phaze models'; default {DEFAULT_MODEL})",
    )
    g.add_argument(
        "--hf-config",
        action="append",
        default=[],
        metavar="PATH",
        help="Hugging Face config.json of a GPT-2, BERT, OPT or Llama model (repeatable)",
    )
    g.add_argument(
        "--seq",
        type=int_in(*R.SEQ),
        default=None,
        help="sequence length (default: each model's own)",
    )
    g.add_argument(
        "--batch", type=int_in(*R.BATCH), default=4096, help="global batch (default 4096)"
    )
    g.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default=None,
        help=f"default {OPTIMIZERS[0]}; adam with --training megatron",
    )
    g.add_argument(
        "--training",
        choices=ACCOUNTINGS,
        default=ACCOUNTINGS[0],
        help="memory and recomputation accounting of the plans: the paper's (default) or "
        "Megatron's (mixed-precision Adam, 18 bytes per parameter; recomputation on every "
        "stage; see docs/real-systems.md)",
    )
    g.add_argument(
        "--recompute-mode",
        choices=("full", "selective"),
        default="full",
        help="what recomputation on means (default full; selective needs --training "
        "megatron: only the attention core is recomputed)",
    )
    for flag, what in (
        ("--distributed-optimizer", "shard the optimizer state over the data-parallel replicas"),
        ("--sequence-parallel", "sequence parallelism at every tensor width > 1"),
        ("--optimizer-step", "add the Adam step's HBM traffic to the time per batch"),
        ("--overlap-dp", "overlap the gradient synchronisation with the last backward pass"),
    ):
        g.add_argument(flag, action="store_true", help=f"{what} (needs --training megatron)")
    g.add_argument(
        "--interleave",
        type=int_list_in(1, MAX_INTERLEAVE),
        default=(1,),
        metavar="V[,V...]",
        help="candidate model chunks per device of the interleaved 1F1B schedule, "
        "comma-separated (default 1: not interleaved; others need --training megatron; "
        "see docs/placement.md)",
    )
    g.add_argument(
        "--max-tensor-width",
        "--max-tp",
        dest="max_tensor_width",
        type=int_in(*R.TENSOR_WIDTH),
        default=8,
        help="largest tensor-parallel width (default 8)",
    )
    g = parser.add_argument_group("cluster")
    g.add_argument(
        "--devices", type=int_in(*R.DEVICES), default=1024, help="accelerators (default 1024)"
    )
    g.add_argument(
        "--link-gibps",
        type=float_in(*R.LINK_GIBPS, "GiB/s"),
        default=4.0,
        help="link bandwidth between accelerators, GiB/s (default 4, PCIe 3.0)",
    )
    g.add_argument(
        "--network",
        metavar="SYSTEM",
        default=None,
        help="use the network levels of a real system (name or .json file, see 'phaze plan') "
        "instead of --link-gibps",
    )
    g.add_argument(
        "--hbm",
        type=float_list_in(*R.HBM_GIB, "GiB"),
        default="32,64,80",
        help="HBM sizes per device, GiB, comma-separated (default 32,64,80)",
    )
    g = parser.add_argument_group("search")
    g.add_argument(
        "--mbs",
        type=int_list_in(*R.MICRO_BATCH),
        default="1,2,4,8",
        help="micro-batch sizes, comma-separated (default 1,2,4,8)",
    )
    g.add_argument(
        "--recompute",
        choices=("both", "off", "on"),
        default="both",
        help="activation recomputation settings to search (default both)",
    )
    g.add_argument(
        "--area-budget",
        type=float_in(*R.AREA_BUDGET_MM2, "mm^2"),
        default=None,
        metavar="MM2",
        help="chip area budget in mm^2 (default: the tpuv4-like chip, 278.8 mm^2)",
    )
    g.add_argument(
        "--area-band",
        type=float_in(0.0, 1.0),
        default=0.3,
        help="smallest area kept, as a fraction of the budget (default 0.3)",
    )
    g.add_argument("--strategy", choices=STRATEGIES, default=STRATEGIES[0])
    g.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default=OBJECTIVES[0],
        help="what to maximise (default throughput; the two energy objectives rank alike: "
        "samples per joule)",
    )
    g.add_argument(
        "--power-budget",
        type=float,
        default=None,
        metavar="W",
        help="average power per device a plan may draw, in watts (default: no budget)",
    )
    g.add_argument(
        "--jobs",
        type=int_in(*R.JOBS),
        default=1,
        help="processes (default 1): exact splits the architectures by area between two "
        "processes, other strategies compute their bounds in N; the best design and "
        "frontier do not depend on it (docs/search.md)",
    )
    g.add_argument(
        "--out",
        default="phaze-out",
        help="output directory: results store, results.csv, best.json, plots (default "
        "./phaze-out); one search at a time per directory",
    )
    g.add_argument(
        "--force",
        action="store_true",
        help="discard results in --out from a search with other arguments",
    )
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def _workloads(args):
    from phaze.models import TransformerSpec, preset
    from phaze.workload import Workload

    specs = [preset(name) for name in args.model]
    for path in args.hf_config:
        if not os.path.exists(path):
            raise ConfigError(f"--hf-config {path!r}: no such file")
        specs.append(TransformerSpec.from_hf_config(path))
    if not specs:
        specs = [preset(DEFAULT_MODEL)]
    training = Training(
        args.training,
        args.recompute_mode,
        **{name: True for name in MEGATRON_OPTIONS if getattr(args, name)},
        interleaves=args.interleave,
    )
    optimizer = args.optimizer or ("sgd" if training.is_paper else "adam")
    return [
        Workload(
            s,
            seq_len=args.seq or 0,
            global_batch=args.batch,
            optimizer=optimizer,
            max_tensor_width=args.max_tensor_width,
            training=training,
        )
        for s in specs
    ]


def run(args: argparse.Namespace) -> int:
    from phaze.hardware import DesignSpace
    from phaze.units import GIB
    from phaze.workload import Cluster

    workloads = _workloads(args)
    network = None
    if args.network is not None:
        from phaze.systems.presets import load_system

        network = load_system(args.network).network
    cluster = Cluster(
        devices=args.devices, link_bandwidth_Bps=args.link_gibps * GIB, network=network
    )
    hbm = tuple(int(round(v * GIB)) for v in args.hbm)
    mbs = args.mbs
    recompute = {"both": (False, True), "off": (False,), "on": (True,)}[args.recompute]
    if args.power_budget is not None:
        check_number("--power-budget", args.power_budget, unit="W")
    budget = None if args.area_budget is None else args.area_budget * 1e6
    space = DesignSpace(area_budget_um2=budget, area_band=args.area_band)
    summary, result = run_search(
        workloads,
        cluster,
        space,
        mbs,
        hbm,
        recompute,
        args.strategy,
        out=args.out,
        force=args.force,
        jobs=args.jobs,
        progress=not args.no_progress and sys.stderr.isatty(),
        objective=args.objective,
        power_budget_w=args.power_budget,
    )
    print(summary)
    return 0 if result.best is not None else EXIT_NOTHING_FITS


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
    micro_batch_sizes,
    hbm_sizes,
    recompute,
    strategy,
    out: str,
    force: bool = False,
    jobs: int = 1,
    progress: bool = True,
    objective: str = "throughput",
    power_budget_w: float | None = None,
) -> tuple[str, phaze.SearchResult]:
    """Run :func:`phaze.search`, write the files into ``out``; return the summary text and
    the result. ``out`` stays locked (:class:`~phaze.outdir.OutputDir`) from before the
    search until the last file is written."""
    total = len(space.enumerate()) * (
        2 if strategy == "exact" else len(hbm_sizes) * len(micro_batch_sizes) * len(recompute)
    )
    with OutputDir(out) as outdir:
        bar, update = _progress_bar(total, progress)
        try:
            result = phaze.search(
                workloads,
                cluster,
                space,
                micro_batch_sizes,
                hbm_sizes,
                recompute,
                strategy,
                out=outdir,
                force=force,
                progress=update,
                jobs=jobs,
                objective=objective,
                power_budget_w=power_budget_w,
            )
        finally:
            if bar is not None:
                bar.close()
        files = report.write_outputs(result, outdir)
    return report.summary_text(result, out, files=files), result
