"""Worker processes that schedule layers for batches of architectures (``--jobs``), and
compute the operator latencies and bounds a search starts with
(:func:`precompute_latencies`).

Layer scheduling is independent per architecture, so :class:`WorkerPool` has ``jobs -
1`` forked workers of a :class:`concurrent.futures.ProcessPoolExecutor` schedule the
architectures the search will visit next while the parent places the rows of the ones
it visits now (docs/search.md, "``--jobs``"). The workers inherit the prepared
evaluators through ``fork`` (nothing large is pickled); they return per-layer latency
arrays, energies and their schedule-cache counters, which the parent merges. Bounds
results, which are large, come back through memory files (:func:`_spill`). Kernels are
compiled in the parent before forking (docs/architecture.md), so no two processes write
numba's cache at once. Results do not depend on ``jobs``.

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
import mmap
import multiprocessing as mp
import os
import pickle
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from phaze.errors import PhazeError
from phaze.hardware.archtable import row_codes
from phaze.schedule import ScheduleCache

__all__ = ["WorkerPool", "partition", "precompute_latencies"]

#: Seconds between two checks of a worker's watchdog that its parent is alive.
_WATCHDOG_S = 0.5

#: Per-process slot of a worker (set by :func:`_init_worker` in the worker only).
_WORKER: dict = {}

_PR_SET_PDEATHSIG = 1  # linux/prctl.h

#: A bounds result whose arrays hold at least this many bytes goes from a worker to the
#: parent through a memory file (:func:`_spill`) rather than the pool's pipe.
SPILL_MIN_BYTES = 1 << 20

#: Byte alignment of each array in a spill file (numba kernels take aligned arrays only).
_SPILL_ALIGN = 64


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


def _schedule_chunk(wi: int, archs: list[int], mbs_list: list[int]):
    """Worker side of :meth:`WorkerPool.submit` for one share of architectures: their
    layer latencies, the energies kept when they were scheduled (a large space) and the
    schedule-cache counters of the work."""
    ev = _WORKER["evaluators"][wi]
    before = {k: getattr(ev.cache, k) for k in ScheduleCache.COUNTERS}
    layers, energies = {}, {}
    for m in mbs_list:
        ev.schedule(m, archs)
        for a in archs:
            layers[m, a] = ev.layer_latencies(m, a)
            found = ev.kept_energy(m, a)  # (a large space: kept when scheduled)
            if found is not None:
                energies[m, a] = found
    delta = {k: getattr(ev.cache, k) - before[k] for k in ScheduleCache.COUNTERS}
    for a in archs:  # the parent keeps them; free the worker's copy
        ev.forget(a)
    return layers, energies, delta


def _death_cause(procs, wait_s: float = 1.0) -> str:
    """How the first of the worker processes ``procs`` that died ended, as `` (signal
    9)`` (a pool terminates the others with SIGTERM), or ``""``. The pool's manager
    thread may be reaping it at this moment, so its exit code is awaited for up to
    ``wait_s``."""
    procs = list(procs)
    deadline = time.monotonic() + wait_s
    while True:
        for p in procs:
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


def _stop(executor, procs: dict) -> None:
    """Shut ``executor`` down and kill its worker processes now, rather than after the
    work they are doing (after Ctrl-C, or when a sibling failed): those in ``procs`` (a
    record of them, which outlives a broken pool) and those in the executor's own map."""
    procs = list({**procs, **(getattr(executor, "_processes", None) or {})}.values())
    results = getattr(executor, "_result_queue", None)  # shutdown() drops it
    executor.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(OSError, ValueError):
            p.kill()
    for p in procs:
        with contextlib.suppress(OSError, ValueError, AssertionError):
            p.join(timeout=10)
    # A worker killed while sending its result leaves half a message in the result pipe:
    # the pool's manager thread then waits for the rest forever, and the interpreter hangs
    # at exit joining that thread. With every worker gone, closing this process's end of
    # the pipe ends the wait (EOF), and the thread exits.
    with contextlib.suppress(AttributeError, OSError):
        results._writer.close()


def _spill(obj) -> tuple:
    """``obj`` for :func:`_unspill` in the parent: its arrays written to a new anonymous
    memory file (``memfd_create``; aligned, raw bytes) and the rest pickled, as
    ``(pickle, pid, fd, [(offset, bytes)])``; or ``(obj,)`` itself, to go through the pipe,
    when its arrays are small or the memory file cannot be made (not Linux, no memory).
    The caller keeps ``fd`` open until the parent has opened it (through ``/proc``).

    A pool's pipe moves a large result in 64 KiB pieces, each read by the parent's result
    thread when it gets the interpreter lock from the parent's main thread, which is
    computing its own share meanwhile: 258 MB of a million-architecture space's bounds
    took about 2 s, during which the worker could not start its next pair. The memory file
    is written in one call and mapped by the parent without a copy. It has no name: it
    is freed when the worker has closed it and the parent's arrays are gone, so nothing is
    left behind if either process is killed."""
    buffers: list = []
    head = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    total = sum(r.nbytes for r in raws)
    if total == 0 or total < SPILL_MIN_BYTES or not hasattr(os, "memfd_create"):
        return (obj,)
    fd = -1
    try:
        fd = os.memfd_create("phaze-bounds", os.MFD_CLOEXEC)
        layout = []
        with open(fd, "wb", closefd=False) as f:
            pos = 0
            for r in raws:
                pad = -pos % _SPILL_ALIGN
                f.write(bytes(pad))
                layout.append((pos + pad, r.nbytes))
                f.write(r)
                pos += pad + r.nbytes
    except OSError:
        if fd >= 0:
            os.close(fd)
        return (obj,)
    return (head, os.getpid(), fd, layout)


def _unspill(msg: tuple):
    """The object :func:`_spill` made ``msg`` of, or None when the memory file cannot be
    opened here. The file is mapped copy-on-write: its arrays are writable and private to
    this process, and the mapping lives as long as they do."""
    if len(msg) == 1:
        return msg[0]
    head, pid, fd, layout = msg
    try:
        with open(f"/proc/{pid}/fd/{fd}", "rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    except (OSError, ValueError):
        return None
    view = memoryview(mapped)
    return pickle.loads(head, buffers=[view[o : o + n] for o, n in layout])


def _latency_task(wi: int, mbs: int, bound_args):
    """Worker side of :func:`precompute_latencies`: one workload's latencies and bounds
    at one micro-batch size, :func:`_spill` ed (the memory file stays open until this
    worker ends: the pool is stopped only after the parent has mapped every result)."""
    msg = _spill(_WORKER["evaluators"][wi].latency_state(mbs, bound_args))
    if len(msg) > 1:
        _WORKER.setdefault("spilled", []).append(msg[2])
    return msg


def precompute_latencies(evaluators, pairs, jobs: int, bound_args=None) -> None:
    """Compute the operator latencies and layer lower bounds of the ``(workload index,
    micro-batch size)`` pairs, and with ``bound_args`` ``(objective, power_budget_w,
    hbm_bytes)`` their :meth:`~phaze.joint.evaluator.WorkloadEvaluator.score_upper_bound`,
    across ``jobs`` processes (the parent and ``jobs - 1`` forked workers, which end when
    done) and keep them in the parent's evaluators.

    This is the first part of a search (its bounds need every pair) and is independent per
    pair; the :class:`WorkerPool` forked afterwards inherits the results. The results are
    the same floats as computing them in the parent."""
    pairs = list(pairs)
    if jobs < 2 or len(pairs) < 2:
        return
    own, theirs = pairs[: len(pairs) // jobs], pairs[len(pairs) // jobs :]
    executor = ProcessPoolExecutor(
        max_workers=min(jobs - 1, len(theirs)),
        mp_context=mp.get_context("fork"),
        initializer=_init_worker,
        initargs=(evaluators, os.getpid()),
    )
    procs: dict = {}
    try:
        futures = [executor.submit(_latency_task, wi, m, bound_args) for wi, m in theirs]
        procs.update(getattr(executor, "_processes", None) or {})
        for wi, m in own:  # the parent's share, while the workers do theirs
            evaluators[wi].latency_state(m, bound_args)
        for (wi, m), f in zip(theirs, futures, strict=True):
            state = _unspill(f.result())
            if state is None:  # (the worker's memory file could not be opened here)
                evaluators[wi].latency_state(m, bound_args)
            else:
                evaluators[wi].set_latency_state(m, state)
    except BrokenProcessPool:
        raise PhazeError(
            f"a search worker process died{_death_cause(procs.values())} while computing "
            f"bounds; the search stopped (rerun with fewer --jobs if memory ran out)"
        ) from None
    finally:  # done or interrupted: no worker outlives this call
        _stop(executor, procs)


def _core_keys(arch_table) -> np.ndarray:
    """One integer per architecture that identifies its cores (count and shape of the
    tensor and vector cores): architectures with equal keys share most layer schedules."""
    key = ("num_tc", "tc_width", "tc_depth", "num_vc", "vc_width")
    code = row_codes({f: getattr(arch_table, f) for f in key}, key)
    return np.unique(code, return_inverse=True)[1].reshape(-1)


def partition(archs, keys: np.ndarray, jobs: int, home: dict) -> list[list[int]]:
    """Split ``archs`` into ``jobs`` shares of about equal size, keeping architectures of
    one core key (``keys[arch]``) together and in the share (process) that had the key
    before (``home``, updated), so that each process's schedule memo sees the layers it
    has already scheduled. A group goes to its home share unless that share would exceed
    its fair size by a quarter; then to the smallest share (largest groups first).

    Examples
    --------
    >>> home = {}
    >>> partition([0, 1, 2, 3], np.array([0, 0, 1, 1]), 2, home)
    [[0, 1], [2, 3]]
    >>> partition([3, 1], np.array([0, 0, 1, 1]), 2, home)
    [[1], [3]]
    """
    groups: dict[int, list[int]] = {}
    for a in archs:
        groups.setdefault(int(keys[a]), []).append(int(a))
    fair = len(archs) / jobs
    shares: list[list[int]] = [[] for _ in range(jobs)]
    for key, members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        j = home.get(key)
        if j is None or len(shares[j]) + len(members) > 1.25 * fair + 1:
            j = min(range(jobs), key=lambda i: (len(shares[i]), i))
            home[key] = j
        shares[j].extend(members)
    return [sorted(share) for share in shares]


class WorkerPool:
    """``jobs - 1`` forked processes that schedule the layers of architectures the search
    will visit, while the parent places rows.

    :meth:`submit` splits architectures into ``jobs - 1`` shares, keeping the
    architectures of one core configuration together and with the share that had them
    before (:func:`partition`), and returns at once; :meth:`ensure` waits for the share of
    one architecture and merges it into the parent's evaluator, :meth:`drain` all of
    them; :meth:`close` stops the workers.

    Raises
    ------
    PhazeError
        From :meth:`submit`, :meth:`ensure` or :meth:`drain`, when a worker process died.
    """

    def __init__(self, evaluators, jobs: int) -> None:
        from phaze.joint.evaluator import warmup_kernels

        # compile in the parent: workers only read numba's cache
        warmup_kernels([e.workload for e in evaluators], len(evaluators[0].arch_table))
        self.evaluators = evaluators
        self.jobs = jobs
        self._keys = _core_keys(evaluators[0].arch_table)
        self._home: dict = {}
        self._executor = ProcessPoolExecutor(
            max_workers=max(1, jobs - 1),
            mp_context=mp.get_context("fork"),
            initializer=_init_worker,
            initargs=(evaluators, os.getpid()),
        )
        self._procs: dict = {}  # the workers, to report how one died
        # shares of submit() not merged yet: (workload, arch) -> future -> (workload, archs)
        self._inflight: dict = {}
        self._chunks: dict = {}

    def _cause(self, wait_s: float = 1.0) -> str:
        """How the first worker that died ended (:func:`_death_cause`)."""
        return _death_cause(self._procs.values(), wait_s)

    def close(self) -> None:
        """Stop the workers without waiting for work in flight (idempotent)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        _stop(executor, self._procs)

    def submit(self, wi: int, archs, mbs_list) -> None:
        """Start scheduling ``archs`` for workload ``wi`` at every micro-batch size in the
        workers and return at once (architectures already in flight are not sent again);
        :meth:`ensure` (or :meth:`drain`) merges the results into the parent's evaluator.
        The parent meanwhile places the rows of architectures scheduled before."""
        if self._executor is None:
            raise PhazeError("the worker pool is closed")
        archs = [a for a in archs if (wi, a) not in self._inflight]
        if not archs:
            return
        shares = partition(archs, self._keys, max(1, self.jobs - 1), self._home)
        try:
            for share in (c for c in shares if c):
                f = self._executor.submit(_schedule_chunk, wi, share, list(mbs_list))
                self._chunks[f] = (wi, share)
                for a in share:
                    self._inflight[(wi, a)] = f
            self._procs.update(getattr(self._executor, "_processes", None) or {})
        except BrokenProcessPool:
            self._broken()

    def in_flight(self, wi: int, arch: int) -> bool:
        """Whether ``arch`` of workload ``wi`` is being scheduled by :meth:`submit`."""
        return (wi, arch) in self._inflight

    def ensure(self, wi: int, arch: int) -> None:
        """Wait for the :meth:`submit` share holding ``arch`` (if any) and merge it."""
        f = self._inflight.get((wi, arch))
        if f is not None:
            self._merge(f)

    def drain(self) -> None:
        """Wait for every share still in flight and merge it (its work is counted)."""
        for f in list(self._chunks):
            self._merge(f)

    def _merge(self, f) -> None:
        wi, share = self._chunks.pop(f)
        for a in share:
            self._inflight.pop((wi, a), None)
        try:
            result = f.result()
        except BrokenProcessPool:
            self._broken()
        self._apply(wi, result)

    def _broken(self):
        """Stop the pool after a worker died and say so (raises PhazeError)."""
        cause = self._cause()  # before close() kills the survivors
        self.close()
        raise PhazeError(
            f"a search worker process died{cause}; the search stopped. Rows "
            f"computed so far are kept in the output directory: rerun the same command "
            f"to resume (with fewer --jobs if memory ran out)"
        ) from None

    def _apply(self, wi: int, result) -> None:
        """Merge one share's result into the parent's evaluator."""
        ev = self.evaluators[wi]
        layers, energies, delta = result
        for (m, a), (fwd, bwd) in layers.items():
            ev.set_layers(m, a, fwd, bwd)
        for (m, a), found in energies.items():
            ev.keep_energy(m, a, found)
        for k, v in delta.items():
            setattr(ev.cache, k, getattr(ev.cache, k) + v)
