"""Worker processes that schedule layers for batches of architectures (``--jobs``).

Layer scheduling is the search's heaviest step and is independent per architecture, so
:class:`WorkerPool` splits each prefetched batch of architectures over ``jobs`` forked
processes of a :class:`concurrent.futures.ProcessPoolExecutor`. The workers inherit the
prepared evaluators through ``fork`` (nothing large is pickled); they return per-layer
latency arrays and their schedule-cache counters, which the parent merges. Kernels are
compiled in the parent before forking (docs/architecture.md), so no two processes write numba's
cache at once. Results do not depend on ``jobs``.

Failure handling:

* a worker that dies (killed, out of memory) breaks the pool; the search stops at once with
  a :class:`~phaze.errors.PhazeError` saying so (rows computed so far stay in the store, so
  rerunning the command resumes);
* workers die with their parent: on Linux the kernel sends them ``SIGKILL`` when the parent
  ends (``PR_SET_PDEATHSIG``), and everywhere a watchdog thread in each worker exits when
  the parent process is gone;
* workers ignore ``SIGINT``: Ctrl-C interrupts the parent only, which stops the workers,
  so one line is printed, not one traceback per worker.

The evaluators reach a worker through the pool's initializer and are kept in that worker
process's :data:`_WORKER` slot; the slot is never set in the parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from phaze.errors import PhazeError
from phaze.schedule import ScheduleCache

__all__ = ["WorkerPool"]

#: Seconds between two checks of a worker's watchdog that its parent is alive.
_WATCHDOG_S = 0.5

#: Per-process slot of a worker (set by :func:`_init_worker` in the worker only).
_WORKER: dict = {}

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent: int) -> None:
    """Make this process end when ``parent`` does (see the module docstring)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError, TypeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watchdog() -> None:
        while os.getppid() == parent:
            time.sleep(_WATCHDOG_S)
        os._exit(1)

    threading.Thread(target=watchdog, name="phaze-parent-watchdog", daemon=True).start()


def _init_worker(evaluators, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)
    _WORKER["evaluators"] = evaluators


def _prefetch_chunk(wi: int, archs: list[int], mbs_list: list[int], hbm: int, rcs: list):
    """Worker side of :meth:`WorkerPool.prefetch` for one chunk of architectures."""
    ev = _WORKER["evaluators"][wi]
    before = {k: getattr(ev.cache, k) for k in ScheduleCache.COUNTERS}
    calls, reused = ev.dp_calls, ev.placements_reused
    layers, rows = {}, {}
    for m in mbs_list:
        ev.schedule(m, archs)
        for a in archs:
            layers[m, a] = ev.layer_latencies(m, a)
            for r in rcs:
                rows[a, m, r] = ev.exact(m, a, hbm, r)
    delta = {k: getattr(ev.cache, k) - before[k] for k in ScheduleCache.COUNTERS}
    delta["dp_calls"] = ev.dp_calls - calls
    delta["placements_reused"] = ev.placements_reused - reused
    for a in archs:  # the parent keeps them; free the worker's copy
        ev.forget(a)
    return layers, rows, delta


class WorkerPool:
    """``jobs`` forked processes that run :meth:`WorkloadEvaluator.schedule`.

    :meth:`prefetch` blocks until every chunk is back; :meth:`close` stops the workers.

    Raises
    ------
    PhazeError
        From :meth:`prefetch`, when a worker process died.
    """

    def __init__(self, evaluators, jobs: int) -> None:
        from phaze import _kernels

        _kernels.warmup()  # compile in the parent: workers only read numba's cache
        self.evaluators = evaluators
        self.jobs = jobs
        self._executor = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=mp.get_context("fork"),
            initializer=_init_worker,
            initargs=(evaluators, os.getpid()),
        )
        self._procs: dict = {}  # the workers, to report how one died

    def _cause(self, wait_s: float = 1.0) -> str:
        """How the first worker that died ended (the pool terminates the others with
        SIGTERM). The pool's manager thread may be reaping it at this moment, so its exit
        code is awaited for up to ``wait_s``."""
        deadline = time.monotonic() + wait_s
        while True:
            for p in self._procs.values():
                try:
                    code = p.exitcode
                except ValueError:  # a process object the pool already closed
                    continue
                if code is None or code == 0 or code == -signal.SIGTERM:
                    continue
                return f" (signal {-code})" if code < 0 else f" (exit status {code})"
            if time.monotonic() >= deadline:
                return ""
            time.sleep(0.02)

    def close(self) -> None:
        """Stop the workers without waiting for work in flight (idempotent)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        # the executor's own map of its processes: stop them now rather than after the
        # chunk they are working on (after Ctrl-C, or when a sibling failed)
        procs = list({**self._procs, **(getattr(executor, "_processes", None) or {})}.values())
        executor.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(OSError, ValueError):
                p.kill()
        for p in procs:
            with contextlib.suppress(OSError, ValueError, AssertionError):
                p.join(timeout=10)

    def prefetch(self, wi: int, archs, mbs_list, hbm: int, rcs) -> dict:
        """Schedule ``archs`` for workload ``wi`` at every micro-batch size and place them
        at HBM ``hbm`` for every recomputation setting, across the workers. Layer
        latencies go into the parent's evaluator; returns ``{(arch, mbs, rc): row}``."""
        if self._executor is None:
            raise PhazeError("the worker pool is closed")
        ev = self.evaluators[wi]
        chunks = [c.tolist() for c in np.array_split(np.asarray(archs), self.jobs) if c.size]
        try:
            futures = [
                self._executor.submit(_prefetch_chunk, wi, c, list(mbs_list), hbm, list(rcs))
                for c in chunks
            ]
            self._procs.update(getattr(self._executor, "_processes", None) or {})
            wait(futures, return_when=FIRST_EXCEPTION)
            results = [f.result() for f in futures]  # chunk order: deterministic merge
        except BrokenProcessPool:
            cause = self._cause()  # before close() kills the survivors
            self.close()
            raise PhazeError(
                f"a search worker process died{cause}; the search stopped. Rows "
                f"computed so far are kept in the output directory: rerun the same command "
                f"to resume (with fewer --jobs if memory ran out)"
            ) from None
        rows = {}
        for layers, got, delta in results:
            for (m, a), (fwd, bwd) in layers.items():
                ev.set_layers(m, a, fwd, bwd)
            rows.update(got)
            ev.dp_calls += delta.pop("dp_calls")
            ev.placements_reused += delta.pop("placements_reused")
            for k, v in delta.items():
                setattr(ev.cache, k, getattr(ev.cache, k) + v)
        return rows
