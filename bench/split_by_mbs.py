"""What splitting a search's passes by micro-batch size between processes would cost and
gain: the work each micro-batch size takes in the passes, and the layer schedules
computed when each group of micro-batch sizes keeps its own schedule memo (as it would
in a process of its own).

Run: ``python bench/split_by_mbs.py [--space large|default] [--groups 1,8/2,4 ...]``
(gpt3-175b; ``large`` is the million-architecture space of ``bench_large_space.py``).
Prints, per micro-batch size, the seconds spent scheduling layers
(``WorkloadEvaluator.schedule``) and placing rows (``WorkloadEvaluator.exact``) in a
one-process search, then for each grouping the layer schedules computed with one memo
per group and each group's share of the timed seconds.

This is a diagnostic: it wraps internal methods (``phaze.joint.evaluator``), so it follows
the code of the checkout it runs. The search itself is unchanged (same rows); a grouping
only gives each group's scheduling calls a memo of their own.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _groups(text: str) -> tuple[tuple[int, ...], ...]:
    try:
        out = tuple(tuple(int(x) for x in g.split(",")) for g in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--groups {text!r}: expected micro-batch sizes like 1,8/2,4"
        ) from None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", choices=("large", "default"), default="default")
    parser.add_argument(
        "--groups", type=_groups, nargs="*", default=[_groups("1,8/2,4"), _groups("1,2/4,8")]
    )
    args = parser.parse_args()

    import bench_large_space

    import phaze
    import phaze.joint.evaluator as evaluator
    from phaze import _kernels

    _kernels.warmup()
    space, settings = bench_large_space.space_and_settings(args.space)
    cls = evaluator.WorkloadEvaluator
    schedule, exact = cls.schedule, cls.exact
    seconds: collections.Counter = collections.Counter()
    memo_of: dict = {}  # micro-batch size -> its group's own memo (empty: one memo)

    def timed_schedule(self, mbs, archs):
        if memo_of:
            self.cache.segments = memo_of[mbs]
        t = time.perf_counter()
        schedule(self, mbs, archs)
        seconds["schedule", mbs] += time.perf_counter() - t

    def timed_exact(self, mbs, arch, hbm_bytes, recompute):
        t = time.perf_counter()
        out = exact(self, mbs, arch, hbm_bytes, recompute)
        seconds["place", mbs] += time.perf_counter() - t
        return out

    cls.schedule, cls.exact = timed_schedule, timed_exact

    def run() -> tuple[float, int]:
        t = time.perf_counter()
        r = phaze.search(
            phaze.Workload(phaze.preset("gpt3-175b")), phaze.Cluster(), space, **settings
        )
        c = r.counters
        return time.perf_counter() - t, c["layer_schedules"]

    wall, work = run()
    mbs_all = sorted({m for _, m in seconds})
    per = {m: seconds["schedule", m] + seconds["place", m] for m in mbs_all}
    print(f"one process, one memo: {wall:.2f} s, {work} layer schedules")
    for m in mbs_all:
        print(
            f"  micro-batch {m}: scheduling {seconds['schedule', m]:.3f} s, "
            f"placing {seconds['place', m]:.3f} s"
        )
    timed = sum(per.values())
    print(f"  timed in all: {timed:.3f} s of {wall:.2f} s")
    for groups in args.groups:
        memo_of.clear()
        for g in groups:
            memo = {}
            for m in g:
                memo_of[m] = memo
        name = " / ".join(",".join(map(str, g)) for g in groups)
        missing = [m for m in mbs_all if m not in memo_of]
        if missing:
            print(f"groups {name}: micro-batch sizes {missing} are in no group; skipped")
            continue
        _, split_work = run()
        shares = [sum(per[m] for m in g if m in per) / timed for g in groups]
        print(
            f"groups {name}: {split_work} layer "
            f"schedules ({split_work / work - 1:+.1%}); shares of the timed seconds "
            + ", ".join(f"{s:.0%}" for s in shares)
        )


if __name__ == "__main__":
    main()
