"""CPU and wall time of ``place_arrays`` on gpt3-175b_1024dev_adam_recompute, and CPU
time of its two kernels on a 98-layer chain, for before/after comparisons across
checkouts.

Run: ``python bench/cpu_place_arrays.py`` for this checkout, and
``PYTHONPATH=OTHER python bench/cpu_place_arrays.py OTHER`` for another checkout ``OTHER``
(its ``bench/bench_placement.py`` prepares the same arguments; kernels without the
training-accounting arguments are called the old way). Prints the best of 5 rounds of
100 ``place_arrays`` calls, and the best of 7 rounds of 2,000 ``chain_stage_tables`` and
300 ``dp_solve`` calls, after warm-up.
"""

from __future__ import annotations

import inspect
import sys
import time
from pathlib import Path

import numpy as np

root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
sys.path.insert(0, str(root / "bench"))

import bench_placement as bp  # noqa: E402

from phaze import _kernels  # noqa: E402
from phaze._kernels import dp, stage_tables  # noqa: E402
from phaze.placement import load_instance, place_arrays  # noqa: E402


def best_cpu_s(fn, calls: int, rounds: int) -> tuple[float, float]:
    """Least (CPU, wall) seconds per call over ``rounds`` rounds of ``calls`` calls."""
    out = []
    for _ in range(rounds):
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(calls):
            fn()
        out.append(((time.process_time() - c0) / calls, (time.perf_counter() - w0) / calls))
    return min(o[0] for o in out), min(o[1] for o in out)


_kernels.warmup()
args, kw = bp._array_args(load_instance(bp.DATA / f"{bp.GPT3}.instance.json"))
place_arrays(*args, **kw)
cpu, wall = best_cpu_s(lambda: place_arrays(*args, **kw), 100, 5)
print(f"{root}: place_arrays {cpu * 1e3:.3f} ms CPU, {wall * 1e3:.3f} ms wall per call")

n = 98
rng = np.random.default_rng(1)
f = rng.uniform(0.1, 1.0, n)
link = np.full(n + 1, 1e7)
link[0] = link[n] = 0.0
new = "state_factor" in inspect.signature(stage_tables.chain_stage_tables.py_func).parameters
targs = (f, 2 * f, rng.uniform(1e8, 1e9, n), rng.uniform(1e8, 1e9, n), np.ones(n, bool))
targs += (link, link, 4e9, 80e9, 1024, 8, True)
targs += (3.0, f, np.zeros(n), False, True) if new else (True,)
tabs = stage_tables.chain_stage_tables(*targs)
dargs = (1024, 2048, np.full(1025, 4e9), 8, 0, np.zeros(1025)) if new else (1024, 2048, 4e9, 8, 0)
if "d_best_s" in inspect.signature(dp.dp_solve.py_func).parameters:  # the final round's terms
    dargs += (4.0, np.zeros(0), 0.0, 0.0, 1, 1024, np.inf, np.zeros(0))
dp.dp_solve(*tabs, *dargs)
table_s = best_cpu_s(lambda: stage_tables.chain_stage_tables(*targs), 2000, 7)[0]
dp_s = best_cpu_s(lambda: dp.dp_solve(*tabs, *dargs), 300, 7)[0]
print(f"chain_stage_tables {table_s * 1e6:.1f} us CPU, dp_solve {dp_s * 1e6:.1f} us CPU")
