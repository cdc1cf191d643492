"""CPU and wall time of ``place_arrays`` on gpt3-175b_1024dev_adam_recompute, for
before/after comparisons across checkouts.

Run: ``python bench/cpu_place_arrays.py`` for this checkout, and
``PYTHONPATH=OTHER python bench/cpu_place_arrays.py OTHER`` for another checkout ``OTHER``
(its ``bench/bench_placement.py`` prepares the same arguments). Prints the best of
5 rounds of 100 calls after warm-up.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
sys.path.insert(0, str(root / "bench"))

import bench_placement as bp  # noqa: E402

from phaze import _kernels  # noqa: E402
from phaze.placement import load_instance, place_arrays  # noqa: E402

_kernels.warmup()
args, kw = bp._array_args(load_instance(bp.DATA / f"{bp.GPT3}.instance.json"))
place_arrays(*args, **kw)
rounds = []
for _ in range(5):
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(100):
        place_arrays(*args, **kw)
    rounds.append(((time.process_time() - c0) / 100, (time.perf_counter() - w0) / 100))
cpu, wall = min(r[0] for r in rounds), min(r[1] for r in rounds)
print(f"{root}: {cpu * 1e3:.3f} ms CPU, {wall * 1e3:.3f} ms wall per call (best of 5 x 100)")
