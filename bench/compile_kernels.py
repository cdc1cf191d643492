"""CPU seconds numba spends compiling the kernels a default search uses, module by
module, from an empty cache and in one process (no second compile process), for
before/after comparisons across checkouts; with ``--warmup``, the wall seconds of the
warm-up as the default search runs it instead (``phaze._kernels.warmup``: on two or more
CPUs, the scheduler's kernels compile in a second process meanwhile).

Run: ``python bench/compile_kernels.py [--warmup]`` for this checkout, and
``PYTHONPATH=OTHER python bench/compile_kernels.py [--warmup]`` for another checkout
``OTHER``. Each run uses a new temporary ``NUMBA_CACHE_DIR`` (the one set is ignored) and
prints one line per kernel module, then the total (with ``--warmup``: one line). The
machine's speed drifts between minutes; compare checkouts in alternating runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup", action="store_true", help="time the whole warm-up (wall)")
    args = parser.parse_args()
    cache = tempfile.mkdtemp(prefix="phaze-compile-")
    os.environ["NUMBA_CACHE_DIR"] = cache  # before numba is imported

    import phaze
    from phaze import _kernels
    from phaze.joint.arch_bounds import keeps_whole_table
    from phaze.joint.evaluator import SEARCH_GRAPH_KINDS

    # what a default search warms up (phaze.joint.evaluator.warmup_kernels: no interleaved
    # plans; the paper's 29,360 architectures are too many to keep their whole latency
    # table, so the bound kernel of large spaces is in)
    archs = len(phaze.DesignSpace().enumerate())
    options = {
        "graph_kinds": SEARCH_GRAPH_KINDS,
        "interleaved": False,
        "large_spaces": not keeps_whole_table(archs),
    }
    where = os.path.dirname(phaze.__file__)
    if args.warmup:
        t0 = time.perf_counter()
        _kernels.warmup(**options)
        print(f"{'warm-up':14s} {time.perf_counter() - t0:6.1f} s wall  ({where})")
    else:
        total = 0.0
        for name in _kernels.KERNEL_MODULES:
            t0 = time.process_time()
            _kernels._warmup_module(name, **options)
            seconds = time.process_time() - t0
            total += seconds
            print(f"{name:14s} {seconds:6.1f} s CPU")
        print(f"{'total':14s} {total:6.1f} s CPU  ({where})")
    shutil.rmtree(cache, ignore_errors=True)
