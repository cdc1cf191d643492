"""Worker processes that schedule layers for batches of architectures (``--jobs``).

Layer scheduling is the search's heaviest step and is independent per architecture, so
:class:`WorkerPool` splits each prefetched batch of architectures over ``jobs`` forked
processes. The workers inherit the prepared evaluators through ``fork`` (nothing large is
pickled, and no module-level state is used: each worker loop receives the evaluators as its
argument); they return per-layer latency arrays and their schedule-cache counters, which
the parent merges. Kernels are compiled in the parent before forking (style.md rule 6), so
no two processes write numba's cache at once. Results do not depend on ``jobs``.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback

import numpy as np

__all__ = ["WorkerPool"]

_COUNTERS = (
    "layer_hits",
    "segment_hits",
    "chains",
    "bound_closed",
    "enumerated",
    "solved",
    "not_optimal",
)


def _worker_loop(evaluators, tasks, results) -> None:
    while True:
        task = tasks.get()
        if task is None:
            return
        tid, wi, mbs, archs = task
        try:
            ev = evaluators[wi]
            before = {k: getattr(ev.cache, k) for k in _COUNTERS}
            ev.schedule(mbs, archs)
            pairs = [ev.layer_latencies(mbs, a) for a in archs]
            delta = {k: getattr(ev.cache, k) - before[k] for k in _COUNTERS}
            for a in archs:  # the parent keeps them; free the worker's copy
                ev.forget(a)
            results.put(
                (tid, np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]), delta, None)
            )
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

    def schedule(self, wi: int, mbs: int, archs) -> None:
        """Schedule ``archs`` for workload ``wi`` at ``mbs`` across the workers and store
        the results in the parent's evaluator."""
        ev = self.evaluators[wi]
        todo = [int(a) for a in archs if not ev.has_layers(mbs, int(a))]
        if not todo:
            return
        chunks = [c for c in np.array_split(np.array(todo), self.jobs) if c.size]
        for tid, chunk in enumerate(chunks):
            self._tasks.put((tid, wi, mbs, chunk.tolist()))
        for _ in chunks:
            tid, fwd, bwd, delta, error = self._results.get()
            if error is not None:
                raise RuntimeError(f"a search worker failed:\n{error}")
            for j, a in enumerate(chunks[tid].tolist()):
                ev.set_layers(mbs, a, fwd[j], bwd[j])
            for k, v in delta.items():
                setattr(ev.cache, k, getattr(ev.cache, k) + v)
