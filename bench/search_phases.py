"""Where a search's time goes, phase by phase: the bounds, the best-first pass and the
frontier pass.

Run: ``python bench/search_phases.py [--jobs N] [--space large|default]`` (gpt3-175b;
``large`` is the million-architecture space of ``bench_large_space.py``). Prints one
line per phase boundary (wall seconds since the search started, the CPU seconds of the
process that prints it), then the rows and the layer schedules computed. With ``--jobs
2`` or more, ``exact`` splits the space by area between two processes, and each line
says which process (``parent`` or ``child``) reached which step over its own region.

This is a diagnostic: it times the search by wrapping internal functions
(``phaze.joint.workers``, ``phaze.joint.regions``, ``phaze.joint.run_state``,
``phaze.joint.strategy``), so it
follows the code of the checkout it runs, and the timers add a little overhead.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--space", choices=("large", "default"), default="large")
    args = parser.parse_args()

    import bench_large_space

    import phaze
    import phaze.joint.run_state as run_state
    import phaze.joint.strategy as strategy
    import phaze.joint.workers as workers
    from phaze import _kernels

    _kernels.warmup()
    start = [time.perf_counter()]

    def mark(what: str) -> None:
        print(
            f"{time.perf_counter() - start[0]:7.2f} s  cpu {time.process_time():7.2f} s  {what}",
            flush=True,
        )

    precompute = workers.precompute_latencies
    import phaze.joint.regions as regions

    parent = os.getpid()

    def region_step(name: str, real):
        # `exact` with --jobs 2: each process's steps over its own area region (the
        # child's lines say so; its CPU time is the child's)
        def step(self, *a, **k):
            who = "parent" if os.getpid() == parent else "child"
            mark(f"{who}: {name} starts")
            out = real(self, *a, **k)
            mark(f"{who}: {name} done")
            return out

        return step

    regions._Region.__init__ = region_step("bounds of its region", regions._Region.__init__)
    regions._Region.best_first = region_step("best-first pass", regions._Region.best_first)
    regions._Region.frontier = region_step("frontier pass", regions._Region.frontier)

    def timed_precompute(*a, **k):
        mark("bounds start (split over the processes)")
        precompute(*a, **k)
        mark("bounds done")

    init = run_state.SearchRun.__init__

    def timed_init(self, *a, **k):
        init(self, *a, **k)
        mark("SearchRun ready (bounds done)")

    ahead = strategy._candidates_ahead
    first = [True]

    def marked_ahead(*a):
        if first[0]:
            first[0] = False
            mark("pass 2 (frontier) starts")
        return ahead(*a)

    workers.precompute_latencies = timed_precompute
    run_state.SearchRun.__init__ = timed_init
    strategy._candidates_ahead = marked_ahead

    space, settings = bench_large_space.space_and_settings(args.space)
    start[0] = time.perf_counter()
    mark("search starts")
    result = phaze.search(
        phaze.Workload(phaze.preset("gpt3-175b")),
        phaze.Cluster(),
        space,
        jobs=args.jobs,
        **settings,
    )
    mark("search done")
    c = result.counters
    print(
        f"rows {len(result.rows['arch'])}; layer schedules computed "
        f"{c['layer_schedules']} (closed by bounds "
        f"{c['bound_closed']}, enumerated {c['enumerated']}, CBC {c['solved']})"
    )


if __name__ == "__main__":
    main()
