"""CPU seconds numba spends compiling the kernels a default search uses, module by
module, from an empty cache and in one process (no second compile process), for
before/after comparisons across checkouts.

Run: ``python bench/compile_kernels.py`` for this checkout, and
``PYTHONPATH=OTHER python bench/compile_kernels.py`` for another checkout ``OTHER``.
Each run uses a new temporary ``NUMBA_CACHE_DIR`` (the one set is ignored) and prints
one line per kernel module, then the total. The machine's speed drifts between minutes;
compare checkouts in alternating runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

if __name__ == "__main__":
    cache = tempfile.mkdtemp(prefix="phaze-compile-")
    os.environ["NUMBA_CACHE_DIR"] = cache  # before numba is imported

    import phaze
    from phaze import _kernels
    from phaze.joint.evaluator import SEARCH_GRAPH_KINDS

    # what a default search warms up (phaze.joint.evaluator.warmup_kernels: no interleaved
    # plans, a space of at most LATENCY_CHUNK_ARCHS), one module after the other here
    options = {"graph_kinds": SEARCH_GRAPH_KINDS, "interleaved": False, "large_spaces": False}
    total = 0.0
    for name in _kernels.KERNEL_MODULES:
        t0 = time.process_time()
        _kernels._warmup_module(name, **options)
        seconds = time.process_time() - t0
        total += seconds
        print(f"{name:14s} {seconds:6.1f} s CPU")
    print(f"{'total':14s} {total:6.1f} s CPU  ({os.path.dirname(phaze.__file__)})")
    shutil.rmtree(cache, ignore_errors=True)
