"""Model library: specs, presets, HF configs, graphs, unique op table."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from phaze.errors import ConfigError
from phaze.models import (
    TransformerSpec,
    build_graph,
    padded_vocab,
    preset,
    preset_names,
    unique_ops,
)
from phaze.opcodes import CommPass, OpKind

DATA = Path(__file__).parent / "data" / "hf_configs"


# --- strategies --------------------------------------------------------------------------


@st.composite
def specs(draw, gpt_style: bool = False):
    """Random valid small specs covering every option (or GPT-style blocks only)."""
    kv_heads = draw(st.integers(1, 4))
    heads = kv_heads * (1 if gpt_style else draw(st.integers(1, 3)))
    head_dim = draw(st.integers(1, 8))
    hidden = heads * head_dim
    gpt = dict(
        norm="layernorm",
        mlp="gelu",
        position="learned",
        pre_norm=True,
        dropout=True,
        architecture="decoder",
    )
    options = (
        gpt
        if gpt_style
        else dict(
            norm=draw(st.sampled_from(["layernorm", "rmsnorm"])),
            mlp=draw(st.sampled_from(["gelu", "relu", "swiglu"])),
            position=draw(st.sampled_from(["learned", "rotary"])),
            pre_norm=draw(st.booleans()),
            dropout=draw(st.booleans()),
            architecture=draw(st.sampled_from(["decoder", "encoder"])),
        )
    )
    return TransformerSpec(
        name="random",
        layers=draw(st.integers(1, 3)),
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        ffn=4 * hidden if gpt_style else draw(st.integers(1, 6)) * kv_heads * 2,
        vocab=draw(st.integers(1, 600)),
        max_positions=draw(st.integers(1, 64)),
        bias=draw(st.booleans()),
        tied_embeddings=draw(st.booleans()),
        embed_dim=draw(st.sampled_from([0, max(1, hidden // 2)])),
        type_vocab=draw(st.sampled_from([0, 2])),
        **options,
    )


@st.composite
def graph_args(draw, gpt_style: bool = False):
    spec = draw(specs(gpt_style))
    seq = draw(st.integers(1, spec.max_positions))
    mbs = draw(st.integers(1, 4))
    widths = [
        t
        for t in range(1, 9)
        if spec.heads % t == 0 and spec.kv_heads % t == 0 and spec.ffn % t == 0
    ]
    t = draw(st.sampled_from(widths))
    return spec, seq, mbs, t


def _block_gemm_flops(graph) -> tuple[int, int]:
    ops = graph.block.ops.ops
    fwd = 2 * sum(op.macs for op in ops)
    bwd = 2 * sum(b * m * k * n for op in ops for (b, m, k, n) in op.bwd_gemms)
    return fwd, bwd


# --- parameter counts --------------------------------------------------------------------


def test_llama2_7b_params_equal_hugging_face():
    assert preset("llama2-7b").param_count() == 6_738_415_616


def test_gpt2_xl_params_equal_hugging_face_with_tied_head():
    spec = preset("gpt2-xl")
    assert spec.tied_embeddings
    assert spec.param_count() == 1_557_611_200


def test_gpt3_params_within_one_percent_of_175e9():
    assert abs(preset("gpt3-175b").param_count() / 175e9 - 1) < 0.01


def test_llama2_70b_has_grouped_query_attention():
    spec = preset("llama2-70b")
    assert (spec.heads, spec.kv_heads) == (64, 8)
    assert spec.param_count() == 68_976_648_192


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("gpt2-xl.json", "gpt2-xl"),
        ("bert-large-uncased.json", "bert-large"),
        ("opt-350m.json", "opt-350m"),
        ("llama-2-7b.json", "llama2-7b"),
        ("llama-2-70b.json", "llama2-70b"),
    ],
)
def test_hf_config_reproduces_preset(path, name):
    spec = TransformerSpec.from_hf_config(DATA / path)
    ref = preset(name)
    ignore = {"name", "default_seq"}
    for f in dataclasses.fields(TransformerSpec):
        if f.name not in ignore:
            assert getattr(spec, f.name) == getattr(ref, f.name), f.name
    assert spec.param_count() == ref.param_count()


def test_presets_include_the_paper_models():
    names = set(preset_names())
    assert {
        "bert-large",
        "gpt2-xl",
        "opt-350m",
        "llama2-7b",
        "megatron-bert",
        "megatron-gpt2-xl",
        "megatron-gpt2-54",
        "megatron-gpt2-72",
        "gpt3-175b",
        "llama2-13b",
        "llama2-70b",
    } <= names


# --- FLOPs, tensor parallelism, collectives ----------------------------------------------


@given(graph_args())
def test_backward_gemm_flops_are_twice_forward(args):
    g = build_graph(*args)
    for layer in g.layers:
        fwd = sum(op.macs for op in layer.ops.ops)
        bwd = sum(b * m * k * n for op in layer.ops.ops for (b, m, k, n) in op.bwd_gemms)
        assert bwd == 2 * fwd, layer.name


@given(graph_args())
def test_block_forward_gemm_flops_match_closed_form(args):
    spec, seq, mbs, t = args
    fwd, _ = _block_gemm_flops(build_graph(spec, seq, mbs, t))
    # closed form: 2*b*s*(params of the block's matrices) + 4*b*s^2*h for attention
    closed = 2 * mbs * seq * spec.block_matrix_params() + 4 * mbs * seq**2 * spec.hidden
    assert fwd * t == closed


@given(graph_args())
def test_tensor_parallel_shards_macs_and_params(args):
    spec, seq, mbs, t = args
    one, wide = build_graph(spec, seq, mbs, 1), build_graph(spec, seq, mbs, t)
    assert t * wide.block.fwd_gemm_macs == one.block.fwd_gemm_macs
    # replicated parameters (norms, row-parallel biases) are the same on every device
    assert wide.block.replicated_param_bytes == one.block.replicated_param_bytes
    repl = one.block.replicated_param_bytes
    assert t * (wide.block.param_bytes - repl) == one.block.param_bytes - repl
    assert one.block.param_bytes == 2 * spec.block_params()


@given(graph_args())
def test_four_allreduces_of_bsh_per_block(args):
    spec, seq, mbs, t = args
    g = build_graph(spec, seq, mbs, t)
    comms = [op.comm for op in g.block.ops.ops if op.kind == OpKind.COMM]
    if t == 1:
        assert comms == []
        return
    nbytes = mbs * seq * spec.hidden * 2
    assert sorted(comms) == sorted(
        [(nbytes, t, CommPass.FWD)] * 2 + [(nbytes, t, CommPass.BWD)] * 2
    )


@given(graph_args(gpt_style=True))
def test_gpt_block_activation_bytes_match_korthikanti(args):
    spec, s, b, t = args
    g = build_graph(spec, s, b, t)
    h, a = spec.hidden, spec.heads
    # s*b*h*(10 + 24/t + 5*a*s/(h*t)) bytes at 2 bytes per element, kept integral
    expected = s * b * h * 10 + s * b * h * 24 // t + 5 * a * s * s * b // t
    assert g.block.activation_bytes == expected


def test_activation_bytes_are_the_per_operator_sum():
    g = build_graph(preset("gpt3-175b"), 2048, 2, 4)
    saved = {name: nbytes for op in g.block.ops.ops for name, nbytes in op.saved}
    assert g.block.activation_bytes == sum(saved.values())
    assert len(saved) == 15  # x, ln1_out, q, k, v, probs, mask, dropped probs, ctx, ...


# --- structure ---------------------------------------------------------------------------


@given(graph_args())
def test_operator_dags_are_acyclic_and_topologically_numbered(args):
    g = build_graph(*args)
    for layer in g.layers:
        dag = layer.ops.to_networkx()
        assert nx.is_directed_acyclic_graph(dag)
        assert all(s < d for s, d in layer.ops.edges.tolist())
        assert dag.number_of_nodes() == layer.ops.n_ops


@given(graph_args())
def test_unique_op_index_reconstructs_every_occurrence(args):
    spec, seq, mbs, t = args
    graphs = [build_graph(spec, seq, mbs, 1), build_graph(spec, seq, mbs, t)]
    table, index = unique_ops(graphs)
    keys = set()
    for gi, graph in enumerate(graphs):
        for pos, layer in enumerate(graph.layers):
            rows = index.rows(gi, pos)
            assert rows.shape == (layer.ops.n_ops,)
            for op, r in zip(layer.ops.ops, rows, strict=False):
                keys.add(op.key)
                assert table.kind[r] == op.kind
                gemm = (table.gemm_b[r], table.gemm_m[r], table.gemm_k[r], table.gemm_n[r])
                assert gemm == (op.gemm or (0, 0, 0, 0))
                lo, hi = table.vc_ptr[r], table.vc_ptr[r + 1]
                parts = tuple(
                    zip(
                        table.vc_code[lo:hi].tolist(),
                        table.vc_elems[lo:hi].tolist(),
                        table.vc_aux[lo:hi].tolist(),
                        strict=False,
                    )
                )
                assert parts == op.vc_parts
                comm = (table.comm_bytes[r], table.comm_group[r], table.comm_pass[r])
                assert comm == (op.comm or (0, 0, -1))
    assert len(table) == len(keys)


@given(graph_args())
def test_no_fusion_crosses_a_collective(args):
    g = build_graph(*args)
    for layer in g.layers:
        for i, op in enumerate(layer.ops.ops):
            if op.kind == OpKind.COMM:
                assert "+" not in op.name
                assert op.gemm is None
                assert op.vc_parts == ()
                preds = layer.ops.edges[layer.ops.edges[:, 1] == i, 0]
                succs = layer.ops.edges[layer.ops.edges[:, 0] == i, 1]
                assert len(preds) >= 1 or len(succs) >= 1


def test_fusion_rule_on_a_gpt_block():
    one = {op.name: op.kind for op in build_graph(preset("gpt3-175b"), 64, 1, 1).block.ops.ops}
    eight = {op.name: op.kind for op in build_graph(preset("gpt3-175b"), 64, 1, 8).block.ops.ops}
    # t=1: the projection absorbs bias-dropout-add; t=8: the all-reduce separates them
    assert one["out_proj+dropout1+residual1"] == OpKind.TC_VC
    assert eight["out_proj"] == OpKind.TC
    assert eight["g_attn"] == OpKind.COMM
    assert eight["dropout1+residual1"] == OpKind.VC
    assert one["fc1+gelu"] == OpKind.TC_VC
    # Q, K and V stay separate GEMMs so the scheduler sees their parallelism
    assert {"q_proj", "k_proj", "v_proj"} <= set(one)


def test_swiglu_gate_and_up_are_separate_parallel_gemms():
    g = build_graph(preset("llama2-7b"), 128, 1, 1).block.ops
    names = [op.name for op in g.ops]
    gate = next(i for i, n in enumerate(names) if n.startswith("gate_proj"))
    up = names.index("up_proj")
    dag = g.to_networkx()
    assert not nx.has_path(dag, gate, up)
    assert not nx.has_path(dag, up, gate)


def test_identical_blocks_share_one_signature():
    g = build_graph(preset("gpt3-175b"), 2048, 1, 8)
    blocks = [layer for layer in g.layers if layer.role == "block"]
    assert len({layer.signature for layer in blocks}) == 1
    assert len({layer.signature for layer in g.layers}) == 3
    assert [layer.layer_id for layer in g.layers] == list(range(-1, 97))


def test_layer_edges_carry_activation_bytes():
    g = build_graph(preset("llama2-7b"), 4096, 2, 2)
    assert len(g.edges) == len(g.layers) - 1
    assert {e.bytes for e in g.edges} == {4096 * 2 * 4096 * 2}
    assert all(e.dst == e.src + 1 for e in g.edges)


def test_vocabulary_is_padded_per_tensor_width():
    assert padded_vocab(50257, 1) == 50304
    assert build_graph(preset("gpt3-175b"), 16, 1, 8).vocab_padded == 51200
    head = build_graph(preset("gpt3-175b"), 16, 1, 8).layers[-1]
    lm = next(op for op in head.ops.ops if op.name == "lm_head")
    assert lm.gemm == (1, 16, 12288, 51200 // 8)


def test_every_layer_of_a_wide_graph_is_tensor_parallel():
    assert all(la.tensor_parallel for la in build_graph(preset("bert-large"), 8, 1, 2).layers)
    assert not any(la.tensor_parallel for la in build_graph(preset("bert-large"), 8, 1).layers)


# --- edge cases ---------------------------------------------------------------------------


def test_one_layer_model_and_unit_dims():
    spec = TransformerSpec(
        name="tiny", layers=1, hidden=1, heads=1, ffn=1, vocab=1, max_positions=1
    )
    g = build_graph(spec, 1, 1, 1)
    assert len(g.layers) == 3
    assert g.block.fwd_gemm_macs > 0
    table, _ = unique_ops(g)
    assert (table.gemm_m[table.kind <= OpKind.TC_VC] >= 1).all()


def test_unique_table_is_small_for_many_widths():
    graphs = [build_graph(preset("gpt3-175b"), 2048, 1, t) for t in (1, 2, 4, 8)]
    table, index = unique_ops(graphs)
    occurrences = sum(la.ops.n_ops for g in graphs for la in g.layers)
    assert len(table) < 60 < occurrences
    assert all(r.dtype == np.int64 for g in index.layer_rows for r in g)


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(("t", "field"), [(3, "heads"), (64, "kv_heads")])
def test_tensor_width_must_divide_heads(t, field):
    with pytest.raises(ConfigError, match=f"t={t} must divide {field}"):
        build_graph(preset("llama2-70b"), 128, 1, t)


def test_tensor_width_must_divide_ffn():
    spec = TransformerSpec(
        name="odd", layers=1, hidden=8, heads=4, ffn=6, vocab=10, max_positions=8
    )
    with pytest.raises(ConfigError, match=r"t=4 must divide ffn \(6\); allowed: 1, 2"):
        build_graph(spec, 4, 1, 4)


@pytest.mark.parametrize(
    ("seq", "mbs", "match"),
    [
        (0, 1, "seq_len=0"),
        (8, 0, "micro_batch_size=0"),
        (4097, 1, "exceeds llama2-7b's max"),
    ],
)
def test_bad_sequence_or_batch(seq, mbs, match):
    with pytest.raises(ConfigError, match=match):
        build_graph(preset("llama2-7b"), seq, mbs, 1)


def test_unknown_preset_lists_known_ones():
    known = "unknown model 'gpt5'; known presets: bert-large.*llama2-70b.*gpt3-175b"
    with pytest.raises(ConfigError, match=known):
        preset("gpt5")


def test_bad_spec_fields_are_named():
    with pytest.raises(ConfigError, match="norm='batchnorm'.*allowed: layernorm, rmsnorm"):
        TransformerSpec(
            name="x", layers=1, hidden=8, heads=2, ffn=8, vocab=8, max_positions=8, norm="batchnorm"
        )
    with pytest.raises(ConfigError, match="hidden=0"):
        TransformerSpec(name="x", layers=1, hidden=0, heads=2, ffn=8, vocab=8, max_positions=8)


def test_hf_config_with_unknown_model_type(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "t5", "d_model": 512}))
    with pytest.raises(ConfigError, match="model_type='t5'.*allowed: bert, gpt2, llama, opt"):
        TransformerSpec.from_hf_config(path)


def test_hf_config_with_missing_field(tmp_path):
    cfg = json.loads((DATA / "llama-2-7b.json").read_text())
    del cfg["intermediate_size"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="missing field 'intermediate_size'"):
        TransformerSpec.from_hf_config(path)


def test_hf_config_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.json"):
        TransformerSpec.from_hf_config(tmp_path / "absent.json")


@given(specs())
def test_spec_roundtrips_through_replace(spec):
    assume(spec.layers > 1)
    smaller = dataclasses.replace(spec, layers=1)
    assert smaller.param_count() == spec.param_count() - (spec.layers - 1) * spec.block_params()
