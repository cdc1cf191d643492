"""The ``exact`` strategy in two processes (``--jobs 2`` or more), each over an area region.

The architectures are split by area (:func:`split_by_area`): the parent process searches
the :data:`LOWER_SHARE` of smallest area, a forked child the rest. Each builds its
evaluators over its own region only, so each computes the bounds of its own
architectures, and each keeps its own schedule memo (regions of different areas share
few layer schedules: docs/search.md, "``--jobs``").

* The child runs the best-first pass over its region (:func:`~phaze.joint.strategy.
  best_first_pass`), sends the parent its best design, waits for the value the parent's
  frontier pass reached, and runs the frontier pass over its region from that value: in
  a one-process search the frontier pass enters the child's region with exactly that
  value, so the child evaluates what it would have.
* The parent runs the frontier pass over its region from 0, as a one-process search does,
  and sends the value it reached. Every design of its region is worth at most that value,
  so only when it reaches the child's best (rare: the best design has a large area) does
  the parent run the best-first pass over its region too; the better of the two is the
  best design (same order as :func:`~phaze.joint.strategy.better`).

The best design and the frontier are therefore those of a one-process search. The rows
evaluated can differ a little: the best-first pass of a one-process search also visits
architectures of the parent's region before it has found the best design. Every row is
computed exactly either way.

The child's rows reach the parent through a pipe at each of the child's flushes; the
parent writes them to the result store (and counts their progress) at its own flushes,
so an interrupted search keeps them as it keeps its own. Failure handling is that of
the bounds workers (:mod:`phaze.joint.workers`): the child ignores ``SIGINT`` and dies
with its parent; a child that dies or fails stops the search with a
:class:`~phaze.errors.PhazeError` saying so; the parent kills the child when it stops for
any reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import queue
import signal
import struct
import threading
import time
from typing import NamedTuple

import numpy as np

from phaze.errors import PhazeError
from phaze.joint.details import design_details, own_best_design
from phaze.joint.evaluator import WorkloadEvaluator
from phaze.joint.run_state import Design, RowKey, SearchRun, stored_rows, work_counters
from phaze.joint.strategy import (
    area_order,
    best_first_order,
    best_first_pass,
    better,
    evaluated_frontier,
    frontier_pass,
)
from phaze.joint.workers import _die_with_parent
from phaze.rows import ROW_FIELDS, PlanRow
from phaze.schedule import ScheduleCache

__all__ = ["LOWER_SHARE", "MIN_ARCHS", "RegionResult", "exact_in_regions", "split_by_area"]

#: Share of the architectures, those of smallest area, that the parent searches. The
#: frontier pass spends most of its time on the smallest architectures and the child
#: has the best-first pass besides; 0.3 balanced the two processes for gpt3-175b on a
#: million-architecture space (bench/README.md, "``--jobs 2``: two area regions").
LOWER_SHARE = 0.3

#: Spaces with fewer architectures are searched in one process (forking costs more).
MIN_ARCHS = 64

_FRAME = struct.Struct("<q")


def split_by_area(area_um2: np.ndarray, share: float | None = None) -> tuple | None:
    """``(lower, upper)``: sorted architecture indices of the parent's region (the
    ``share`` (default :data:`LOWER_SHARE`) first in the frontier pass's order, by area
    then index) and of the child's; None when either would be empty or the space has
    fewer than :data:`MIN_ARCHS` architectures."""
    area = np.asarray(area_um2, dtype=np.float64)
    n = area.shape[0]
    k = int(n * (LOWER_SHARE if share is None else share))
    if n < MIN_ARCHS or k <= 0 or k >= n:
        return None
    order = np.lexsort((np.arange(n), area))
    return np.sort(order[:k]), np.sort(order[k:])


class RegionResult(NamedTuple):
    """What :func:`exact_in_regions` found, in the whole space's architecture indices."""

    best: Design | None
    frontier: np.ndarray
    frontier_value: np.ndarray
    rows: dict
    counters: dict
    details: tuple


class _RegionStore:
    """The result store as one region's :class:`SearchRun` writes to it: rows of the
    region's architectures (0 .. len(ids) - 1) handed to ``write`` in the space's
    indices. (A region's run is given its stored rows, loaded once before the fork.)"""

    def __init__(self, ids: np.ndarray, write) -> None:
        self._ids = ids
        self._write = write

    def add(self, model: str, mbs: int, hbm_bytes: int, recompute: bool, archs, values) -> int:
        ids = self._ids[np.asarray(archs, np.int64)]
        self._write(model, mbs, hbm_bytes, recompute, ids, values)
        return len(archs)


def _send(fd: int, msg) -> None:
    data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_FRAME.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, n: int) -> bytes | None:
    out = bytearray()
    while len(out) < n:
        chunk = os.read(fd, min(n - len(out), 1 << 20))
        if not chunk:
            return None
        out += chunk
    return bytes(out)


def _receive(fd: int):
    """The next message on ``fd``, or None at the end of the pipe."""
    head = _read_exactly(fd, _FRAME.size)
    if head is None:
        return None
    body = _read_exactly(fd, _FRAME.unpack(head)[0])
    return None if body is None else pickle.loads(body)


def _global(design: Design | None, ids: np.ndarray) -> Design | None:
    return None if design is None else dataclasses.replace(design, arch=int(ids[design.arch]))


class _Region:
    """One process's share: evaluators and a :class:`SearchRun` over the architectures
    ``ids`` of ``arch_table``."""

    def __init__(self, args: dict, ids: np.ndarray, stored: dict, write, progress, on_flush):
        self.ids = ids
        local = np.full(len(args["arch_table"]), -1, dtype=np.int64)
        local[ids] = np.arange(ids.size)
        rows = {  # the region's stored rows, in its own indices
            k._replace(arch=int(local[k.arch])): v for k, v in stored.items() if local[k.arch] >= 0
        }
        table = args["arch_table"].take(ids)
        self.area = np.asarray(table.area_um2, dtype=np.float64)
        self.cache = ScheduleCache()
        evaluators = [
            WorkloadEvaluator(w, args["cluster"], table, args["mbs"], self.cache)
            for w in args["workloads"]
        ]
        self.run = SearchRun(
            evaluators,
            args["hbm"],
            args["mbs"],
            args["rc"],
            _RegionStore(ids, write),
            progress,
            rows=rows,
            flush_every_s=args["flush_every_s"],
            objective=args["objective"],
            power_budget_w=args["power_budget_w"],
            on_flush=on_flush,
        )
        self.run.counters["stored_rows_reused"] = len(rows)

    def best_first(self) -> Design | None:
        order = best_first_order(self.area, self.run.design_ub)
        return best_first_pass(self.run, self.area, order, False)

    def frontier(self, reached: float) -> tuple[np.ndarray, np.ndarray, float]:
        """The frontier pass from ``reached``: evaluated architectures (space indices),
        their values, and the value reached."""
        value, evaluated, reached = frontier_pass(self.run, area_order(self.area), False, reached)
        idx = np.flatnonzero(evaluated)
        return self.ids[idx], value[idx], reached

    def own_best(self) -> list:
        """Each workload's best design of its own in this region (space indices), with
        several workloads; else an empty list."""
        if len(self.run.ev) < 2:
            return []
        return [
            _global(own_best_design(self.run, wi, self.area, "exact"), self.ids)
            for wi in range(len(self.run.ev))
        ]

    def tally(self) -> dict:
        """The work counters of this region (summed over the two by the parent)."""
        return work_counters(self.run, self.cache)


def _child_main(args: dict, ids: np.ndarray, stored: dict, to_parent: int, from_parent: int):
    """The child's share (see the module docstring); never returns."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _die_with_parent(args["parent_pid"])
        designs = [0]

        def write(model, mbs, hbm_bytes, recompute, archs, values):
            _send(to_parent, ("rows", model, mbs, hbm_bytes, recompute, archs.tolist(), values))

        def count(k: int) -> None:
            designs[0] += k

        def report() -> None:
            if designs[0]:
                _send(to_parent, ("progress", designs[0]))
                designs[0] = 0

        region = _Region(args, ids, stored, write, count, report)
        _send(to_parent, ("best", _global(region.best_first(), ids)))
        reached = _receive(from_parent)
        if reached is None:  # the parent is gone
            return
        archs, values, _ = region.frontier(reached)
        own = region.own_best()
        region.run.flush()
        report()
        _send(to_parent, ("done", archs, values, own, region.tally()))
        code = 0
    except BaseException as exc:  # reported to the parent, which stops the search
        with contextlib.suppress(BaseException):
            _send(to_parent, ("error", f"{type(exc).__name__}: {exc}"))
    finally:
        os._exit(code)


class _Child:
    """The parent's side of the child process: a thread reads its messages into a queue;
    :meth:`handle` acts on them in the parent's main thread."""

    def __init__(self, args, ids, stored, store, progress) -> None:
        self.store, self.progress = store, progress
        self.rows: dict = {}
        self.best: tuple | None = None  # (Design or None,) once received
        self.done: tuple | None = None
        self._messages: queue.SimpleQueue = queue.SimpleQueue()
        c2p_r, c2p_w = os.pipe()
        p2c_r, p2c_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child (its work is checked by the parent)
            os.close(c2p_r)
            os.close(p2c_w)
            _child_main(args, ids, stored, c2p_w, p2c_r)
        os.close(c2p_w)
        os.close(p2c_r)
        self.pid, self._from, self._to = pid, c2p_r, p2c_w
        self._reader = threading.Thread(target=self._read, name="phaze-region-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                msg = _receive(self._from)
            except (OSError, EOFError, pickle.UnpicklingError):
                msg = None
            self._messages.put(("eof",) if msg is None else msg)
            if msg is None:
                return

    def send(self, obj) -> None:
        try:
            _send(self._to, obj)
        except OSError:  # the child is gone: the next message read says how
            pass

    def handle(self, msg) -> None:
        kind = msg[0]
        if kind == "rows":
            _, model, mbs, hbm_bytes, recompute, archs, values = msg
            if self.store is not None:
                self.store.add(model, mbs, hbm_bytes, recompute, archs, values)
            cols = [values[f] for f in ROW_FIELDS]
            for i, a in enumerate(archs):
                key = RowKey(model, a, mbs, hbm_bytes, recompute)
                self.rows[key] = PlanRow(*(c[i] for c in cols))
        elif kind == "progress":
            if self.progress is not None:
                self.progress(msg[1])
        elif kind == "best":
            self.best = (msg[1],)
        elif kind == "done":
            self.done = msg[1:]
        elif kind == "error":
            raise PhazeError(f"the search's second process failed: {msg[1]}; the search stopped")
        else:  # "eof" before "done": the child died
            if self.done is None:
                raise PhazeError(
                    f"a search worker process died{self._death_cause()} while searching its "
                    f"share of the architectures; the search stopped (rerun with --jobs 1 "
                    f"if memory ran out)"
                )

    def drain(self) -> None:
        """Act on every message received so far."""
        while True:
            try:
                msg = self._messages.get_nowait()
            except queue.Empty:
                return
            self.handle(msg)

    def wait(self, ready) -> None:
        """Act on messages until ``ready()`` is true."""
        while not ready():
            try:
                msg = self._messages.get(timeout=0.2)
            except queue.Empty:
                continue
            self.handle(msg)

    def _death_cause(self, wait_s: float = 1.0) -> str:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return ""
            if pid:
                self.pid = -1
                if os.WIFSIGNALED(status):
                    return f" (signal {os.WTERMSIG(status)})"
                code = os.WEXITSTATUS(status)
                return f" (exit status {code})" if code else ""
            if time.monotonic() >= deadline:
                return ""
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill the child if it still runs, reap it and close the pipes."""
        if self.pid > 0:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = -1
        with contextlib.suppress(OSError):
            os.close(self._to)
        self._reader.join(timeout=10)
        with contextlib.suppress(OSError):
            os.close(self._from)


def exact_in_regions(
    workloads,
    cluster,
    arch_table,
    template,
    mbs,
    hbm,
    rc,
    store,
    progress,
    flush_every_s: float,
    objective: str,
    power_budget_w,
    regions: tuple,
) -> RegionResult:
    """The ``exact`` strategy with the architectures split into ``regions`` (from
    :func:`split_by_area`), the upper one searched by a forked child (module docstring).
    Kernels must be compiled before (the two processes then only read numba's cache)."""
    lower, upper = regions
    args = {
        "workloads": workloads,
        "cluster": cluster,
        "arch_table": arch_table,
        "mbs": mbs,
        "hbm": hbm,
        "rc": rc,
        "flush_every_s": flush_every_s,
        "objective": objective,
        "power_budget_w": power_budget_w,
        "parent_pid": os.getpid(),
    }
    names = [w.name for w in workloads]
    stored = {} if store is None else stored_rows(store, names, mbs, hbm, rc)
    area = np.asarray(arch_table.area_um2, dtype=np.float64)
    child = _Child(args, upper, stored, store, progress)
    try:

        def write(model, mbs_, hbm_bytes, recompute, archs, values):
            if store is not None:
                store.add(model, mbs_, hbm_bytes, recompute, archs, values)

        region = _Region(args, lower, stored, write, progress, child.drain)
        archs, values, reached = region.frontier(0.0)
        child.send(reached)
        own = region.own_best()
        child.wait(lambda: child.best is not None)
        best = child.best[0]
        if best is None or reached >= best.value:  # this region may hold the best design
            mine = _global(region.best_first(), lower)
            if mine is not None and better(best, mine, area):
                best = mine
        region.run.flush()
        details = ()
        if best is not None and len(workloads) == 1:  # while the child ends its passes
            details = _details(args, best, template, None, region.cache)
        child.wait(lambda: child.done is not None)
        child_archs, child_values, child_own, tally = child.done
    finally:
        child.stop()
    rows = dict(stored)  # (the child sends only the rows it computes)
    rows.update((k._replace(arch=int(lower[k.arch])), v) for k, v in region.run.rows.items())
    rows.update(child.rows)
    n = area.shape[0]
    arch_value = np.zeros(n)
    evaluated = np.zeros(n, dtype=bool)
    for a, v in ((archs, values), (child_archs, child_values)):
        arch_value[a], evaluated[a] = v, True
    idx = evaluated_frontier(area, arch_value, evaluated)
    if best is not None and len(workloads) > 1:  # each workload's own best: the better one
        own_designs = [
            b if a is None or (b is not None and better(a, b, area)) else a
            for a, b in zip(own, child_own, strict=True)
        ]
        details = _details(args, best, template, own_designs, region.cache)
    counters = region.tally()  # (after the details, as with one process)
    for name, v in tally.items():
        counters[name] = max(counters[name], v) if name == "max_solve_s" else counters[name] + v
    counters["designs_pruned"] = int(n - evaluated.sum())
    return RegionResult(best, idx, arch_value[idx], rows, counters, details)


def _details(args, best: Design, template, own_designs, cache) -> tuple:
    """:func:`~phaze.joint.details.design_details` of ``best``, from evaluators over its
    architecture alone (neither process has evaluators over the whole space; the plans
    are placed again, not read from rows)."""
    ids = np.array([best.arch], dtype=np.int64)
    table = args["arch_table"].take(ids)
    evaluators = [
        WorkloadEvaluator(w, args["cluster"], table, args["mbs"], cache) for w in args["workloads"]
    ]
    run = SearchRun(
        evaluators,
        args["hbm"],
        args["mbs"],
        args["rc"],
        None,
        None,
        objective=args["objective"],
        power_budget_w=args["power_budget_w"],
    )
    local = dataclasses.replace(best, arch=0)
    return design_details(
        run,
        local,
        np.asarray(table.area_um2, dtype=np.float64),
        "exact",
        args["cluster"],
        template,
        args["mbs"],
        args["rc"],
        cache,
        own_designs=own_designs,
    )
