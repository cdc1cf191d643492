"""Where the frontier pass spends its time, by area, and what splitting its smallest
architectures between two processes would cost.

Run: ``python bench/frontier_by_area.py [--space default|large] [--bins 20]
[--interleave 0.02 0.05]`` (gpt3-175b, ``exact``, one process). Prints the seconds the
frontier pass spends (``SearchRun.design`` and ``SearchRun.prefetch`` calls) on each
equal share of the architectures by area, smallest first, with the cumulative share.
Each ``--interleave S`` then reruns the search with the smallest share ``S`` of the
architectures split between two simulated processes, alternately in area order, each
with its own schedule memo and its own frontier value over its half (the rest of the
pass from the larger of the two values, with the first half's memo), and prints the
layer schedules, rows and designs against the one-process search, and each half's
seconds.

This is a diagnostic: it wraps internal functions (``phaze.joint.strategy.frontier_pass``
and ``phaze.joint.evaluator.WorkloadEvaluator.schedule``), so it follows the code of the
checkout it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", choices=("large", "default"), default="default")
    parser.add_argument("--bins", type=int, default=20)
    parser.add_argument("--interleave", type=float, nargs="*", default=[])
    args = parser.parse_args()

    import bench_large_space

    import phaze
    import phaze.joint.evaluator as evaluator
    import phaze.joint.strategy as strategy
    from phaze import _kernels

    _kernels.warmup()
    table, settings = bench_large_space.space_and_settings(args.space)
    area = np.asarray(table.area_um2, dtype=np.float64)
    n = area.shape[0]
    by_area = np.lexsort((np.arange(n), area))
    rank = np.empty(n, dtype=np.int64)
    rank[by_area] = np.arange(n)
    spent = np.zeros(args.bins)
    state: dict = {"slice": [], "half": {}, "memos": None, "seconds": {}}
    real_pass, real_schedule = strategy.frontier_pass, evaluator.WorkloadEvaluator.schedule

    def timed_pass(run, order, exhaustive, reached=0.0):
        design, prefetch = run.design, run.prefetch

        def timed_design(arch, *a, **k):
            t = time.perf_counter()
            out = design(arch, *a, **k)
            spent[rank[arch] * args.bins // n] += time.perf_counter() - t
            return out

        def timed_prefetch(archs, schedule_also=()):
            t = time.perf_counter()
            prefetch(archs, schedule_also)
            if archs:
                spent[rank[archs[0]] * args.bins // n] += time.perf_counter() - t

        run.design, run.prefetch = timed_design, timed_prefetch
        if not state["slice"]:
            return real_pass(run, order, exhaustive, reached)
        value, evaluated = np.zeros(n), np.zeros(n, dtype=bool)
        values = []
        for half in (0, 1):  # each simulated process: its half, its own frontier value
            t = time.perf_counter()
            part = [a for a in state["slice"] if state["half"][a] == half]
            v, e, r = real_pass(run, part, exhaustive, 0.0)
            value[e], evaluated[e] = v[e], True
            values.append(r)
            state["seconds"][half] = time.perf_counter() - t
        t = time.perf_counter()
        v, e, r = real_pass(run, order[len(state["slice"]) :], exhaustive, max(values))
        value[e], evaluated[e] = v[e], True
        state["seconds"]["rest"] = time.perf_counter() - t
        return value, evaluated, r

    def split_schedule(self, mbs, archs):
        memos = state["memos"]
        if memos is None:
            return real_schedule(self, mbs, archs)
        for half in (0, 1):
            part = [a for a in archs if state["half"].get(int(a), 0) == half]
            if part:
                self.cache.segments = memos[half]
                real_schedule(self, mbs, part)
        self.cache.segments = memos[0]

    strategy.frontier_pass = timed_pass
    evaluator.WorkloadEvaluator.schedule = split_schedule

    def run() -> tuple:
        t = time.perf_counter()
        r = phaze.search(
            phaze.Workload(phaze.preset("gpt3-175b")), phaze.Cluster(), table, **settings
        )
        c = r.counters
        work = c["layer_schedules"]
        return time.perf_counter() - t, work, len(r.rows["arch"]), c["designs_evaluated"], r

    wall, work, rows, designs, one = run()
    print(f"one process: {wall:.2f} s; frontier pass timed {spent.sum():.2f} s")
    share = 100 / args.bins
    cumulative = np.cumsum(spent) / max(spent.sum(), 1e-12)
    for i, (s, c) in enumerate(zip(spent, cumulative, strict=True)):
        lo, hi = share * i, share * (i + 1)
        print(f"  smallest {lo:5.1f}-{hi:5.1f}%: {s:6.3f} s (cumulative {c:.0%})")
    for s in args.interleave:
        state["slice"] = by_area[: int(s * n)].tolist()
        state["half"] = {a: i % 2 for i, a in enumerate(state["slice"])}
        state["memos"] = ({}, {})
        _, w, rw, d, two = run()
        same = two.frontier.tolist() == one.frontier.tolist() and two.best == one.best
        sec = state["seconds"]
        print(
            f"smallest {s:.0%} split alternately: {w} layer schedules ({w / work - 1:+.1%}), "
            f"{rw} rows ({rw - rows:+d}), {d} designs ({d - designs:+d}); halves "
            f"{sec[0]:.2f} s / {sec[1]:.2f} s, the rest {sec['rest']:.2f} s; best and "
            f"frontier the same: {same}"
        )


if __name__ == "__main__":
    main()
