"""Worker processes that compute the operator latencies and bounds a search starts with
(:func:`precompute_latencies`, ``--jobs``).

The bounds need every (workload, micro-batch size) pair before the search's first pass
can start, and each pair is independent: the parent computes a share and ``jobs - 1``
forked workers of a :class:`concurrent.futures.ProcessPoolExecutor` the rest
(docs/search.md, "``--jobs``"). The workers inherit the prepared evaluators through
``fork`` (nothing large is pickled) and end when the bounds are done; the passes that
schedule and place architectures run in the parent. Large results come back through
memory files (:func:`_spill`). Kernels are compiled in the parent before forking
(docs/architecture.md), so no two processes write numba's cache at once. Results do not
depend on ``jobs``.

Failure handling:

* a worker that dies (killed, out of memory) breaks the pool; the search stops at once with
  a :class:`~phaze.errors.PhazeError` saying so (rows of an earlier, interrupted run stay
  in the store, so rerunning the command resumes);
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

from phaze.errors import PhazeError

__all__ = ["precompute_latencies"]

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
    pair. The results are the same floats as computing them in the parent."""
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
