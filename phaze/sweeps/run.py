"""``sweep()``: run the cells of a sweep on a backend, with a resumable store."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from phaze.errors import ConfigError
from phaze.sweeps.backends import BACKENDS, _import_distributed, run_cells
from phaze.sweeps.spec import SweepCell, SweepSpec, load_sweep
from phaze.sweeps.store import SweepStore

__all__ = ["default_jobs", "sweep"]


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _spec(cells) -> SweepSpec:
    if isinstance(cells, SweepSpec):
        return cells
    if isinstance(cells, (str, os.PathLike)):
        return load_sweep(cells)
    if isinstance(cells, SweepCell):
        cells = [cells]
    try:
        return SweepSpec(tuple(cells))
    except TypeError:
        raise ConfigError(
            f"cells={cells!r}; allowed: a sweep file path, a SweepSpec or SweepCells"
        ) from None


def sweep(
    cells: str | os.PathLike | SweepSpec | Sequence[SweepCell],
    backend: str = "processes",
    jobs: int | None = None,
    scheduler: str | None = None,
    out: str | os.PathLike | None = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """Run one search per cell and return one record per cell, in cell order.

    Parameters
    ----------
    cells : path, SweepSpec or sequence of SweepCell
        A sweep file (TOML, format in ``docs/sweeps.md``) or the cells themselves.
    backend : {"processes", "serial", "dask"}
        Where the cells run (:mod:`phaze.sweeps.backends`); records do not depend on it.
    jobs : int, optional
        Worker processes (default: the cores of this machine); for ``dask`` without a
        ``scheduler``, the workers of the local cluster.
    scheduler : str, optional
        Address of a running ``dask.distributed`` scheduler (``backend="dask"``).
    out : path, optional
        Output directory: ``sweep.sqlite`` (the resumable store), ``sweep.csv`` and the
        plots. A re-run with the same cells computes only the cells not stored yet.
    force : bool
        Accept a store written by a different sweep instead of refusing it: its cells
        that are not in this sweep are discarded, the others kept.
    progress : callable, optional
        Called as ``progress(done, total)`` after each finished cell (and once at start
        with the cells already stored).

    Returns
    -------
    list of dict
        See :func:`phaze.sweeps.run_cell`; ``record["cell"]`` is the cell's position.

    Examples
    --------
    >>> from phaze import sweep, SweepCell
    >>> small = dict(seq_len=128, global_batch=512, hbm_bytes=(16 * 2**30,),
    ...              micro_batch_sizes=(1,), recompute=(True,), num_tc=(4, 8), num_vc=(2,),
    ...              tc_width=(128,), tc_depth=(128,), glb_bytes=(2**27,), area_band=0.0)
    >>> cells = [SweepCell("bert-large", devices=n, **small) for n in (16, 64)]
    >>> records = sweep(cells, backend="serial")
    >>> [r["devices"] for r in records], all(r["feasible"] for r in records)
    ([16, 64], True)
    """
    spec = _spec(cells)
    if backend not in BACKENDS:
        raise ConfigError(f"backend={backend!r}; allowed: {', '.join(BACKENDS)}")
    if jobs is None:
        jobs = default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs={jobs!r} must be an integer >= 1")
    if backend == "dask":
        _import_distributed()  # a clear error before any work
    total = len(spec.cells)
    keys = [c.key for c in spec.cells]
    store = None if out is None else SweepStore(out, spec.fingerprint, keys, force=force)
    try:
        done = store.records() if store is not None else {}
        records: dict[int, dict] = {}
        for i, c in enumerate(spec.cells):
            if c.key in done:
                records[i] = {**done[c.key], "cell": i}
        if progress is not None:
            progress(len(records), total)

        def on_result(i: int, rec: dict) -> None:
            rec = {**rec, "cell": i}
            records[i] = rec
            if store is not None:
                store.add(spec.cells[i].key, i, rec)
            if progress is not None:
                progress(len(records), total)

        todo = [(i, c) for i, c in enumerate(spec.cells) if i not in records]
        run_cells(todo, on_result, backend=backend, jobs=jobs, scheduler=scheduler)
    finally:
        if store is not None:
            store.close()
    out_records = [records[i] for i in range(total)]
    if out is not None:
        from phaze.sweeps.report import write_reports

        write_reports(Path(out), out_records)
    return out_records
