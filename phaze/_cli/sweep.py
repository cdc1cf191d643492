"""``phaze sweep``: many searches from one sweep file, locally or on a Dask cluster."""

from __future__ import annotations

import argparse
import sys

from phaze.errors import ConfigError

HELP = "run many searches (a grid or list of cells in a TOML file), locally or on Dask"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", nargs="?", default=None, metavar="SWEEP.toml", help="sweep file (docs/sweeps.md)"
    )
    parser.add_argument(
        "--out",
        default="sweep-out",
        help="output directory: sweep.sqlite, sweep.csv, plots (default ./sweep-out)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="worker processes, or LocalCluster workers with --dask (default: all cores)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the cells on the dask.distributed scheduler at ADDRESS (pip install "
        "'phaze[dask]')",
    )
    where.add_argument(
        "--dask",
        action="store_true",
        help="run the cells on a local dask.distributed cluster (127.0.0.1 only)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="accept --out from a changed sweep file (drops its cells no longer in the file)",
    )
    parser.add_argument(
        "--summary",
        default=None,
        metavar="DIR",
        help="print the summary of the sweep stored in DIR and exit",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


class _Bar:
    """A tqdm bar over cells, with an ETA."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="cell", desc="sweep", smoothing=0)
        else:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args: argparse.Namespace) -> int:
    from phaze.sweeps.report import summary_text
    from phaze.sweeps.run import sweep
    from phaze.sweeps.spec import load_sweep
    from phaze.sweeps.store import read_records

    if args.summary is not None:
        if args.file is not None:
            raise ConfigError("give either a sweep file or --summary DIR, not both")
        print(summary_text(read_records(args.summary)))
        return 0
    if args.file is None:
        raise ConfigError("a sweep file is needed: phaze sweep SWEEP.toml (or --summary DIR)")
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs={args.jobs} must be >= 1")
    spec = load_sweep(args.file)
    backend = "dask" if (args.dask or args.scheduler) else "processes"
    bar = _Bar(not args.no_progress and sys.stderr.isatty())
    try:
        records = sweep(
            spec,
            backend=backend,
            jobs=args.jobs,
            scheduler=args.scheduler,
            out=args.out,
            force=args.force,
            progress=bar,
        )
    finally:
        bar.close()
    print(summary_text(records, len(spec.cells)))
    print(
        f"Results in {args.out}/: sweep.sqlite, sweep.csv, throughput_vs_area.png, "
        "best_arch_heatmap.png"
    )
    return 0
