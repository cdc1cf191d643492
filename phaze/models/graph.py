"""Layer graphs and per-layer operator graphs of a transformer (docs/workloads.md).

:func:`build_graph` turns a :class:`~phaze.models.spec.TransformerSpec`, a sequence length,
a micro-batch size and a Megatron tensor-parallel width ``t`` into a :class:`ModelGraph`:
embedding (layer id -1), ``L`` blocks (0 ... L-1) and the head (id L) in a chain whose
edges carry the activation bytes crossing them. Every layer has its fused operator DAG,
parameter bytes (per device) and activation bytes (kept for backward, one micro-batch).

Tensor parallelism follows Megatron-LM: Q, K, V and FC1 (gate/up) are column-parallel,
the attention output projection and FC2 (down) row-parallel, heads are split by ``t``; an
all-reduce of ``b*s*h`` elements follows each row-parallel GEMM in forward and precedes
each column-parallel GEMM group in backward. Embedding and LM head are split over the
vocabulary, padded to a multiple of ``128*t``. Norm weights, position embeddings and the
biases of row-parallel GEMMs are replicated on every device of the group
(:attr:`Layer.replicated_param_bytes`). A tied LM head keeps its own copy of the word
embedding in the head layer (as Megatron does under pipeline parallelism).

The vocabulary-parallel cross-entropy is modelled as a softmax over the local vocabulary
shard plus one forward all-reduce of two fp32 values per token (max and sum).

Sequence parallelism (``sequence_parallel=True``, Korthikanti et al. 2022; only at
``t > 1``): the operators outside the tensor-parallel regions -- a block's two norms, two
dropouts and two residual adds, the embedding's dropout and the head's final norm --
work on ``s/t`` tokens per device (``b*s*h/t`` elements), and the tensors they and the
QKV/FC1 GEMMs save for backward shrink alike. Each all-reduce becomes an all-gather plus
a reduce-scatter of the same bytes, so the collectives keep their bytes, passes and
places. Pipeline edges keep carrying ``b*s*h`` elements.
"""

from __future__ import annotations

from dataclasses import dataclass

from phaze.errors import ConfigError
from phaze.models.ops import OpGraph, PrimitiveBuilder
from phaze.models.spec import TransformerSpec
from phaze.opcodes import CommPass, VcOp
from phaze.validate import check_bool, check_int

__all__ = ["Layer", "LayerEdge", "ModelGraph", "build_graph", "padded_vocab", "valid_tensor_widths"]


@dataclass(frozen=True, slots=True)
class Layer:
    """One node of the layer graph.

    Attributes
    ----------
    layer_id : int
        -1 for the embedding, 0 ... L-1 for blocks, L for the head.
    role : {"embedding", "block", "head"}
    param_bytes : int
        Parameter bytes held by each device of the layer's tensor-parallel group.
    replicated_param_bytes : int
        The part of ``param_bytes`` that is replicated rather than split by ``t``.
    activation_bytes : int
        Bytes kept for backward for one micro-batch (per device).
    tensor_parallel : bool
        The layer is split over ``t > 1`` devices.
    ops : OpGraph
    signature : tuple
        Equal for layers with identical operators, sizes and parallelism.
    """

    layer_id: int
    name: str
    role: str
    param_bytes: int
    replicated_param_bytes: int
    activation_bytes: int
    tensor_parallel: bool
    ops: OpGraph
    signature: tuple

    @property
    def fwd_gemm_macs(self) -> int:
        """Multiply-accumulates of the forward GEMMs."""
        return sum(op.macs for op in self.ops.ops)


@dataclass(frozen=True, slots=True)
class LayerEdge:
    """Activation bytes from layer position ``src`` to ``dst`` (indices into layers)."""

    src: int
    dst: int
    bytes: int


@dataclass(frozen=True, slots=True)
class ModelGraph:
    """Layer graph of one (spec, seq_len, micro_batch_size, tensor_width); layers in
    topological order."""

    spec: TransformerSpec
    seq_len: int
    micro_batch_size: int
    tensor_width: int
    bytes_per_element: int
    vocab_padded: int
    layers: tuple[Layer, ...]
    edges: tuple[LayerEdge, ...]
    sequence_parallel: bool = False

    @property
    def param_bytes(self) -> int:
        """Parameter bytes per device summed over layers (tied head copy included)."""
        return sum(layer.param_bytes for layer in self.layers)

    @property
    def block(self) -> Layer:
        """The first transformer block (all blocks are identical)."""
        return next(layer for layer in self.layers if layer.role == "block")


def padded_vocab(vocab: int, tensor_width: int) -> int:
    """Megatron's vocabulary padding: the next multiple of ``128 * tensor_width``.

    Examples
    --------
    >>> padded_vocab(50257, 8)
    51200
    """
    m = 128 * tensor_width
    return -(-vocab // m) * m


def valid_tensor_widths(spec: TransformerSpec, limit: int = 4096) -> tuple[int, ...]:
    """Widths ``t <= limit`` that divide heads, kv_heads and ffn."""
    return tuple(
        t
        for t in range(1, limit + 1)
        if spec.heads % t == 0 and spec.kv_heads % t == 0 and spec.ffn % t == 0
    )


def build_graph(
    spec: TransformerSpec,
    seq_len: int,
    micro_batch_size: int,
    tensor_width: int = 1,
    bytes_per_element: int = 2,
    sequence_parallel: bool = False,
) -> ModelGraph:
    """Build the layer graph and operator graphs of ``spec``.

    Parameters
    ----------
    spec : TransformerSpec
    seq_len : int
        Tokens per sample, ``1 <= seq_len <= spec.max_positions``.
    micro_batch_size : int
        Samples per micro-batch (>= 1).
    tensor_width : int
        Tensor-parallel width; must divide heads, kv_heads and ffn.
    bytes_per_element : int
        Activation and parameter precision (2 for bf16/fp16).
    sequence_parallel : bool
        Megatron's sequence parallelism (module docstring); ignored at ``t = 1``, where
        it changes nothing. ``seq_len`` must then be a multiple of ``t``.

    Examples
    --------
    >>> from phaze.models import preset
    >>> g = build_graph(preset("gpt3-175b"), seq_len=2048, micro_batch_size=1, tensor_width=8)
    >>> len(g.layers), g.vocab_padded
    (98, 51200)
    """
    check_int("seq_len", seq_len)
    check_int("micro_batch_size", micro_batch_size)
    check_int("tensor_width", tensor_width)
    check_int("bytes_per_element", bytes_per_element, 1, 64)
    sequence_parallel = check_bool("sequence_parallel", sequence_parallel) and tensor_width > 1
    if sequence_parallel and seq_len % tensor_width:
        raise ConfigError(
            f"seq_len={seq_len} must be a multiple of the tensor width t={tensor_width} with "
            "sequence parallelism; allowed: multiples of t, or sequence_parallel=False"
        )
    if seq_len > spec.max_positions:
        raise ConfigError(
            f"seq_len={seq_len} exceeds {spec.name}'s max positions "
            f"({spec.max_positions}); allowed: 1..{spec.max_positions}"
        )
    for field in ("heads", "kv_heads", "ffn"):
        if getattr(spec, field) % tensor_width:
            raise ConfigError(
                f"tensor width t={tensor_width} must divide {field} "
                f"({getattr(spec, field)}); allowed: "
                f"{', '.join(map(str, valid_tensor_widths(spec, 64)))}"
            )
    d = _Dims(spec, seq_len, micro_batch_size, tensor_width, bytes_per_element, sequence_parallel)
    layers: list[Layer] = []
    emb_ops, emb_params, emb_repl = _embedding(d)
    layers.append(_layer(-1, "embedding", "embedding", emb_ops, emb_params, emb_repl, tensor_width))
    blk_ops, blk_params, blk_repl = _block(d)
    for i in range(spec.layers):
        layers.append(_layer(i, f"block{i}", "block", blk_ops, blk_params, blk_repl, tensor_width))
    head_ops, head_params, head_repl = _head(d)
    layers.append(
        _layer(spec.layers, "head", "head", head_ops, head_params, head_repl, tensor_width)
    )
    act = micro_batch_size * seq_len * spec.hidden * bytes_per_element
    edges = tuple(LayerEdge(i, i + 1, act) for i in range(len(layers) - 1))
    return ModelGraph(
        spec=spec,
        seq_len=seq_len,
        micro_batch_size=micro_batch_size,
        tensor_width=tensor_width,
        bytes_per_element=bytes_per_element,
        vocab_padded=d.vocab,
        layers=tuple(layers),
        edges=edges,
        sequence_parallel=sequence_parallel,
    )


def _layer(
    layer_id: int,
    name: str,
    role: str,
    ops: OpGraph,
    params: int,
    replicated: int,
    tensor_width: int,
) -> Layer:
    act = ops.saved_bytes()
    return Layer(
        layer_id=layer_id,
        name=name,
        role=role,
        param_bytes=params,
        replicated_param_bytes=replicated,
        activation_bytes=act,
        tensor_parallel=tensor_width > 1,
        ops=ops,
        signature=(role, ops.key, params, act, tensor_width > 1),
    )


class _Dims:
    """Per-device sizes of one graph (local helper)."""

    def __init__(
        self, spec: TransformerSpec, s: int, b: int, t: int, bpe: int, sp: bool = False
    ) -> None:
        self.spec, self.s, self.b, self.t, self.bpe = spec, s, b, t, bpe
        self.h = spec.hidden
        self.tok = b * s  # tokens of one micro-batch
        self.E = self.tok * self.h  # elements of a hidden-state tensor
        # elements of a hidden-state tensor outside the tensor-parallel regions
        self.E_rep = self.E // t if sp else self.E
        self.heads = spec.heads // t
        self.kv = spec.kv_heads // t
        self.hd = spec.head_width
        self.ffn = spec.ffn // t
        self.vocab = padded_vocab(spec.vocab, t)
        self.norm_params = self.h * (2 if spec.norm == "layernorm" else 1)

    def norm_parts(self, elems: int, width: int) -> tuple:
        if self.spec.norm == "layernorm":
            return ((VcOp.LAYERNORM, elems, 1),)
        rows = elems // width  # x * rsqrt(mean(x^2) + eps) * weight
        return (
            (VcOp.POW, elems, 1),
            (VcOp.MEAN, elems, width),
            (VcOp.POW, rows, 1),
            (VcOp.MUL, elems, 1),
            (VcOp.MUL, elems, 1),
        )


def _norm(pb: PrimitiveBuilder, d: _Dims, name: str, x: str, out: str, elems=None) -> str:
    elems = d.E if elems is None else elems
    return pb.norm(name, [x], out, d.norm_parts(elems, d.h), saves=[(x, elems * d.bpe)])


def _collective(
    pb: PrimitiveBuilder, d: _Dims, name: str, x: str, nbytes: int, comm_pass: CommPass
) -> str:
    """Megatron's f (backward all-reduce) or g (forward all-reduce); identity at t=1."""
    if d.t == 1:
        return x
    return pb.allreduce(name, [x], f"{x}@{name}", nbytes, d.t, comm_pass)


def _block(d: _Dims) -> tuple[OpGraph, int, int]:
    spec, pb, bpe = d.spec, PrimitiveBuilder(), d.bpe
    E, tok, s = d.E, d.tok, d.s
    R = d.E_rep  # elements outside the tensor-parallel regions (E / t: sequence-parallel)
    q_el, kv_el = tok * d.heads * d.hd, tok * d.kv * d.hd
    scores_el = d.b * d.heads * s * s
    x = "x"
    attn_in = _norm(pb, d, "ln1", x, "ln1_out", R) if spec.pre_norm else x
    a_in = _collective(pb, d, "f_attn", attn_in, E * bpe, CommPass.BWD)
    keep_in = [(attn_in, R * bpe)]
    q = pb.gemm("q_proj", [a_in], "q", (1, tok, d.h, d.heads * d.hd), saves=keep_in)
    k = pb.gemm("k_proj", [a_in], "k", (1, tok, d.h, d.kv * d.hd), saves=keep_in)
    v = pb.gemm("v_proj", [a_in], "v", (1, tok, d.h, d.kv * d.hd), saves=keep_in)
    if spec.position == "rotary":  # x*cos + rotate_half(x)*sin
        rope = ((VcOp.MUL, 1, 1), (VcOp.MUL, 1, 1), (VcOp.ADD, 1, 1))
        q = pb.elementwise("rope_q", [q], "q_rot", [(c, q_el, a) for c, _, a in rope])
        k = pb.elementwise("rope_k", [k], "k_rot", [(c, kv_el, a) for c, _, a in rope])
    scores = pb.gemm(
        "qk",
        [q, k],
        "scores",
        (d.b * d.heads, s, d.hd, s),
        saves=[(q, q_el * bpe), (k, kv_el * bpe)],
    )
    scores = pb.elementwise("mask", [scores], "scores_masked", [(VcOp.MASKED_FILL, scores_el, 1)])
    probs = pb.reduction(
        "softmax",
        [scores],
        "probs",
        [(VcOp.SOFTMAX, scores_el, s)],
        saves=[("probs", scores_el * bpe)],
    )
    if spec.dropout:
        probs = pb.dropout("attn_dropout", [probs], "probs_dropped", scores_el, "attn_dropout_mask")
    ctx = pb.gemm(
        "av",
        [probs, v],
        "ctx",
        (d.b * d.heads, s, s, d.hd),
        saves=[(probs, scores_el * bpe), (v, kv_el * bpe)],
    )
    out = pb.gemm(
        "out_proj", [ctx], "attn_out", (1, tok, d.heads * d.hd, d.h), saves=[(ctx, q_el * bpe)]
    )
    out = _collective(pb, d, "g_attn", out, E * bpe, CommPass.FWD)
    if spec.dropout:
        out = pb.dropout("dropout1", [out], "attn_dropped", R, "dropout1_mask")
    h1 = pb.elementwise("residual1", [out, x], "h1", [(VcOp.ADD, R, 1)])
    if not spec.pre_norm:
        h1 = _norm(pb, d, "ln1", h1, "h1_normed", R)
    mlp_in = _norm(pb, d, "ln2", h1, "ln2_out", R) if spec.pre_norm else h1
    m_in = _collective(pb, d, "f_mlp", mlp_in, E * bpe, CommPass.BWD)
    keep_in = [(mlp_in, R * bpe)]
    f_el = tok * d.ffn
    if spec.mlp == "swiglu":
        gate = pb.gemm("gate_proj", [m_in], "gate", (1, tok, d.h, d.ffn), saves=keep_in)
        up = pb.gemm("up_proj", [m_in], "up", (1, tok, d.h, d.ffn), saves=keep_in)
        act = pb.elementwise(
            "silu", [gate], "silu_out", [(VcOp.SILU, f_el, 1)], saves=[(gate, f_el * bpe)]
        )
        hidden = pb.elementwise(
            "gate_mul",
            [act, up],
            "mlp_hidden",
            [(VcOp.MUL, f_el, 1)],
            saves=[(act, f_el * bpe), (up, f_el * bpe)],
        )
        down_name = "down_proj"
    else:
        fc1 = pb.gemm("fc1", [m_in], "fc1_out", (1, tok, d.h, d.ffn), saves=keep_in)
        hidden = pb.elementwise(
            spec.mlp, [fc1], "act_out", [(VcOp.GELU, f_el, 1)], saves=[(fc1, f_el * bpe)]
        )
        down_name = "fc2"
    out = pb.gemm(
        down_name, [hidden], "mlp_out", (1, tok, d.ffn, d.h), saves=[(hidden, f_el * bpe)]
    )
    out = _collective(pb, d, "g_mlp", out, E * bpe, CommPass.FWD)
    if spec.dropout:
        out = pb.dropout("dropout2", [out], "mlp_dropped", R, "dropout2_mask")
    h2 = pb.elementwise("residual2", [out, h1], "h2", [(VcOp.ADD, R, 1)])
    if not spec.pre_norm:
        _norm(pb, d, "ln2", h2, "h2_normed", R)

    matrices = spec.block_matrix_params() // d.t
    kv_w = d.kv * d.hd
    attention_bias = d.heads * d.hd + 2 * kv_w if spec.has_attention_bias else 0  # q, k, v
    mlp_bias = (2 * d.ffn if spec.mlp == "swiglu" else d.ffn) if spec.has_mlp_bias else 0
    # row-parallel biases (out_proj, down projection) are replicated on every device
    replicated = 2 * d.norm_params + d.h * (int(spec.has_attention_bias) + int(spec.has_mlp_bias))
    params = matrices + attention_bias + mlp_bias + replicated
    return pb.build(), params * bpe, replicated * bpe


def _embedding(d: _Dims) -> tuple[OpGraph, int, int]:
    spec, pb, bpe = d.spec, PrimitiveBuilder(), d.bpe
    E, e = d.E, spec.embed_dim
    x = pb.elementwise("word_embedding", ["token_ids"], "tokens", [(VcOp.COPY, d.tok * e, 1)])
    x = _collective(pb, d, "g_embedding", x, d.tok * e * bpe, CommPass.FWD)
    replicated = 0
    if e != d.h:
        x = pb.gemm("project_in", [x], "tokens_h", (1, d.tok, e, d.h), saves=[(x, d.tok * e * bpe)])
        replicated += e * d.h
    if spec.position == "learned":
        pos = pb.elementwise(
            "position_embedding", ["position_ids"], "positions", [(VcOp.COPY, E, 1)]
        )
        x = pb.elementwise("add_positions", [x, pos], "embedded", [(VcOp.ADD, E, 1)])
        replicated += (spec.max_positions + spec.position_offset) * d.h
    if spec.type_vocab:
        tt = pb.elementwise(
            "token_type_embedding", ["token_type_ids"], "token_types", [(VcOp.COPY, E, 1)]
        )
        x = pb.elementwise("add_token_types", [x, tt], "embedded_tt", [(VcOp.ADD, E, 1)])
        replicated += spec.type_vocab * d.h
    if spec.architecture == "encoder":
        x = _norm(pb, d, "embedding_norm", x, "embedded_normed")
        replicated += d.norm_params
    if spec.dropout:  # sequence-parallel: on the scattered tokens
        pb.dropout("embedding_dropout", [x], "embedding_out", d.E_rep, "embedding_dropout_mask")
    params = d.vocab * e // d.t + replicated
    return pb.build(), params * bpe, replicated * bpe


def _head(d: _Dims) -> tuple[OpGraph, int, int]:
    spec, pb, bpe = d.spec, PrimitiveBuilder(), d.bpe
    E, e = d.E, spec.embed_dim
    x, replicated = "x", 0
    if spec.final_norm:  # sequence-parallel: on the scattered tokens
        x = _norm(pb, d, "final_norm", x, "final_normed", d.E_rep)
        replicated += d.norm_params
    if e != d.h:
        x = pb.gemm("project_out", [x], "projected", (1, d.tok, d.h, e), saves=[(x, E * bpe)])
        replicated += d.h * e
    if spec.architecture == "encoder":  # BERT masked-LM transform: dense, gelu, norm
        x_in = x
        x = pb.gemm(
            "mlm_dense", [x], "mlm_dense_out", (1, d.tok, d.h, d.h), saves=[(x_in, E * bpe)]
        )
        x = pb.elementwise("mlm_gelu", [x], "mlm_act", [(VcOp.GELU, E, 1)], saves=[(x, E * bpe)])
        x = _norm(pb, d, "mlm_norm", x, "mlm_normed")
        replicated += d.h * d.h + d.h + d.norm_params
    x_lm = x
    x = _collective(pb, d, "f_lm_head", x, d.tok * e * bpe, CommPass.BWD)
    v_t = d.vocab // d.t
    logits = pb.gemm("lm_head", [x], "logits", (1, d.tok, e, v_t), saves=[(x_lm, d.tok * e * bpe)])
    loss = pb.reduction(
        "cross_entropy",
        [logits],
        "loss_terms",
        [(VcOp.SOFTMAX, d.tok * v_t, v_t)],
        saves=[("vocab_probs", d.tok * v_t * bpe)],
    )
    _collective(pb, d, "g_cross_entropy", loss, 2 * d.tok * 4, CommPass.FWD)
    params = d.vocab * e // d.t + replicated  # tied heads keep their own copy
    if spec.architecture == "encoder":
        params += v_t  # decoder bias, split with the vocabulary
    return pb.build(), params * bpe, replicated * bpe
