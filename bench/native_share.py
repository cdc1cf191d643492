"""Share of a search's passes spent in numba-compiled code, from a py-spy profile.

Run: ``py-spy record -r 500 --native -f raw -o gpt3.raw -- python
bench/bench_search_speed.py gpt3``, then ``python bench/native_share.py gpt3.raw``.

py-spy's ``--native`` stacks end in a frame without a symbol (``0x... (?)``) when the
sample was taken in code numba compiled at run time (it has no symbol table); the
search's passes are the samples under ``exact_search``. Prints the samples of the passes
by where they ended: numba-compiled code, the garbage collector, or anything else
(interpreted Python, numpy, the C library), then the Python functions that called the
compiled code most.
"""

from __future__ import annotations

import collections
import sys


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python bench/native_share.py PROFILE.raw (py-spy record -f raw)")
    kinds: collections.Counter = collections.Counter()
    callers: collections.Counter = collections.Counter()
    try:
        f = open(sys.argv[1])  # noqa: SIM115 (closed below)
    except OSError as e:
        sys.exit(f"{sys.argv[1]}: cannot read the profile ({e.strerror})")
    with f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            frames = stack.split(";")
            if not any(fr.startswith("exact_search ") for fr in frames):
                continue
            try:
                n = int(count)
            except ValueError:
                sys.exit(f"{sys.argv[1]}: not a py-spy raw profile (a line ends in {count!r})")
            leaf = frames[-1]
            if leaf.endswith("(?)"):
                kinds["numba-compiled code"] += n
                python = [fr for fr in frames if ".py:" in fr]
                callers[python[-1] if python else "?"] += n
            elif "gc_collect" in leaf:
                kinds["garbage collector"] += n
            else:
                kinds["Python, numpy and the rest"] += n
    total = sum(kinds.values())
    if total == 0:
        sys.exit(f"{sys.argv[1]}: no sample under exact_search (was it recorded with --native?)")
    print(f"samples in the passes: {total}")
    for kind, n in kinds.most_common():
        print(f"  {kind}: {n} ({n / total:.0%})")
    print("compiled code, by calling Python function:")
    for caller, n in callers.most_common(8):
        print(f"  {n / total:5.1%}  {caller}")


if __name__ == "__main__":
    main()
