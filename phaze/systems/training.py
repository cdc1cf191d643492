"""Time and memory of one Megatron training iteration on a real system.

A closed-form model of what Megatron-LM executes for a GPT-style decoder under 3-D
parallelism (formulas, units and sources: docs/real-systems.md):

- every GEMM of a block (QKV, attention scores, attention over values, projection, the
  two MLP GEMMs) at ``peak x gemm_efficiency`` per full wave of 128x128 output tiles over
  the chip's SMs, never faster than its operands' traffic at HBM bandwidth, plus a
  kernel launch; backward is two GEMMs per forward GEMM (input and weight gradients);
- element-wise kernels (LayerNorm, softmax, dropout, bias+GeLU, bias+dropout+add) at
  HBM bandwidth over the bytes they read and write (backward: twice the bytes);
- tensor-parallel all-reduces (2 per block forward, 2 backward, 2 more with full
  recomputation), or a reduce-scatter + all-gather pair each with sequence parallelism;
- the pipeline: 1F1B with ``m`` micro-batches takes ``m`` times the slowest stage plus a
  bubble of the other stages' time divided by the interleave ``v`` (Narayanan et al.
  2021), and point-to-point sends of ``b s h`` elements per micro-batch and chunk
  (each tensor-parallel rank sends its ``1/t`` share, Megatron's scatter/gather);
- the data-parallel all-reduce of fp32 gradients (not overlapped) and the Adam step
  (memory-bound over the optimizer state).

Beside the times, every kernel's work (tensor-core FLOPs, L2 and HBM bytes, bytes sent
per network level) is counted per pipeline stage, and the chip's board power constants
(:mod:`phaze.systems.power`) turn it into the iteration's power and energy.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from phaze.errors import ConfigError
from phaze.models.spec import TransformerSpec
from phaze.systems.power import IterationPower, Work, gemm_counts, iteration_power
from phaze.systems.presets import System

__all__ = [
    "RECOMPUTE_MODES",
    "Breakdown",
    "BreakdownPower",
    "TrainingPlan",
    "block_activation_bytes",
    "check_plan",
    "end_activation_bytes",
    "iteration",
    "memory_per_device",
    "stage_work",
]

RECOMPUTE_MODES = ("none", "selective", "full")
BYTES = 2  # fp16/bf16 activations and weights
GRAD_BYTES = 4  # fp32 main gradients, all-reduced across data parallelism
#: Training-state bytes per parameter: fp16 weights 2 + fp32 main gradients 4 (kept on
#: every data-parallel rank) and fp32 master weights 4 + two fp32 Adam moments 8 (sharded
#: across data parallelism by the distributed optimizer).
STATE_BYTES_REPLICATED = 6
STATE_BYTES_SHARDABLE = 12
#: HBM bytes per parameter of the optimizer step: unscale + inf check (read and write the
#: fp32 gradient, 8), gradient norm (read, 4), Adam (read gradient, master, two moments;
#: write master and moments: 28), copy to the fp16 weights (read 4, write 2): 46, on the
#: rank's optimizer shard; zeroing the gradient buffer (write 4) on every parameter.
OPTIMIZER_BYTES_SHARDED = 46
OPTIMIZER_BYTES_REPLICATED = 4
# Cross-entropy: fp16 logits to fp32 softmax (read 2, write 4, read 4 for the loss) forward,
# read 4 + write 2 backward, per logit.
_CE_FWD_BYTES, _CE_BWD_BYTES = 10, 6


@dataclass(frozen=True, slots=True)
class TrainingPlan:
    """How one training iteration is parallelised and run.

    Parameters
    ----------
    tensor_width : int
        Tensor-parallel width ``t`` (Megatron's tp); groups of consecutive ranks.
    num_stages : int
        Pipeline stages ``p``.
    data_parallel : int
        Data-parallel degree ``d``.
    micro_batch_size : int
        Samples per micro-batch ``b``.
    global_batch_size : int
        Samples per iteration; a multiple of ``d * b``.
    interleave : int
        Virtual pipeline stages per device ``v`` (1 = plain 1F1B).
    recompute_mode : {"none", "selective", "full"}
    sequence_parallel : bool
    distributed_optimizer : bool
        Shard the fp32 master weights and moments across data parallelism.
    overlap_dp : bool
        Overlap the data-parallel gradient reduction with the backward pass (then only
        what exceeds the backward time of one micro-batch shows).
    """

    tensor_width: int
    num_stages: int
    data_parallel: int
    micro_batch_size: int
    global_batch_size: int
    interleave: int = 1
    recompute_mode: str = "none"
    sequence_parallel: bool = False
    distributed_optimizer: bool = False
    overlap_dp: bool = False

    def __post_init__(self) -> None:
        for field in (
            "tensor_width",
            "num_stages",
            "data_parallel",
            "micro_batch_size",
            "global_batch_size",
            "interleave",
        ):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"plan {field}={value!r} must be an integer >= 1")
        if self.recompute_mode not in RECOMPUTE_MODES:
            raise ConfigError(
                f"plan recompute_mode={self.recompute_mode!r} is not supported; "
                f"allowed: {', '.join(RECOMPUTE_MODES)}"
            )
        per_step = self.data_parallel * self.micro_batch_size
        if self.global_batch_size % per_step:
            raise ConfigError(
                f"plan global_batch_size={self.global_batch_size} must be a multiple of "
                f"data_parallel x micro_batch_size = {per_step}"
            )
        # nothing to split with t = 1, nothing to shard with d = 1
        if self.sequence_parallel and self.tensor_width == 1:
            object.__setattr__(self, "sequence_parallel", False)
        if self.distributed_optimizer and self.data_parallel == 1:
            object.__setattr__(self, "distributed_optimizer", False)

    @property
    def devices(self) -> int:
        """Devices the plan uses: ``t * p * d``."""
        return self.tensor_width * self.num_stages * self.data_parallel

    @property
    def num_micro_batches(self) -> int:
        """Micro-batches per pipeline per iteration."""
        return self.global_batch_size // (self.data_parallel * self.micro_batch_size)


class BreakdownPower:
    """``power_w`` and ``energy_per_sample_j`` of a result that holds a :class:`Breakdown`
    as ``breakdown`` (:class:`~phaze.systems.Estimate`, :class:`~phaze.systems.PlanResult`)."""

    __slots__ = ()

    @property
    def power_w(self) -> float | None:
        """Average board power per device (W; None when the chip has no power constants)."""
        p = self.breakdown.power
        return None if p is None else p.power_w

    @property
    def energy_per_sample_j(self) -> float | None:
        """Energy of the whole cluster per training sample (J; None without power
        constants)."""
        p = self.breakdown.power
        return None if p is None else p.energy_per_sample_j


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Predicted seconds of one iteration, split by cause, and memory per device.

    ``forward_s + backward_s + recompute_s + tp_comm_s`` is the slowest pipeline stage's
    share over all micro-batches; the other terms add to it; ``iteration_s`` is the sum.
    ``power`` is the iteration's board power and energy (None when the chip has no power
    constants).
    """

    forward_s: float
    backward_s: float
    recompute_s: float
    tp_comm_s: float
    bubble_s: float
    p2p_s: float
    dp_comm_s: float
    optimizer_s: float
    memory_bytes: float
    hbm_bytes: float
    power: IterationPower | None = None

    @property
    def iteration_s(self) -> float:
        """Seconds per iteration (one global batch, optimizer step included)."""
        return (
            self.forward_s
            + self.backward_s
            + self.recompute_s
            + self.tp_comm_s
            + self.bubble_s
            + self.p2p_s
            + self.dp_comm_s
            + self.optimizer_s
        )

    @property
    def fits(self) -> bool:
        """The busiest device's memory fits in its HBM."""
        return self.memory_bytes <= self.hbm_bytes

    def to_dict(self) -> dict:
        """Every term in seconds/bytes, plus ``iteration_s`` and ``fits``, and the power
        terms of :class:`~phaze.systems.power.IterationPower` (None without power
        constants)."""
        out = {f: getattr(self, f) for f in Breakdown.__slots__ if f != "power"}
        out["iteration_s"] = self.iteration_s
        out["fits"] = self.fits
        if self.power is None:
            out.update(dict.fromkeys(POWER_FIELDS))
        else:
            out.update(self.power.to_dict())
        return out


#: Keys :meth:`Breakdown.to_dict` adds for the iteration's power and energy.
POWER_FIELDS = (
    "power_w",
    "max_power_w",
    "tdp_w",
    "energy_per_iteration_j",
    "energy_per_sample_j",
    "idle_j",
    "compute_j",
    "l2_j",
    "hbm_j",
    "network_j",
    "exceeds_tdp",
)


def padded_vocab(spec: TransformerSpec, tensor_width: int) -> int:
    """Megatron pads the vocabulary to a multiple of ``128 * t``."""
    unit = 128 * tensor_width
    return -(-spec.vocab // unit) * unit


def check_plan(spec: TransformerSpec, plan: TrainingPlan, seq_len: int) -> None:
    """Raise :class:`ConfigError` if ``plan`` cannot run ``spec`` (Megatron's rules)."""
    t, p, v = plan.tensor_width, plan.num_stages, plan.interleave
    if spec.heads % t or spec.kv_heads % t:
        allowed = [w for w in range(1, spec.kv_heads + 1) if spec.kv_heads % w == 0]
        raise ConfigError(
            f"tensor width t={t} must divide attention heads ({spec.heads}, key/value heads "
            f"{spec.kv_heads}); allowed: {allowed}"
        )
    if spec.ffn % t:
        raise ConfigError(f"tensor width t={t} must divide the MLP width ffn={spec.ffn}")
    if spec.layers % (p * v):
        raise ConfigError(
            f"num_stages x interleave = {p} x {v} must divide the {spec.layers} layers"
        )
    if v > 1 and p < 2:
        raise ConfigError(f"interleave={v} needs num_stages >= 2, got {p}")
    if v > 1 and plan.num_micro_batches % p:
        raise ConfigError(
            f"interleave={v}: the {plan.num_micro_batches} micro-batches per pipeline must "
            f"be a multiple of num_stages={p} (Megatron's interleaved schedule)"
        )
    if plan.sequence_parallel and seq_len % t:
        raise ConfigError(f"sequence parallelism: t={t} must divide seq_len={seq_len}")
    if seq_len > spec.max_positions:
        raise ConfigError(f"seq_len={seq_len} exceeds the model's {spec.max_positions} positions")


# --------------------------------------------------------------------------- parameters


def _block_params_per_rank(spec: TransformerSpec, t: int) -> float:
    """Parameters of one block held by one tensor-parallel rank (matrices and their
    column-parallel biases split by t; row-parallel biases and norms replicated)."""
    h, q, kv = spec.hidden, spec.heads * spec.head_width, spec.kv_heads * spec.head_width
    split = spec.block_matrix_params() / t
    replicated = 0
    if spec.has_attention_bias:  # q, k, v split; out replicated
        split += (q + 2 * kv) / t
        replicated += h
    if spec.has_mlp_bias:  # up (and gate) split; down replicated
        split += (2 if spec.mlp == "swiglu" else 1) * spec.ffn / t
        replicated += h
    replicated += 2 * h * (2 if spec.norm == "layernorm" else 1)
    return split + replicated


def stage_params(spec: TransformerSpec, plan: TrainingPlan, seq_len: int) -> list[float]:
    """Parameters per device of each pipeline stage (first stage: word and position
    embeddings; last stage: final norm and, when tied and p > 1, its embedding copy)."""
    t, p = plan.tensor_width, plan.num_stages
    vp = padded_vocab(spec, t)
    per_stage = [spec.layers // p * _block_params_per_rank(spec, t)] * p
    word = vp * spec.embed_dim / t
    pos = spec.max_positions * spec.hidden if spec.position == "learned" else 0
    per_stage[0] += word + pos
    final_norm = spec.hidden * (2 if spec.norm == "layernorm" else 1)
    if p > 1 or not spec.tied_embeddings:
        per_stage[-1] += word
    per_stage[-1] += final_norm
    return per_stage


# ------------------------------------------------------------------------------ memory


def block_activation_bytes(
    spec: TransformerSpec,
    seq_len: int,
    micro_batch_size: int,
    tensor_width: int,
    recompute_mode: str,
    sequence_parallel: bool = False,
) -> float:
    """Bytes one block keeps for its backward pass, one micro-batch, one tensor-parallel
    rank (Korthikanti et al. 2022, generalised to any MLP width).

    ``none``: ``10 sbh`` replicated (divided by ``t`` with sequence parallelism) plus
    ``(8 sbh + 4 sbf + 5 a s^2 b) / t``; ``selective`` drops the ``5 a s^2 b / t``
    attention term; ``full`` keeps only the block input, ``2 sbh``. Shared by
    :func:`memory_per_device` and the joint search's Megatron accounting
    (:mod:`phaze.training`).

    Examples
    --------
    >>> from phaze import preset
    >>> spec = preset("gpt3-175b")
    >>> sbh = 2048 * 12288
    >>> attention = 5 * 96 * 2048 / (12288 * 8)  # 5 a s / (h t)
    >>> block_activation_bytes(spec, 2048, 1, 8, "none") == sbh * (10 + 24 / 8 + attention)
    True
    >>> block_activation_bytes(spec, 2048, 1, 8, "full") == 2 * sbh
    True
    """
    s, b, h, a, t = seq_len, micro_batch_size, spec.hidden, spec.heads, tensor_width
    sbh = s * b * h
    sp_div = t if sequence_parallel else 1
    if recompute_mode == "full":
        return 2 * sbh / sp_div  # only the block input
    mlp_units = 2 if spec.mlp == "swiglu" else 1
    # replicated unless sequence-parallel: LN inputs 4, QKV input 2, FC1 input 2, 2
    # dropout masks 1 each -> 10 sbh
    replicated = 10 * sbh
    # tensor-parallel: Q and K 4, V 2, projection input 2 -> 8 sbh; GeLU input and FC2
    # input 2 bytes each of the ffn width (x2 for SwiGLU's two branches)
    split = 8 * sbh + (2 * mlp_units + 2) * s * b * spec.ffn
    if recompute_mode == "none":  # softmax output 2, its dropout mask 1 and output 2
        split += 5 * a * s * s * b
    return replicated / sp_div + split / t


def end_activation_bytes(
    spec: TransformerSpec,
    seq_len: int,
    micro_batch_size: int,
    tensor_width: int,
    sequence_parallel: bool = False,
) -> tuple[float, float]:
    """(first, last) stage extras in bytes, whatever the recomputation: the embedding's
    dropout mask ``sbh`` per micro-batch in flight, and the final LayerNorm and LM-head
    inputs ``4 sbh`` plus the fp32 logits ``4 s b V / t`` of one micro-batch on the last
    stage (Korthikanti et al. 2022, section 4).

    Examples
    --------
    >>> from phaze import preset
    >>> first, last = end_activation_bytes(preset("gpt3-175b"), 2048, 1, 8)
    >>> first == 2048 * 12288, last == 4 * 2048 * 12288 + 4 * 2048 * 51200 / 8
    (True, True)
    """
    sbh = seq_len * micro_batch_size * spec.hidden
    sp_div = tensor_width if sequence_parallel else 1
    logits = 4 * seq_len * micro_batch_size * padded_vocab(spec, tensor_width) / tensor_width
    return sbh / sp_div, 4 * sbh / sp_div + logits


def _block_activation_bytes(spec, plan, seq_len, mode):
    """:func:`block_activation_bytes` of a plan."""
    return block_activation_bytes(
        spec, seq_len, plan.micro_batch_size, plan.tensor_width, mode, plan.sequence_parallel
    )


def memory_per_device(
    spec: TransformerSpec, plan: TrainingPlan, seq_len: int, stage: int | None = None
) -> float:
    """Peak bytes on one device (the busiest stage unless ``stage`` is given).

    Training state: 18 bytes per parameter (``6 + 12 / d`` with the distributed
    optimizer); activations: each block's stored bytes (:func:`_block_activation_bytes`)
    times the micro-batches in flight on the stage (``min(p - i, m)`` for stage ``i`` in
    1F1B, times ``1 + (p - 1) / (p v)`` when interleaved), plus with full recomputation
    one block's working set during its backward, the embedding's dropout mask on the
    first stage, and the final LayerNorm and LM-head inputs and fp32 logits on the last
    (Korthikanti et al. 2022, section 4).

    Examples
    --------
    >>> from phaze import preset
    >>> plan = TrainingPlan(8, 16, 8, 1, 1536, recompute_mode="full")
    >>> memory_per_device(preset("gpt3-175b"), plan, 2048) < 80e9  # fits an 80 GB A100
    True
    """
    t, p, v, m = plan.tensor_width, plan.num_stages, plan.interleave, plan.num_micro_batches
    params = stage_params(spec, plan, seq_len)
    state = STATE_BYTES_REPLICATED + STATE_BYTES_SHARDABLE / (
        plan.data_parallel if plan.distributed_optimizer else 1
    )
    per_block = _block_activation_bytes(spec, plan, seq_len, plan.recompute_mode)
    working = (
        _block_activation_bytes(spec, plan, seq_len, "none") if plan.recompute_mode == "full" else 0
    )
    first_extra, last_extra = end_activation_bytes(
        spec, seq_len, plan.micro_batch_size, t, plan.sequence_parallel
    )
    blocks = spec.layers // p
    stages = range(p) if stage is None else (stage,)
    best = 0.0
    for i in stages:
        in_flight = min(p - i, m)
        if v > 1:
            in_flight *= 1 + (p - 1) / (p * v)
        act = blocks * per_block * in_flight + working
        if i == 0:  # the embedding's dropout mask (its output is the first block's input)
            act += first_extra * in_flight
        if i == p - 1:  # final LayerNorm and LM-head inputs, fp32 logits, one micro-batch
            act += last_extra
        best = max(best, params[i] * state + act)
    return best


# -------------------------------------------------------------------------------- time


def _gemm_s(chip, batch: float, m: float, k: float, n: float) -> float:
    """One (batched) GEMM: waves of output tiles at peak x efficiency, never faster than
    the HBM traffic of its operands and result, nor than the host issues a kernel."""
    tiles = batch * math.ceil(m / chip.tile_m) * math.ceil(n / chip.tile_n)
    waves = math.ceil(tiles / chip.num_sms)
    per_sm = chip.peak_tensor_flops * chip.gemm_efficiency / chip.num_sms
    compute = waves * 2.0 * chip.tile_m * chip.tile_n * k / per_sm
    traffic = BYTES * batch * (m * k + k * n + m * n)
    memory = traffic / (chip.hbm_bandwidth_Bps * chip.hbm_efficiency)
    return max(compute, memory, chip.kernel_launch_s)


def _gemm_fwd_bwd(chip, batch, m, k, n) -> tuple[float, float, tuple, tuple]:
    """Forward GEMM and its two backward GEMMs (input gradient ``m x n @ n x k``, weight
    gradient ``k x m @ m x n``): their seconds and their ``(flops, l2_bytes, hbm_bytes)``
    (:func:`~phaze.systems.power.gemm_counts`)."""
    tm, tn = chip.tile_m, chip.tile_n
    bwd_in = gemm_counts(batch, m, n, k, tm, tn)
    bwd_w = gemm_counts(batch, k, m, n, tm, tn)
    return (
        _gemm_s(chip, batch, m, k, n),
        _gemm_s(chip, batch, m, n, k) + _gemm_s(chip, batch, k, m, n),
        gemm_counts(batch, m, k, n, tm, tn),
        (bwd_in[0] + bwd_w[0], bwd_in[1] + bwd_w[1], bwd_in[2] + bwd_w[2]),
    )


def _kernels_work(gemm_counts_list, vector_bytes=()) -> Work:
    """Work of GEMMs (their ``(flops, l2_bytes, hbm_bytes)``) and memory-bound kernels
    (their bytes cross HBM and L2 once)."""
    vec = float(sum(vector_bytes))
    return Work(
        flops=sum(c[0] for c in gemm_counts_list),
        l2_bytes=sum(c[1] for c in gemm_counts_list) + vec,
        hbm_bytes=sum(c[2] for c in gemm_counts_list) + vec,
    )


def _vector_work(*kernel_bytes: float) -> Work:
    """Memory-bound kernels: their bytes cross HBM and L2 once."""
    return _kernels_work((), kernel_bytes)


def _vector_s(chip, *kernel_bytes: float) -> float:
    """Memory-bound kernels, each reading and writing ``kernel_bytes[i]`` bytes of HBM,
    each at least one kernel issue."""
    bw = chip.hbm_bandwidth_Bps * chip.hbm_efficiency
    return sum(max(nbytes / bw, chip.kernel_launch_s) for nbytes in kernel_bytes)


def _comm_s(chip, seconds: float) -> float:
    """A collective is a kernel too: at least one kernel issue."""
    return max(seconds, chip.kernel_launch_s) if seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class _MicroBatch:
    """Seconds of one micro-batch through one unit (a block, the embedding or the head)."""

    fwd: float
    bwd: float
    recompute: float
    tp_comm: float
    work: Work  # of the four together


_TIME_FIELDS = ("fwd", "bwd", "recompute", "tp_comm")


def _tp_collectives(system, plan, size_bytes):
    """Seconds of one tensor-parallel all-reduce of ``size_bytes``, or of its
    reduce-scatter + all-gather pair with sequence parallelism."""
    net, chip, t = system.network, system.chip, plan.tensor_width
    if t == 1:
        return 0.0
    if plan.sequence_parallel:
        return _comm_s(chip, net.reduce_scatter_s(size_bytes, t, 1)) + _comm_s(
            chip, net.all_gather_s(size_bytes, t, 1)
        )
    return _comm_s(chip, net.all_reduce_s(size_bytes, t, 1))


def _tp_work(system, plan, size_bytes) -> Work:
    """Bytes one rank sends in a tensor-parallel all-reduce of ``size_bytes`` (or its
    reduce-scatter + all-gather pair: the same bytes), by network level."""
    t = plan.tensor_width
    if t == 1:
        return Work()
    sent = 2.0 * (t - 1) / t * size_bytes
    return Work(link_bytes=system.network.ring_bytes_by_level(sent, t, 1))


def _block_time(system: System, spec: TransformerSpec, plan: TrainingPlan, seq_len: int):
    chip = system.chip
    t, b, s, h, a = plan.tensor_width, plan.micro_batch_size, seq_len, spec.hidden, spec.heads
    d = spec.head_width
    tokens = b * s
    qkv_n = (spec.heads + 2 * spec.kv_heads) * d / t
    mlp_units = 2 if spec.mlp == "swiglu" else 1
    gemms = {
        "qkv": _gemm_fwd_bwd(chip, 1, tokens, h, qkv_n),
        "scores": _gemm_fwd_bwd(chip, b * a / t, s, d, s),
        "context": _gemm_fwd_bwd(chip, b * a / t, s, s, d),
        "proj": _gemm_fwd_bwd(chip, 1, tokens, h / t, h),
        "fc1": _gemm_fwd_bwd(chip, 1, tokens, h, mlp_units * spec.ffn / t),
        "fc2": _gemm_fwd_bwd(chip, 1, tokens, spec.ffn / t, h),
    }
    sp_div = t if plan.sequence_parallel else 1
    e_rep = tokens * h / sp_div  # elements of a LayerNorm/dropout-region tensor
    e_tp = tokens * h / t  # elements of a tensor-parallel activation
    scores = b * a * s * s / t
    ffn = tokens * spec.ffn / t
    # bytes read + written by each element-wise kernel of the forward pass
    core = (4 * scores, 5 * scores)  # fused scale-mask-softmax; attention dropout
    vec = (
        4 * e_rep,  # LayerNorm 1
        4 * e_tp,  # Q/K/V to batched-head layout
        *core,
        4 * e_tp,  # context back to token-major layout
        7 * e_rep,  # bias + dropout + residual add
        4 * e_rep,  # LayerNorm 2
        (2 * mlp_units + 2) * ffn,  # bias + GeLU (SwiGLU: gate x up)
        7 * e_rep,  # bias + dropout + residual add
    )
    fwd = sum(g[0] for g in gemms.values()) + _vector_s(chip, *vec)
    bwd = sum(g[1] for g in gemms.values()) + _vector_s(chip, *(2 * x for x in vec))
    one = _tp_collectives(system, plan, BYTES * tokens * h)
    fwd_work = _kernels_work([g[2] for g in gemms.values()], vec)
    bwd_work = _kernels_work([g[3] for g in gemms.values()], [2 * x for x in vec])
    one_work = _tp_work(system, plan, BYTES * tokens * h)
    if plan.recompute_mode == "full":
        recompute, comm_rec = fwd, 2 * one
        rec_work = fwd_work + one_work.scaled(2)
    elif plan.recompute_mode == "selective":
        recompute = gemms["scores"][0] + gemms["context"][0] + _vector_s(chip, *core)
        comm_rec = 0.0
        rec_work = _kernels_work([gemms["scores"][2], gemms["context"][2]], core)
    else:
        recompute, comm_rec = 0.0, 0.0
        rec_work = Work()
    work = fwd_work + bwd_work + rec_work + one_work.scaled(4)
    return _MicroBatch(fwd, bwd, recompute, 4 * one + comm_rec, work)


def _embedding_time(system, spec, plan, seq_len):
    chip = system.chip
    t, tokens, h = plan.tensor_width, plan.micro_batch_size * seq_len, spec.hidden
    e = tokens * h / (t if plan.sequence_parallel else 1)
    # gather word rows (read 2, write 2), add positions (read 4, write 2), dropout (read 2,
    # write 2 + mask 1); backward: twice the bytes
    vec = (4 * tokens * h, 6 * tokens * h, 5 * e)
    fwd = _vector_s(chip, *vec)
    bwd = _vector_s(chip, *(2 * x for x in vec))
    # vocabulary-parallel lookup: all-reduce forward (sequence parallelism: reduce-scatter
    # forward, all-gather of the gradient backward)
    comm = _tp_collectives(system, plan, BYTES * tokens * h)
    work = _vector_work(*vec, *(2 * x for x in vec)) + _tp_work(system, plan, BYTES * tokens * h)
    return _MicroBatch(fwd, bwd, 0.0, comm, work)


def _head_time(system, spec, plan, seq_len):
    chip, net = system.chip, system.network
    t, tokens, h = plan.tensor_width, plan.micro_batch_size * seq_len, spec.hidden
    vp = padded_vocab(spec, t)
    e = tokens * h / (t if plan.sequence_parallel else 1)
    logits_f, logits_b, work_f, work_b = _gemm_fwd_bwd(chip, 1, tokens, h, vp / t)
    logits = tokens * vp / t
    fwd = logits_f + _vector_s(chip, 4 * e, _CE_FWD_BYTES * logits)
    bwd = logits_b + _vector_s(chip, 8 * e, _CE_BWD_BYTES * logits)
    size = BYTES * tokens * h
    # backward all-reduce of the input gradient (all-gather forward + reduce-scatter
    # backward with sequence parallelism); three small fp32 all-reduces in the loss
    comm = _tp_collectives(system, plan, size)
    if t > 1:
        comm += 3 * _comm_s(chip, net.all_reduce_s(4 * tokens, t, 1))
    vec = (4 * e, _CE_FWD_BYTES * logits, 8 * e, _CE_BWD_BYTES * logits)
    work = (
        _kernels_work([work_f, work_b], vec)
        + _tp_work(system, plan, size)
        + _tp_work(system, plan, 4 * tokens).scaled(3)
    )
    return _MicroBatch(fwd, bwd, 0.0, comm, work)


def iteration(
    system: System,
    spec: TransformerSpec,
    plan: TrainingPlan,
    seq_len: int,
    cache: dict | None = None,
    with_power: bool = True,
) -> Breakdown:
    """Predicted time of one training iteration, peak memory per device and (when the
    chip has power constants and ``with_power``) board power and energy.

    Ranks are placed as Megatron places them: tensor-parallel groups are consecutive
    ranks, data-parallel peers next (stride ``t``), pipeline stages outermost (stride
    ``t d``). ``cache`` (a dict owned by the caller) keeps the per-micro-batch times of
    the block, embedding and head across calls that share system, model and
    ``(t, b, recompute_mode, sequence_parallel)``.

    Examples
    --------
    >>> from phaze import load_system, preset
    >>> from phaze.systems import iteration
    >>> plan = TrainingPlan(8, 16, 8, 1, 1536, recompute_mode="full")
    >>> est = iteration(load_system("a100-selene"), preset("gpt3-175b"), plan, 2048)
    >>> est.fits, est.bubble_s > 0
    (True, True)
    """
    check_plan(spec, plan, seq_len)
    net, chip = system.network, system.chip
    t, p, dp, v = plan.tensor_width, plan.num_stages, plan.data_parallel, plan.interleave
    m = plan.num_micro_batches
    blocks = spec.layers // p
    key = (
        system,
        spec,
        seq_len,
        t,
        plan.micro_batch_size,
        plan.recompute_mode,
        plan.sequence_parallel,
    )
    parts = None if cache is None else cache.get(key)
    if parts is None:
        parts = (
            _block_time(system, spec, plan, seq_len),
            _embedding_time(system, spec, plan, seq_len),
            _head_time(system, spec, plan, seq_len),
        )
        if cache is not None:
            cache[key] = parts
    blk, emb, head = parts
    units = []
    for i in range(p):
        parts = [(blk, blocks)]
        if i == 0:
            parts.append((emb, 1))
        if i == p - 1:
            parts.append((head, 1))
        units.append(tuple(sum(getattr(u, f) * n for u, n in parts) for f in _TIME_FIELDS))
    totals = [sum(u) for u in units]
    slow = max(range(p), key=totals.__getitem__)
    fwd, bwd, rec, tpc = units[slow]
    bubble = (sum(totals) - totals[slow]) / v
    # point-to-point: activations forward and gradients backward per micro-batch and model
    # chunk, each tensor-parallel rank sending its 1/t share (Megatron's scatter/gather)
    p2p_bytes = BYTES * plan.micro_batch_size * seq_len * spec.hidden / t
    one_p2p = _comm_s(chip, net.p2p_s(p2p_bytes, p, t * dp))
    p2p = 2 * one_p2p * (v * m + p - 1) if p > 1 else 0.0
    # data-parallel gradient reduction (fp32), the tied-embedding all-reduce between the
    # first and last stage, the optimizer step
    params = stage_params(spec, plan, seq_len)
    grads = GRAD_BYTES * max(params)
    if plan.distributed_optimizer:
        dp_comm = net.reduce_scatter_s(grads, dp, t) + net.all_gather_s(BYTES * max(params), dp, t)
    else:
        dp_comm = net.all_reduce_s(grads, dp, t)
    if plan.overlap_dp:
        dp_comm = max(0.0, dp_comm - bwd)  # hidden behind the last backward pass
    if p > 1 and spec.tied_embeddings:
        word = padded_vocab(spec, t) * spec.embed_dim / t
        dp_comm += net.all_reduce_s(GRAD_BYTES * word, 2, (p - 1) * t * dp)
    shard = dp if plan.distributed_optimizer else 1
    opt_bytes = max(params) * (OPTIMIZER_BYTES_SHARDED / shard + OPTIMIZER_BYTES_REPLICATED)
    optimizer = _vector_s(chip, opt_bytes)
    bd = Breakdown(
        forward_s=m * fwd,
        backward_s=m * bwd,
        recompute_s=m * rec,
        tp_comm_s=m * tpc,
        bubble_s=bubble,
        p2p_s=p2p,
        dp_comm_s=dp_comm,
        optimizer_s=optimizer,
        memory_bytes=memory_per_device(spec, plan, seq_len),
        hbm_bytes=chip.hbm_bytes,
    )
    if chip.power is None or not with_power:
        return bd
    works = stage_work(system, spec, plan, seq_len, (blk, emb, head))
    power = iteration_power(chip.power, works, t * dp, bd.iteration_s, plan.global_batch_size)
    return dataclasses.replace(bd, power=power)


def stage_work(system, spec, plan, seq_len, parts=None) -> list[Work]:
    """Work of one device of each pipeline stage in one iteration: its micro-batches'
    kernels and collectives, its share of the point-to-point sends (the pipeline's
    ``2 m (p v - 1)`` sends spread evenly over the stages), the data-parallel gradient
    reduction and tied-embedding all-reduce of its own parameters, and its optimizer
    step. ``parts`` are the block, embedding and head micro-batch costs when known."""
    net = system.network
    t, p, dp, v = plan.tensor_width, plan.num_stages, plan.data_parallel, plan.interleave
    m = plan.num_micro_batches
    if parts is None:
        parts = (
            _block_time(system, spec, plan, seq_len),
            _embedding_time(system, spec, plan, seq_len),
            _head_time(system, spec, plan, seq_len),
        )
    blk, emb, head = parts
    params = stage_params(spec, plan, seq_len)
    p2p_bytes = BYTES * plan.micro_batch_size * seq_len * spec.hidden / t
    p2p_sent = 2.0 * m * (p * v - 1) / p * p2p_bytes if p > 1 else 0.0
    p2p = Work(link_bytes=net.p2p_bytes_by_level(p2p_sent, p, t * dp))
    shard = dp if plan.distributed_optimizer else 1
    word = padded_vocab(spec, t) * spec.embed_dim / t
    out: list[Work] = []
    for i in range(p):
        if 1 < i < p - 1:  # the middle stages are alike
            out.append(out[1])
            continue
        micro = blk.work.scaled(spec.layers // p)
        if i == 0:
            micro = micro + emb.work
        if i == p - 1:
            micro = micro + head.work
        grads = GRAD_BYTES * params[i]
        if plan.distributed_optimizer:
            sent = (dp - 1) / dp * (grads + BYTES * params[i])
        else:
            sent = 2.0 * (dp - 1) / dp * grads
        reduce = Work(link_bytes=net.ring_bytes_by_level(sent, dp, t))
        if p > 1 and spec.tied_embeddings and i in (0, p - 1):
            tied = net.ring_bytes_by_level(GRAD_BYTES * word, 2, (p - 1) * t * dp)
            reduce = reduce + Work(link_bytes=tied)
        opt = params[i] * (OPTIMIZER_BYTES_SHARDED / shard + OPTIMIZER_BYTES_REPLICATED)
        out.append(micro.scaled(m) + p2p + reduce + _vector_work(opt))
    return out
