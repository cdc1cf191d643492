"""Where the large-space chunk size and the HBM limit live, and that they act from there."""

from __future__ import annotations

import pytest

import phaze._kernels as kernels_pkg
from phaze.errors import ConfigError
from phaze.joint import arch_bounds, evaluator
from phaze.validate import MAX_HBM_BYTES, check_hbm_bytes


def test_warmup_kernels_reads_the_chunk_size_when_called(monkeypatch):
    calls = []
    monkeypatch.setattr(kernels_pkg, "warmup", lambda **kw: calls.append(kw["large_spaces"]))
    monkeypatch.setattr(arch_bounds, "LATENCY_CHUNK_ARCHS", 7)
    evaluator.warmup_kernels(None, 8)  # 8 > 7: a large space
    evaluator.warmup_kernels(None, 7)
    monkeypatch.setattr(arch_bounds, "LATENCY_CHUNK_ARCHS", 10**9)
    evaluator.warmup_kernels(None, 8)
    evaluator.warmup_kernels(None, None)  # any number of architectures
    assert calls == [True, False, False, True]


def test_the_chunk_size_has_one_home():
    # a second copy in the evaluator would take a patch there without effect
    assert not hasattr(evaluator, "LATENCY_CHUNK_ARCHS")
    assert not hasattr(evaluator, "KEEP_TABLE_ARCHS")
    assert arch_bounds.LATENCY_CHUNK_ARCHS == 65_536  # docs/search.md states this figure
    assert arch_bounds.KEEP_TABLE_ARCHS == 4_096  # and this one


def test_a_space_keeps_its_table_up_to_the_smaller_limit(monkeypatch):
    assert arch_bounds.keeps_whole_table(4_096)
    assert not arch_bounds.keeps_whole_table(4_097)
    assert not arch_bounds.keeps_whole_table(29_360)  # the paper's space
    monkeypatch.setattr(arch_bounds, "KEEP_TABLE_ARCHS", 10**9)
    assert arch_bounds.keeps_whole_table(65_536)
    assert not arch_bounds.keeps_whole_table(65_537)  # never above a chunk
    monkeypatch.setattr(arch_bounds, "LATENCY_CHUNK_ARCHS", 7)
    assert not arch_bounds.keeps_whole_table(8)


def test_hbm_sizes_from_one_byte_to_one_exbibyte():
    assert MAX_HBM_BYTES == 2**60  # the limit docs/architecture.md states
    assert check_hbm_bytes(1) == 1.0
    assert check_hbm_bytes(2**60) == float(2**60)
    for bad in (0, 0.5, 2**60 * 1.01, True, "32"):
        with pytest.raises(ConfigError, match=r"hbm_bytes=.* is invalid; allowed: .*<= 1\.15"):
            check_hbm_bytes(bad)
