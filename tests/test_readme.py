"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
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
