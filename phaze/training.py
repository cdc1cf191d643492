"""How training is accounted for in the joint search: the paper's model or Megatron's.

A :class:`Training` on a :class:`~phaze.Workload` (or passed to :func:`phaze.search`)
chooses the memory and recomputation rules of the placement DP (docs/placement.md,
"Training accounting"):

``paper`` (default)
    The paper's rules, unchanged: a stage needs ``2P + O + A`` bytes (``O = P`` with
    Adam), plus per further micro-batch in flight its activation bytes, or with
    recomputation only the bytes entering it; the recomputing stages rerun their whole
    forward pass, and the last stage never recomputes.
``megatron``
    Megatron-LM's accounting, as the systems engine (:mod:`phaze.systems.training`)
    prices it: mixed-precision Adam keeps 18 bytes per parameter (fp16 weights 2, fp32
    gradients 4, fp32 master weights 4, two fp32 moments 8), i.e. 9 bytes per 2-byte
    parameter byte; activations per layer and micro-batch from Korthikanti et al. 2022
    (:func:`phaze.systems.training.block_activation_bytes`) for the recomputation mode;
    recomputation applies to every stage, the last included. With
    ``recompute_mode="full"`` a block keeps only its input (``2 sbh``), reruns its
    forward pass, and a stage also holds one block's full working set during its
    backward; with ``"selective"`` a block keeps everything except the attention scores,
    softmax and dropout (the ``5 a s^2 b / t`` term) and reruns only the attention core
    (the scores and context GEMMs, softmax, dropout).

The search's ``recompute`` settings stay booleans: ``False`` is mode ``none``, ``True``
is :attr:`Training.recompute_mode`.

Megatron's options (each needs the ``megatron`` accounting):

``distributed_optimizer``
    The fp32 master weights and Adam moments (12 of the 18 bytes per parameter) are
    sharded over the ``d`` data-parallel replicas: ``6 + 12 / d`` bytes per parameter,
    and the gradient synchronisation is a reduce-scatter of the fp32 gradients plus an
    all-gather of the fp16 weights, ``3 (d - 1) / d`` bytes sent per parameter byte,
    instead of the all-reduce's ``4 (d - 1) / d``. The placement stays exact over ``d``
    (:mod:`phaze.placement.data_parallel`).
``sequence_parallel``
    At every tensor width ``t > 1``: the layer graphs of
    :func:`~phaze.models.build_graph` with ``sequence_parallel=True`` (a block's norms,
    dropouts and residual adds, the embedding's dropout and the head's final norm on
    ``s / t`` tokens; the collectives keep their bytes: an all-gather plus a
    reduce-scatter move what one all-reduce moves) and the activation bytes of
    :func:`~phaze.systems.training.block_activation_bytes` with ``sequence_parallel``
    (the ``sbh`` terms divided by ``t``). Pipeline sends stay ``b s h`` elements.
``optimizer_step``
    The Adam step as the systems engine prices it, memory-bound: 46 bytes of HBM traffic
    per parameter on the optimizer's shard (unscale, gradient norm, Adam, copy to fp16)
    and 4 on every replica (zeroing the gradients), at the accelerator's HBM bandwidth;
    charged on the first stage's parameters (the stage the synchronisation is charged
    on), once per batch.
``overlap_dp``
    The synchronisation overlaps the first stage's backward pass of its last
    micro-batch: ``max(0, sync - backward)``, as the systems engine hides it behind the
    slowest stage's backward.
``interleaves``
    Candidate numbers ``v`` of model chunks per device of Megatron's interleaved 1F1B
    schedule (default ``(1,)``: not interleaved); the placement searches every
    candidate exactly (docs/placement.md, "Interleaved plans") and the plan reports the
    chosen ``v``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phaze.errors import ConfigError
from phaze.placement.data_parallel import DataParallelTerms
from phaze.systems.training import (
    OPTIMIZER_BYTES_REPLICATED,
    OPTIMIZER_BYTES_SHARDED,
    STATE_BYTES_REPLICATED,
    STATE_BYTES_SHARDABLE,
    block_activation_bytes,
    end_activation_bytes,
)
from phaze.validate import check_bool, check_choice

__all__ = [
    "ACCOUNTINGS",
    "ATTENTION_CORE_OPS",
    "MAX_INTERLEAVE",
    "MEGATRON_OPTIONS",
    "TRAINING_RECOMPUTE_MODES",
    "Training",
    "attention_core_mask",
    "check_interleaves",
    "megatron_layer_bytes",
    "stage_rules",
]

#: Training accountings, default first.
ACCOUNTINGS = ("paper", "megatron")
#: What the recompute=True setting means, per accounting ("full" first: the default).
TRAINING_RECOMPUTE_MODES = {"paper": ("full",), "megatron": ("full", "selective")}
#: Primitive operators of a block that selective recomputation reruns (a fused operator
#: is part of the attention core when all its primitives are).
ATTENTION_CORE_OPS = frozenset({"qk", "mask", "softmax", "attn_dropout", "av"})
#: Mixed-precision Adam: training-state bytes per parameter (phaze.systems.training).
MIXED_ADAM_BYTES_PER_PARAM = STATE_BYTES_REPLICATED + STATE_BYTES_SHARDABLE
#: Megatron options of :class:`Training` (booleans, off by default, ``megatron`` only).
MEGATRON_OPTIONS = ("distributed_optimizer", "sequence_parallel", "optimizer_step", "overlap_dp")
#: The largest interleave ``v`` (model chunks per device) a search accepts.
MAX_INTERLEAVE = 64


def check_interleaves(value: object) -> tuple[int, ...]:
    """``value`` as a sorted tuple of distinct interleaves (model chunks per device) if
    it is a non-empty sequence of integers from 1 to :data:`MAX_INTERLEAVE`.

    Examples
    --------
    >>> check_interleaves([4, 1, 2])
    (1, 2, 4)
    >>> check_interleaves((0,))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    phaze.errors.ConfigError: interleaves=(0,) is invalid; allowed: ...
    """
    allowed = (
        f"a non-empty tuple of distinct integers from 1 to {MAX_INTERLEAVE} (model chunks per "
        "device), e.g. (1, 2, 4)"
    )
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ConfigError(f"interleaves={value!r} is invalid; allowed: {allowed}")
    items = tuple(value)
    ok = bool(items) and all(
        not isinstance(v, bool) and isinstance(v, (int, np.integer)) and 1 <= v <= MAX_INTERLEAVE
        for v in items
    )
    if not ok or len(set(items)) != len(items):
        raise ConfigError(f"interleaves={items!r} is invalid; allowed: {allowed}")
    return tuple(sorted(int(v) for v in items))


@dataclass(frozen=True, slots=True)
class Training:
    """Memory and recomputation rules of the joint search's placement.

    Parameters
    ----------
    accounting : {"paper", "megatron"}
        ``paper``: the paper's model (2 or 3 bytes of state per parameter byte, stage
        recomputation); ``megatron``: mixed-precision Adam (18 bytes per parameter) and
        Megatron's per-layer activations and recomputation (module docstring).
    recompute_mode : {"full", "selective"}
        What recomputation means when a search setting turns it on; ``selective`` needs
        the ``megatron`` accounting.
    distributed_optimizer : bool
        Shard the optimizer state over the data-parallel replicas (``megatron`` only;
        module docstring).
    sequence_parallel : bool
        Megatron's sequence parallelism at every tensor width ``t > 1`` (``megatron``
        only; module docstring); the sequence length must be a multiple of every such
        width searched.
    optimizer_step : bool
        Add the Adam step of the first stage to the time per batch (``megatron`` only;
        module docstring).
    overlap_dp : bool
        Hide the gradient synchronisation behind the first stage's backward pass of its
        last micro-batch (``megatron`` only; module docstring).
    interleaves : tuple of int
        Candidate model chunks per device ``v`` of the interleaved 1F1B schedule, each
        from 1 to :data:`MAX_INTERLEAVE` (default ``(1,)``; other values ``megatron``
        only; module docstring).

    Examples
    --------
    >>> Training("megatron", "selective").state_bytes_per_param("adam")
    18.0
    >>> Training().state_bytes_per_param("sgd"), Training().state_bytes_per_param("adam")
    (4.0, 6.0)
    >>> Training("paper", "selective")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    phaze.errors.ConfigError: recompute_mode='selective' is invalid ...; allowed: full
    """

    accounting: str = "paper"
    recompute_mode: str = "full"
    distributed_optimizer: bool = False
    sequence_parallel: bool = False
    optimizer_step: bool = False
    overlap_dp: bool = False
    interleaves: tuple[int, ...] = (1,)

    def __post_init__(self) -> None:
        check_choice("accounting", self.accounting, ACCOUNTINGS)
        allowed = TRAINING_RECOMPUTE_MODES[self.accounting]
        if self.recompute_mode not in allowed:
            raise ConfigError(
                f"recompute_mode={self.recompute_mode!r} is invalid with "
                f"accounting={self.accounting!r}; allowed: {', '.join(allowed)}"
            )
        for name in MEGATRON_OPTIONS:
            value = check_bool(name, getattr(self, name))
            object.__setattr__(self, name, value)
            if value and self.is_paper:
                raise ConfigError(
                    f"{name}=True is invalid with accounting='paper'; allowed: False, or "
                    "accounting='megatron'"
                )
        interleaves = check_interleaves(self.interleaves)
        object.__setattr__(self, "interleaves", interleaves)
        if interleaves != (1,) and self.is_paper:
            raise ConfigError(
                f"interleaves={interleaves!r} is invalid with accounting='paper'; allowed: "
                "(1,), or accounting='megatron'"
            )

    def fingerprint(self) -> str:
        """How a result store tells searches apart: the accounting and recomputation mode
        as before the options existed, plus each option that is on (so stores written
        without options still match, and a search with other options is another one).

        Examples
        --------
        >>> Training("megatron").fingerprint()
        "Training(accounting='megatron', recompute_mode='full')"
        >>> Training("megatron", distributed_optimizer=True).fingerprint()
        "Training(accounting='megatron', recompute_mode='full', distributed_optimizer=True)"
        >>> Training("megatron", interleaves=(1, 2)).fingerprint()
        "Training(accounting='megatron', recompute_mode='full', interleaves=(1, 2))"
        """
        parts = [f"accounting={self.accounting!r}", f"recompute_mode={self.recompute_mode!r}"]
        parts += [f"{name}=True" for name in self.options()]
        if self.interleaves != (1,):
            parts.append(f"interleaves={self.interleaves!r}")
        return f"Training({', '.join(parts)})"

    def options(self) -> dict:
        """The Megatron options that are on, ``{name: True}`` (empty by default)."""
        return {name: True for name in MEGATRON_OPTIONS if getattr(self, name)}

    def dp_terms(
        self, bytes_per_element: int = 2, hbm_bandwidth_Bps: float | None = None
    ) -> DataParallelTerms:
        """The placement's data-parallel terms (:class:`~phaze.placement.DataParallelTerms`)
        on an accelerator with ``hbm_bandwidth_Bps``: the paper's by default; with the
        distributed optimizer ``12 / bytes_per_element`` bytes of state per parameter byte
        sharded and the reduce-scatter + all-gather (sync factor 3); with the optimizer
        step its HBM bytes per parameter byte (46 on the optimizer shard, 4 on every
        replica, per ``bytes_per_element``) at the HBM bandwidth (no step term when the
        bandwidth is not given: the terms that do not depend on the accelerator); with
        ``overlap_dp`` the overlap.

        Examples
        --------
        >>> Training("megatron", distributed_optimizer=True).dp_terms()
        DataParallelTerms(sharded_state_factor=6.0, sync_factor=3.0, step_s_per_B=0.0, \
step_sharded_s_per_B=0.0, overlap_dp=False)
        >>> t = Training("megatron", optimizer_step=True).dp_terms(2, 1e12)
        >>> round(t.step_s_per_B * 1e12, 9), t.step_sharded_s_per_B  # 50 B per 2-byte parameter
        (25.0, 0.0)
        """
        sharded, sync = 0.0, 4.0
        if self.distributed_optimizer:
            sharded, sync = STATE_BYTES_SHARDABLE / bytes_per_element, 3.0
        step = step_sharded = 0.0
        if self.optimizer_step and hbm_bandwidth_Bps is not None:
            per_byte = 1.0 / (bytes_per_element * float(hbm_bandwidth_Bps))
            shard = OPTIMIZER_BYTES_SHARDED * per_byte
            step = OPTIMIZER_BYTES_REPLICATED * per_byte
            if self.distributed_optimizer:
                step_sharded = shard
            else:
                step += shard
        return DataParallelTerms(
            sharded_state_factor=sharded,
            sync_factor=sync,
            step_s_per_B=step,
            step_sharded_s_per_B=step_sharded,
            overlap_dp=self.overlap_dp,
        )

    def least_state_bytes_per_param(self, optimizer: str, d_max: int, bpe: int = 2) -> float:
        """The fewest state bytes per parameter any plan of at most ``d_max`` replicas
        keeps (the distributed optimizer's at ``d_max``; else
        :meth:`state_bytes_per_param`)."""
        full = self.state_bytes_per_param(optimizer, bpe)
        if not self.distributed_optimizer:
            return full
        return STATE_BYTES_REPLICATED + STATE_BYTES_SHARDABLE / max(1, d_max)

    @property
    def is_paper(self) -> bool:
        """The paper's accounting (the default)."""
        return self.accounting == "paper"

    def mode(self, recompute: bool) -> str:
        """The recomputation mode of a search setting: ``none`` or :attr:`recompute_mode`."""
        return self.recompute_mode if recompute else "none"

    def state_bytes_per_param(self, optimizer: str, bytes_per_element: int = 2) -> float:
        """Bytes of weights, gradients and optimizer state per parameter.

        Paper: ``2`` elements (weights and gradients) plus one with Adam; Megatron: 18
        (mixed-precision Adam)."""
        if self.is_paper:
            return float((3 if optimizer == "adam" else 2) * bytes_per_element)
        return float(MIXED_ADAM_BYTES_PER_PARAM)

    def check_workload(self, optimizer: str, bytes_per_element: int) -> None:
        """ConfigError when the workload cannot use this accounting (Megatron's needs
        Adam at 2 bytes per element: its 18 bytes per parameter are mixed-precision
        Adam's)."""
        if self.is_paper:
            return
        if optimizer != "adam":
            raise ConfigError(
                f"optimizer={optimizer!r} is invalid with training accounting 'megatron' "
                "(mixed-precision Adam); allowed: adam"
            )
        if bytes_per_element != 2:
            raise ConfigError(
                f"bytes_per_element={bytes_per_element} is invalid with training accounting "
                "'megatron' (fp16/bf16 weights and activations); allowed: 2"
            )


def stage_rules(training: Training, optimizer: str, recompute: bool, bytes_per_element: int = 2):
    """``(state_factor, recompute_last, stash_inputs)`` of the placement kernels: bytes of
    state per parameter byte, whether the last stage recomputes too, whether a
    recomputing stage stashes only its input bytes.

    Examples
    --------
    >>> stage_rules(Training(), "adam", True)
    (3.0, False, True)
    >>> stage_rules(Training("megatron"), "adam", True)
    (9.0, True, False)
    """
    factor = training.state_bytes_per_param(optimizer, bytes_per_element) / bytes_per_element
    if training.is_paper:
        return factor, False, True
    return factor, bool(recompute), False


def megatron_layer_bytes(graph, recompute_mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-layer ``(activation_bytes, work_bytes)`` of a model graph under Megatron's
    accounting (the systems engine's formulas), one micro-batch, one device.

    The embedding keeps its dropout mask (``sbh``), every block
    :func:`~phaze.systems.training.block_activation_bytes` of the mode, the head the final
    LayerNorm and LM-head inputs and the fp32 logits; with the graph's sequence
    parallelism the ``sbh`` terms are divided by ``t``. ``work_bytes`` is a block's ``none``
    activation bytes under full recomputation (held once while it runs its backward),
    else 0.

    Parameters
    ----------
    graph : phaze.models.ModelGraph
        Layers with roles ``embedding``, ``block`` and ``head``.
    recompute_mode : {"none", "selective", "full"}

    Examples
    --------
    >>> from phaze import build_graph, preset
    >>> g = build_graph(preset("gpt3-175b"), 2048, 1, 8)
    >>> act, work = megatron_layer_bytes(g, "full")
    >>> bool(act[1] == 2 * 2048 * 12288), bool(work[1] == megatron_layer_bytes(g, "none")[0][1])
    (True, True)
    """
    check_choice("recompute_mode", recompute_mode, ("none", "selective", "full"))
    spec, s, b, t = graph.spec, graph.seq_len, graph.micro_batch_size, graph.tensor_width
    sp = graph.sequence_parallel
    block = block_activation_bytes(spec, s, b, t, recompute_mode, sp)
    working = block_activation_bytes(spec, s, b, t, "none", sp) if recompute_mode == "full" else 0.0
    first, last = end_activation_bytes(spec, s, b, t, sp)
    n = len(graph.layers)
    act, work = np.zeros(n), np.zeros(n)
    for pos, layer in enumerate(graph.layers):
        if layer.role == "embedding":
            act[pos] = first
        elif layer.role == "head":
            act[pos] = last
        else:
            act[pos], work[pos] = block, working
    return act, work


def attention_core_mask(ops) -> np.ndarray:
    """Which fused operators of a layer's :class:`~phaze.models.OpGraph` belong to the
    attention core that selective recomputation reruns (:data:`ATTENTION_CORE_OPS`)."""
    return np.array([set(op.name.split("+")) <= ATTENTION_CORE_OPS for op in ops.ops], dtype=bool)
