"""Compare the rows of two searches saved by ``bench_search_speed.py``
(``PHAZE_BENCH_ROWS``): ``python bench/compare_rows.py before.npz after.npz`` prints how
many rows each has, how many they share, and how many shared rows differ in any field
(a faster search must evaluate a subset of the rows, each unchanged)."""

import sys

import numpy as np

KEYS = ("workload", "arch", "micro_batch_size", "hbm_bytes", "recompute")


def main(before: str, after: str) -> int:
    a, b = dict(np.load(before)), dict(np.load(after))

    def index(r):
        return {tuple(r[k][i].item() for k in KEYS): i for i in range(len(r["arch"]))}

    ia, ib = index(a), index(b)
    common = set(ia) & set(ib)
    fields = [k for k in a if k not in KEYS]
    bad = 0
    for key in common:
        for f in fields:
            x, y = a[f][ia[key]], b[f][ib[key]]
            if not (x == y or (np.isnan(x) and np.isnan(y))):
                bad += 1
                if bad <= 5:
                    print("differs:", key, f, x, y)
    only_after = len(set(ib) - set(ia))
    print(
        f"rows before={len(ia)} after={len(ib)} common={len(common)} "
        f"only_after={only_after} differing={bad}"
    )
    return 1 if bad or only_after else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
