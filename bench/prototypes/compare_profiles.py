"""Where a two-process search spends more CPU than a one-process one: gpt3-175b on the
paper's space, profiled with cProfile in one process, then with ``split-at-meeting.diff``
applied in both processes (its child writes its own profile), function by function.

Run from the repository's root, with ``bench/prototypes/split-at-meeting.diff`` applied
(``git apply bench/prototypes/split-at-meeting.diff``; remove it after with ``git checkout
-- phaze && rm phaze/joint/split.py``)::

    python bench/prototypes/compare_profiles.py

Prints the total of the functions' own times (cProfile's ``tottime``; the profiler adds
to them, more to small calls) and the functions whose own time grew most. The parent's
profile does not count the bounds worker, so the two-process total is a lower bound.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import tempfile


def _own_times(paths) -> dict:
    out: dict = {}
    for path in paths:
        for (file, _, name), (_, _, own, _, _) in pstats.Stats(path).stats.items():
            key = f"{os.path.basename(file)}:{name}"
            out[key] = out.get(key, 0.0) + own
    return out


def main() -> None:
    import phaze
    from phaze import _kernels

    _kernels.warmup()
    workload = phaze.Workload(phaze.preset("gpt3-175b"))
    with tempfile.TemporaryDirectory() as tmp:
        one, parent, child = (os.path.join(tmp, f) for f in ("one", "parent", "child"))
        for jobs, path in ((1, one), (2, parent)):
            phaze.search(workload, phaze.Cluster(), jobs=jobs)  # warm
            os.environ["PHAZE_PROFILE_CHILD"] = child
            cProfile.runctx(
                "phaze.search(workload, phaze.Cluster(), jobs=jobs)",
                globals(),
                {"phaze": phaze, "workload": workload, "jobs": jobs},
                path,
            )
            os.environ.pop("PHAZE_PROFILE_CHILD")
        if not os.path.exists(child):
            raise SystemExit("no child profile: is split-at-meeting.diff applied?")
        a, b = _own_times([one]), _own_times([parent, child])
    print(f"own time in all: one process {sum(a.values()):.3f} s, two {sum(b.values()):.3f} s")
    grew = sorted(set(a) | set(b), key=lambda k: a.get(k, 0.0) - b.get(k, 0.0))
    print(f"{'function':60s} {'one':>7s} {'two':>7s}")
    for key in grew[:20]:
        print(f"{key:60s} {a.get(key, 0.0):7.3f} {b.get(key, 0.0):7.3f}")


if __name__ == "__main__":
    main()
