"""Where the cells of a sweep run: this process, local worker processes, or Dask.

Each backend calls ``on_result(index, record)`` in the driving process as each cell
finishes (in whatever order they finish); the caller stores and orders them. A cell is one
search with ``jobs=1``: the parallelism is across cells, so records do not depend on the
backend or on the number of workers.

* ``serial`` -- every cell in this process, in order.
* ``processes`` -- a :class:`concurrent.futures.ProcessPoolExecutor` of ``jobs`` forked
  processes (no extra install). The numba kernels are compiled in this process first
  (:func:`phaze.joint.evaluator.warmup_kernels`), so the workers inherit them and never
  write numba's cache at the same time.
* ``dask`` -- a :mod:`dask.distributed` cluster: the scheduler at ``scheduler`` (an
  address such as ``tcp://10.0.0.5:8786``), or else a ``LocalCluster`` of ``jobs``
  single-threaded worker processes bound to 127.0.0.1 with no dashboard, so no network
  connection leaves the machine unless a scheduler address is given. Workers warm the
  kernels one at a time before any cell runs. Needs ``pip install 'phaze[dask]'``.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from phaze.errors import ConfigError
from phaze.sweeps.cell import run_cell
from phaze.sweeps.spec import SweepCell

__all__ = ["BACKENDS", "run_cells"]

BACKENDS = ("serial", "processes", "dask")

OnResult = Callable[[int, dict], None]


def _serial(cells: Sequence[tuple[int, SweepCell]], on_result: OnResult) -> None:
    for i, cell in cells:
        on_result(i, run_cell(cell))


def _processes(cells, jobs: int, on_result: OnResult) -> None:
    from phaze.joint.evaluator import warmup_kernels

    warmup_kernels()
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("fork"))
    try:
        pending = {pool.submit(run_cell, cell): i for i, cell in cells}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=pending.get):
                i = pending.pop(fut)
                on_result(i, fut.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise ConfigError(
            "the dask backend needs dask.distributed: pip install 'phaze[dask]'"
        ) from None
    return distributed


def _warm_workers(client) -> None:
    """Compile (or load) the kernels on every worker, one worker at a time, so that no
    two processes of a machine write numba's cache at once."""
    from phaze.joint.evaluator import warmup_kernels

    for address in sorted(client.scheduler_info()["workers"]):
        client.run(warmup_kernels, workers=[address])


def _dask(cells, jobs: int, scheduler: str | None, on_result: OnResult) -> None:
    distributed = _import_distributed()
    from phaze.joint.evaluator import warmup_kernels

    cluster = None
    if scheduler is None:
        warmup_kernels()  # fills numba's cache: the local workers only read it
        cluster = distributed.LocalCluster(
            n_workers=jobs,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            protocol="tcp",
        )
        client = distributed.Client(cluster)
    else:
        try:
            client = distributed.Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"--scheduler {scheduler!r}: cannot connect ({exc})") from None
    try:
        try:
            client.wait_for_workers(1, timeout=120)
        except TimeoutError:
            raise ConfigError(
                f"the Dask scheduler {client.scheduler.address} has no workers (waited 120 s)"
            ) from None
        _warm_workers(client)
        futures = {}
        for i, cell in cells:
            fut = client.submit(run_cell, cell, key=f"phaze-cell-{cell.key}", pure=False)
            futures[fut] = i
        for fut in distributed.as_completed(list(futures)):
            on_result(futures[fut], fut.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_cells(
    cells: Sequence[tuple[int, SweepCell]],
    on_result: OnResult,
    backend: str = "processes",
    jobs: int = 1,
    scheduler: str | None = None,
) -> None:
    """Run ``cells`` (``(index, cell)`` pairs) on ``backend``; see the module docstring.

    With ``backend="processes"`` and ``jobs=1`` the cells run in this process.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend={backend!r}; allowed: {', '.join(BACKENDS)}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs={jobs!r} must be an integer >= 1")
    if scheduler is not None and backend != "dask":
        raise ConfigError(f"a scheduler address needs backend='dask', not {backend!r}")
    if not cells:
        return
    if backend == "dask":
        _dask(cells, jobs, scheduler, on_result)
    elif backend == "serial" or min(jobs, len(cells)) == 1:
        _serial(cells, on_result)
    else:
        _processes(cells, min(jobs, len(cells)), on_result)
