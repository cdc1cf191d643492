"""Benchmark: building model graphs and the unique-op table.

Run: ``pytest bench/bench_models.py --benchmark-only``
"""

from __future__ import annotations

import pytest

from phaze.models import build_graph, preset, unique_ops

WIDTHS = (1, 2, 4, 8)


def _gpt3_graphs():
    spec = preset("gpt3-175b")
    return [build_graph(spec, 2048, 1, t) for t in WIDTHS]


@pytest.mark.benchmark(group="models")
def test_build_gpt3_graphs_all_widths(benchmark):
    graphs = benchmark(_gpt3_graphs)
    assert [g.tensor_width for g in graphs] == list(WIDTHS)
    assert all(len(g.layers) == 98 for g in graphs)


@pytest.mark.benchmark(group="models")
def test_build_gpt3_graphs_and_unique_ops(benchmark):
    table, index = benchmark(lambda: unique_ops(_gpt3_graphs()))
    assert len(table) > 0
    assert len(index.layer_rows) == len(WIDTHS)
