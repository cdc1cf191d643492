"""Worker processes that schedule layers for batches of architectures (``--jobs``).

Layer scheduling is the search's heaviest step and is independent per architecture, so
:class:`WorkerPool` splits each prefetched batch of architectures over ``jobs`` forked
processes. The workers inherit the prepared evaluators through ``fork`` (nothing large is
pickled, and no module-level state is used: each worker loop receives the evaluators as its
argument); they return per-layer latency arrays and their schedule-cache counters, which
the parent merges. Kernels are compiled in the parent before forking (docs/architecture.md), so
no two processes write numba's cache at once. Results do not depend on ``jobs``.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback

import numpy as np

from phaze.schedule import ScheduleCache

__all__ = ["WorkerPool"]


def _worker_loop(evaluators, tasks, results) -> None:
    while True:
        task = tasks.get()
        if task is None:
            return
        tid, wi, archs, mbs_list, hbm, rcs = task
        try:
            ev = evaluators[wi]
            before = {k: getattr(ev.cache, k) for k in ScheduleCache.COUNTERS}
            calls = ev.dp_calls
            layers, rows = {}, {}
            for m in mbs_list:
                ev.schedule(m, archs)
                for a in archs:
                    layers[m, a] = ev.layer_latencies(m, a)
                    for r in rcs:
                        rows[a, m, r] = ev.exact(m, a, hbm, r)
            delta = {k: getattr(ev.cache, k) - before[k] for k in ScheduleCache.COUNTERS}
            delta["dp_calls"] = ev.dp_calls - calls
            for a in archs:  # the parent keeps them; free the worker's copy
                ev.forget(a)
            results.put((tid, layers, rows, delta, None))
        except Exception:  # noqa: BLE001 - reported to the parent, which raises
            results.put((tid, None, None, None, traceback.format_exc()))


class WorkerPool:
    """``jobs`` forked processes that run :meth:`WorkloadEvaluator.schedule`.

    Use as a context manager; :meth:`schedule` blocks until every chunk is back.
    """

    def __init__(self, evaluators, jobs: int) -> None:
        from phaze import _kernels

        _kernels.warmup()
        self.evaluators = evaluators
        ctx = mp.get_context("fork")
        self._tasks = ctx.Queue()
        self._results = ctx.Queue()
        self._procs = [
            ctx.Process(
                target=_worker_loop, args=(evaluators, self._tasks, self._results), daemon=True
            )
            for _ in range(jobs)
        ]
        for p in self._procs:
            p.start()
        self.jobs = jobs

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (idempotent)."""
        for _ in self._procs:
            self._tasks.put(None)
        for p in self._procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
        self._procs = []

    def prefetch(self, wi: int, archs, mbs_list, hbm: int, rcs) -> dict:
        """Schedule ``archs`` for workload ``wi`` at every micro-batch size and place them
        at HBM ``hbm`` for every recomputation setting, across the workers. Layer
        latencies go into the parent's evaluator; returns ``{(arch, mbs, rc): row}``."""
        ev = self.evaluators[wi]
        chunks = [c.tolist() for c in np.array_split(np.asarray(archs), self.jobs) if c.size]
        for tid, chunk in enumerate(chunks):
            self._tasks.put((tid, wi, chunk, list(mbs_list), hbm, list(rcs)))
        rows = {}
        for _ in chunks:
            _, layers, got, delta, error = self._results.get()
            if error is not None:
                raise RuntimeError(f"a search worker failed:\n{error}")
            for (m, a), (fwd, bwd) in layers.items():
                ev.set_layers(m, a, fwd, bwd)
            rows.update(got)
            ev.dp_calls += delta.pop("dp_calls")
            for k, v in delta.items():
                setattr(ev.cache, k, getattr(ev.cache, k) + v)
        return rows
