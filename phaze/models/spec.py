"""The transformer specification: the hyper-parameters that fix a model's graphs.

A :class:`TransformerSpec` holds what determines a model's layer and operator graphs
(docs/workloads.md). Built-in presets live in :mod:`phaze.models.presets`; Hugging Face
``config.json`` files are read by :mod:`phaze.models.hf`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from phaze.errors import ConfigError
from phaze.validate import check_bool, check_int

__all__ = ["TransformerSpec"]

_NORMS = ("layernorm", "rmsnorm")
_MLPS = ("gelu", "relu", "swiglu")
_POSITIONS = ("learned", "rotary")
_ARCHITECTURES = ("decoder", "encoder")
#: Allowed range of every integer field: far beyond any published model, small enough that
#: graphs and byte counts stay exact and fit in memory.
_LIMITS = (
    ("layers", 1, 10_000),
    ("hidden", 1, 2**20),
    ("heads", 1, 2**14),
    ("ffn", 1, 2**22),
    ("vocab", 1, 2**24),
    ("max_positions", 1, 2**24),
    ("kv_heads", 1, 2**14),
    ("embed_dim", 1, 2**20),
    ("default_seq", 1, 2**24),
    ("type_vocab", 0, 2**16),
    ("position_offset", 0, 2**16),
    ("head_dim", 0, 2**16),
)


@dataclass(frozen=True, slots=True)
class TransformerSpec:
    """Hyper-parameters of a transformer (dimensions in elements, not bytes).

    Parameters
    ----------
    name : str
        Model name used in reports.
    layers, hidden, heads, ffn, vocab, max_positions : int
        Transformer blocks, model width, attention heads, MLP width, vocabulary size and
        maximum sequence length.
    kv_heads : int
        Key/value heads (grouped-query attention); 0 means ``heads``.
    norm : {"layernorm", "rmsnorm"}
    mlp : {"gelu", "relu", "swiglu"}
        ``swiglu`` has separate gate and up projections of width ``ffn``.
    position : {"learned", "rotary"}
    tied_embeddings : bool
        The LM head reuses the word-embedding matrix (counted once in
        :meth:`param_count`).
    architecture : {"decoder", "encoder"}
        Causal decoder (LM head) or bidirectional encoder (BERT masked-LM head).
    pre_norm : bool
        Pre-LN blocks (GPT, Llama) or post-LN (BERT, OPT-350m).
    bias : bool
        Linear layers have biases (the default of ``attention_bias`` and ``mlp_bias``).
    dropout : bool
        Dropout after attention probabilities and after each sub-block (training).
    embed_dim : int
        Width of the word embedding when it differs from ``hidden`` (OPT-350m: 512,
        projected in and out); 0 means ``hidden``.
    type_vocab : int
        Token-type embeddings (BERT: 2); 0 for none.
    final_norm : bool
        A norm after the last block.
    position_offset : int
        Extra learned position rows (OPT: 2).
    default_seq : int
        Sequence length used when none is given (the paper's setting).
    attention_bias, mlp_bias : bool, optional
        The attention projections (q, k, v, out) and the MLP projections have biases;
        None (default) means ``bias``. Llama configs set them apart. Read the resolved
        values from :attr:`has_attention_bias` and :attr:`has_mlp_bias`.
    head_dim : int
        Width of one attention head; 0 (default) means ``hidden // heads``, which must
        then divide evenly. Llama-family configs may give it explicitly. The resolved
        value is :attr:`head_width`. (Unresolved defaults stay so under
        ``dataclasses.replace``: changing ``hidden`` or ``bias`` changes them too.)
    """

    name: str
    layers: int
    hidden: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    kv_heads: int = 0
    norm: str = "layernorm"
    mlp: str = "gelu"
    position: str = "learned"
    tied_embeddings: bool = True
    architecture: str = "decoder"
    pre_norm: bool = True
    bias: bool = True
    dropout: bool = True
    embed_dim: int = 0
    type_vocab: int = 0
    final_norm: bool = True
    position_offset: int = 0
    default_seq: int = 0
    attention_bias: bool | None = None
    mlp_bias: bool | None = None
    head_dim: int = 0

    def __post_init__(self) -> None:
        if self.kv_heads == 0:
            object.__setattr__(self, "kv_heads", self.heads)
        if self.embed_dim == 0:
            object.__setattr__(self, "embed_dim", self.hidden)
        if self.default_seq == 0:
            object.__setattr__(self, "default_seq", self.max_positions)
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"name={self.name!r} is invalid; allowed: a non-empty string")
        for field, low, high in _LIMITS:
            try:
                check_int(field, getattr(self, field), low, high)
            except ConfigError as exc:
                raise ConfigError(f"{self.name}: {exc}") from None
        for field, allowed in (
            ("norm", _NORMS),
            ("mlp", _MLPS),
            ("position", _POSITIONS),
            ("architecture", _ARCHITECTURES),
        ):
            if getattr(self, field) not in allowed:
                raise ConfigError(
                    f"{self.name}: {field}={getattr(self, field)!r} is not "
                    f"supported; allowed: {', '.join(allowed)}"
                )
        flags = ("tied_embeddings", "pre_norm", "bias", "dropout", "final_norm")
        optional = ("attention_bias", "mlp_bias")  # None: as ``bias``
        for field in flags + optional:
            if field in optional and getattr(self, field) is None:
                continue
            try:
                check_bool(field, getattr(self, field))
            except ConfigError as exc:
                raise ConfigError(f"{self.name}: {exc}") from None
        if self.head_dim == 0 and self.hidden % self.heads:
            raise ConfigError(f"{self.name}: heads={self.heads} must divide hidden={self.hidden}")
        if self.heads % self.kv_heads:
            raise ConfigError(
                f"{self.name}: kv_heads={self.kv_heads} must divide heads={self.heads}"
            )
        if self.default_seq > self.max_positions:
            raise ConfigError(
                f"{self.name}: default_seq={self.default_seq} exceeds "
                f"max_positions={self.max_positions}"
            )

    @property
    def head_width(self) -> int:
        """Width of one attention head: ``head_dim``, or ``hidden // heads`` if it is 0."""
        return self.head_dim or self.hidden // self.heads

    @property
    def has_attention_bias(self) -> bool:
        """The q, k, v and out projections have biases (``attention_bias``, else ``bias``)."""
        return self.bias if self.attention_bias is None else self.attention_bias

    @property
    def has_mlp_bias(self) -> bool:
        """The MLP projections have biases (``mlp_bias``, else ``bias``)."""
        return self.bias if self.mlp_bias is None else self.mlp_bias

    def block_matrix_params(self) -> int:
        """Weights of the GEMM matrices of one block (no biases or norms)."""
        h, q, kv = self.hidden, self.heads * self.head_width, self.kv_heads * self.head_width
        attention = h * q + 2 * h * kv + q * h
        mlp = (3 if self.mlp == "swiglu" else 2) * h * self.ffn
        return attention + mlp

    def block_params(self) -> int:
        """Parameters of one transformer block (weights, biases, norms)."""
        h, q, kv = self.hidden, self.heads * self.head_width, self.kv_heads * self.head_width
        n = self.block_matrix_params()
        if self.has_attention_bias:
            n += q + 2 * kv + h  # q, k, v, out
        if self.has_mlp_bias:
            n += (2 * self.ffn if self.mlp == "swiglu" else self.ffn) + h
        n += 2 * self._norm_params()
        return n

    def _norm_params(self) -> int:
        return self.hidden * (2 if self.norm == "layernorm" else 1)

    def embedding_params(self, vocab: int | None = None) -> int:
        """Word, position and token-type embeddings (+ BERT's embedding norm, OPT's
        input projection)."""
        v = self.vocab if vocab is None else vocab
        n = v * self.embed_dim
        if self.position == "learned":
            n += (self.max_positions + self.position_offset) * self.hidden
        n += self.type_vocab * self.hidden
        if self.architecture == "encoder":
            n += self._norm_params()
        if self.embed_dim != self.hidden:
            n += self.embed_dim * self.hidden  # project_in, no bias
        return n

    def head_params(self, vocab: int | None = None) -> int:
        """Final norm, output projection / MLM transform, and the untied LM head."""
        v = self.vocab if vocab is None else vocab
        n = self._norm_params() if self.final_norm else 0
        if self.embed_dim != self.hidden:
            n += self.hidden * self.embed_dim  # project_out, no bias
        if self.architecture == "encoder":
            n += self.hidden * self.hidden + self.hidden + self._norm_params()  # transform
            n += v  # decoder bias
        if not self.tied_embeddings:
            n += v * self.embed_dim
        return n

    def param_count(self, vocab: int | None = None) -> int:
        """Total parameters, tied weights counted once (Hugging Face's count).

        Parameters
        ----------
        vocab : int, optional
            Vocabulary to count with (e.g. Megatron's padded vocabulary); default
            ``self.vocab``.

        Examples
        --------
        >>> from phaze.models import preset
        >>> preset("llama2-7b").param_count()
        6738415616
        """
        return (
            self.embedding_params(vocab)
            + self.layers * self.block_params()
            + self.head_params(vocab)
        )

    @classmethod
    def from_hf_config(
        cls, path: str | os.PathLike[str], name: str | None = None
    ) -> TransformerSpec:
        """Read a local Hugging Face ``config.json`` (GPT-2, BERT, OPT or Llama family);
        see :func:`phaze.models.hf.read_hf_config`.

        Raises :class:`~phaze.errors.ConfigError` for an unknown ``model_type``, a missing
        or invalid field, or a file that cannot be read.
        """
        from phaze.models.hf import read_hf_config

        return read_hf_config(path, name)
