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


def test_a_search_that_visits_every_architecture_keeps_the_table_up_to_a_chunk():
    assert arch_bounds.keeps_whole_table(29_360, visits_all=True)
    assert arch_bounds.keeps_whole_table(65_536, visits_all=True)
    assert not arch_bounds.keeps_whole_table(65_537, visits_all=True)


def _tiny(num_tc=(1,)):
    """bert-large on 8 devices and a space of ``len(num_tc)`` architectures."""
    from phaze import Cluster, DesignSpace, Workload, preset

    space = DesignSpace(num_tc=num_tc, num_vc=(1,), tc_width=(32,), tc_depth=(32,),
                        glb_bytes=(2**22,), area_band=0.0)  # fmt: skip
    return Workload(preset("bert-large"), seq_len=128, global_batch=64), Cluster(devices=8), space


@pytest.fixture
def visits_seen(monkeypatch):
    """``visits_all`` of every WorkloadEvaluator made from now on, in order."""
    seen = []
    keep = evaluator.WorkloadEvaluator.__init__

    def recording(self, *args, **kwargs):
        keep(self, *args, **kwargs)
        seen.append(self.visits_all)

    monkeypatch.setattr(evaluator.WorkloadEvaluator, "__init__", recording)
    return seen


@pytest.mark.parametrize("strategy", ["exact", "exhaustive"])
def test_the_strategy_tells_the_evaluators_whether_every_architecture_is_visited(
    monkeypatch, visits_seen, strategy
):
    from phaze import search
    from phaze.joint import core

    warm = []
    monkeypatch.setattr(core, "warmup_kernels", lambda *args: warm.append(args[2]))
    w, cluster, space = _tiny(num_tc=(1, 4))
    search(w, cluster, space, micro_batch_sizes=(1,), strategy=strategy)
    assert visits_seen[0] is (strategy == "exhaustive") and warm == [strategy == "exhaustive"]


def test_evaluating_every_architecture_keeps_the_table(visits_seen):
    from phaze import evaluate_architectures

    w, cluster, space = _tiny()
    evaluate_architectures(w, cluster, space.enumerate(), 1, 2**34, False)
    assert visits_seen == [True]


def test_visits_all_must_be_a_bool():
    w, cluster, space = _tiny()
    with pytest.raises(ConfigError, match="visits_all"):
        evaluator.WorkloadEvaluator(w, cluster, space.enumerate(), [1], visits_all="yes")


def test_hbm_sizes_from_one_byte_to_one_exbibyte():
    assert MAX_HBM_BYTES == 2**60  # the limit docs/architecture.md states
    assert check_hbm_bytes(1) == 1.0
    assert check_hbm_bytes(2**60) == float(2**60)
    for bad in (0, 0.5, 2**60 * 1.01, True, "32"):
        with pytest.raises(ConfigError, match=r"hbm_bytes=.* is invalid; allowed: .*<= 1\.15"):
            check_hbm_bytes(bad)
