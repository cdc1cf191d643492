"""The README's Python examples run as written, asserting invariants, not typed-in optima.

The README searches the paper's whole design space (29,360 architectures, about a
minute and a half): that run is marked slow. The fast test runs the same blocks with only
the design space narrowed to a few architectures.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

#: The README's design space and the few architectures the fast run searches instead.
FULL_SPACE = "DesignSpace()"
FEW_ARCHITECTURES = (
    "DesignSpace(num_tc=(8, 16), num_vc=(2,), tc_width=(128,), tc_depth=(128,), "
    "glb_bytes=(2**27,), area_band=0.0)"
)


def _run_readme_blocks(tmp_path, monkeypatch, narrow: bool) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    if narrow:
        assert sum(b.count(FULL_SPACE) for b in blocks) == 1, f"README lost {FULL_SPACE}"
        blocks = [b.replace(FULL_SPACE, FEW_ARCHITECTURES) for b in blocks]
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), ns)  # noqa: S102 - our own README
    result, r = ns["result"], ns["r"]
    assert result.best.value > 0
    assert (tmp_path / "gpt3" / "results.sqlite").exists()
    frontier = np.asarray(result.frontier_value)
    assert (np.diff(frontier) > 0).all()
    assert r.throughput.shape == (len(ns["archs"]),)
    assert (r.throughput > 0).any()
    if narrow:
        assert len(result.arch_table.area_um2) <= 2  # the narrowing took effect


def test_readme_python_examples_run_on_a_few_architectures(tmp_path, monkeypatch):
    _run_readme_blocks(tmp_path, monkeypatch, narrow=True)


@pytest.mark.slow
def test_readme_python_examples_run(tmp_path, monkeypatch):
    _run_readme_blocks(tmp_path, monkeypatch, narrow=False)
