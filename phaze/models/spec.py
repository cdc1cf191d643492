"""Transformer specifications, presets and Hugging Face ``config.json`` reading.

A :class:`TransformerSpec` holds the hyper-parameters that determine a model's layer and
operator graphs (design.md section 4). Presets are the models of the PHAZE paper with their
real hyper-parameters, plus Llama-2 13B and 70B; :meth:`TransformerSpec.from_hf_config`
reads a local Hugging Face ``config.json`` of the GPT-2, BERT, OPT and Llama families
(nothing is downloaded).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from types import MappingProxyType

from phaze.errors import ConfigError

__all__ = ["PRESETS", "TransformerSpec", "preset", "preset_names"]

_NORMS = ("layernorm", "rmsnorm")
_MLPS = ("gelu", "relu", "swiglu")
_POSITIONS = ("learned", "rotary")
_ARCHITECTURES = ("decoder", "encoder")


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
        Linear layers and norms have biases.
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

    def __post_init__(self) -> None:
        if self.kv_heads == 0:
            object.__setattr__(self, "kv_heads", self.heads)
        if self.embed_dim == 0:
            object.__setattr__(self, "embed_dim", self.hidden)
        if self.default_seq == 0:
            object.__setattr__(self, "default_seq", self.max_positions)
        for field in (
            "layers",
            "hidden",
            "heads",
            "ffn",
            "vocab",
            "max_positions",
            "kv_heads",
            "embed_dim",
            "default_seq",
        ):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{self.name}: {field}={value!r} must be an integer >= 1")
        for field in ("type_vocab", "position_offset"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{self.name}: {field}={value!r} must be an integer >= 0")
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
        if self.hidden % self.heads:
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
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden // self.heads

    def block_matrix_params(self) -> int:
        """Weights of the GEMM matrices of one block (no biases or norms)."""
        h, kv = self.hidden, self.kv_heads * self.head_dim
        attention = h * h + 2 * h * kv + h * h
        mlp = (3 if self.mlp == "swiglu" else 2) * h * self.ffn
        return attention + mlp

    def block_params(self) -> int:
        """Parameters of one transformer block (weights, biases, norms)."""
        h, kv = self.hidden, self.kv_heads * self.head_dim
        n = self.block_matrix_params()
        if self.bias:
            n += h + 2 * kv + h  # q, k, v, out
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
        """Read a local Hugging Face ``config.json`` (GPT-2, BERT, OPT or Llama family).

        Raises :class:`~phaze.errors.ConfigError` for an unknown ``model_type`` or a
        missing field; ``OSError`` if the file cannot be read.
        """
        with open(path, encoding="utf-8") as fh:
            try:
                cfg = json.load(fh)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(cfg, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        model_type = cfg.get("model_type")
        readers = {"gpt2": _from_gpt2, "bert": _from_bert, "opt": _from_opt, "llama": _from_llama}
        if model_type not in readers:
            raise ConfigError(
                f"{path}: model_type={model_type!r} is not supported; "
                f"allowed: {', '.join(sorted(readers))}"
            )
        label = (
            name
            or cfg.get("_name_or_path")
            or os.path.basename(os.path.dirname(os.path.abspath(path)))
            or model_type
        )
        return readers[model_type](_Fields(cfg, str(path)), str(label))


class _Fields:
    """Typed access to config.json fields with errors that name the field."""

    def __init__(self, cfg: dict, path: str) -> None:
        self.cfg, self.path = cfg, path

    def int(self, key: str, default: int | None = None) -> int:
        value = self.cfg.get(key, default)
        if value is None:
            raise ConfigError(
                f"{self.path}: missing field {key!r} (model_type={self.cfg.get('model_type')!r})"
            )
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.path}: field {key!r}={value!r} must be an integer")
        return value

    def get(self, key: str, default: object) -> object:
        value = self.cfg.get(key, default)
        return default if value is None else value


def _act(fields: _Fields, key: str) -> str:
    act = str(fields.get(key, "gelu"))
    if act == "relu":
        return "relu"
    if act.startswith("gelu"):
        return "gelu"
    raise ConfigError(f"{fields.path}: {key}={act!r} is not supported; allowed: gelu*, relu")


def _from_gpt2(f: _Fields, name: str) -> TransformerSpec:
    hidden = f.int("n_embd")
    return TransformerSpec(
        name=name,
        layers=f.int("n_layer"),
        hidden=hidden,
        heads=f.int("n_head"),
        ffn=f.int("n_inner", 4 * hidden) if f.cfg.get("n_inner") else 4 * hidden,
        vocab=f.int("vocab_size"),
        max_positions=f.int("n_positions"),
        mlp=_act(f, "activation_function"),
        tied_embeddings=bool(f.get("tie_word_embeddings", True)),
    )


def _from_bert(f: _Fields, name: str) -> TransformerSpec:
    return TransformerSpec(
        name=name,
        layers=f.int("num_hidden_layers"),
        hidden=f.int("hidden_size"),
        heads=f.int("num_attention_heads"),
        ffn=f.int("intermediate_size"),
        vocab=f.int("vocab_size"),
        max_positions=f.int("max_position_embeddings"),
        mlp=_act(f, "hidden_act"),
        architecture="encoder",
        pre_norm=False,
        type_vocab=f.int("type_vocab_size", 2),
        final_norm=False,
        tied_embeddings=bool(f.get("tie_word_embeddings", True)),
    )


def _from_opt(f: _Fields, name: str) -> TransformerSpec:
    hidden = f.int("hidden_size")
    pre_norm = bool(f.get("do_layer_norm_before", True))
    return TransformerSpec(
        name=name,
        layers=f.int("num_hidden_layers"),
        hidden=hidden,
        heads=f.int("num_attention_heads"),
        ffn=f.int("ffn_dim"),
        vocab=f.int("vocab_size"),
        max_positions=f.int("max_position_embeddings"),
        mlp=_act(f, "activation_function"),
        pre_norm=pre_norm,
        bias=bool(f.get("enable_bias", True)),
        embed_dim=f.int("word_embed_proj_dim", hidden),
        final_norm=pre_norm and not bool(f.get("_remove_final_layer_norm", False)),
        position_offset=2,
        tied_embeddings=bool(f.get("tie_word_embeddings", True)),
    )


def _from_llama(f: _Fields, name: str) -> TransformerSpec:
    heads = f.int("num_attention_heads")
    return TransformerSpec(
        name=name,
        layers=f.int("num_hidden_layers"),
        hidden=f.int("hidden_size"),
        heads=heads,
        kv_heads=f.int("num_key_value_heads", heads),
        ffn=f.int("intermediate_size"),
        vocab=f.int("vocab_size"),
        max_positions=f.int("max_position_embeddings"),
        norm="rmsnorm",
        mlp="swiglu",
        position="rotary",
        bias=bool(f.get("attention_bias", False)),
        dropout=False,
        tied_embeddings=bool(f.get("tie_word_embeddings", False)),
    )


def _gpt(
    name: str, layers: int, hidden: int, heads: int, seq: int, ffn: int = 0, **kw: object
) -> TransformerSpec:
    return TransformerSpec(
        name=name,
        layers=layers,
        hidden=hidden,
        heads=heads,
        ffn=ffn or 4 * hidden,
        vocab=50257,
        max_positions=max(seq, 1024),
        default_seq=seq,
        **kw,
    )


def _llama(
    name: str, layers: int, hidden: int, heads: int, kv_heads: int, ffn: int
) -> TransformerSpec:
    return TransformerSpec(
        name=name,
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        ffn=ffn,
        vocab=32000,
        max_positions=4096,
        norm="rmsnorm",
        mlp="swiglu",
        position="rotary",
        tied_embeddings=False,
        bias=False,
        dropout=False,
        default_seq=4096,
    )


def _bert(name: str, pre_norm: bool) -> TransformerSpec:
    return TransformerSpec(
        name=name,
        layers=24,
        hidden=1024,
        heads=16,
        ffn=4096,
        vocab=30522,
        max_positions=512,
        architecture="encoder",
        pre_norm=pre_norm,
        final_norm=pre_norm,
        type_vocab=2,
        default_seq=512,
    )


#: The paper's models (design.md 4.1) plus Llama-2 13B/70B, by name.
PRESETS: MappingProxyType[str, TransformerSpec] = MappingProxyType(
    {
        s.name: s
        for s in (
            _bert("bert-large", pre_norm=False),
            _gpt("gpt2-xl", 48, 1600, 25, 1024),
            TransformerSpec(
                name="opt-350m",
                layers=24,
                hidden=1024,
                heads=16,
                ffn=4096,
                vocab=50272,
                max_positions=2048,
                mlp="relu",
                pre_norm=False,
                final_norm=False,
                embed_dim=512,
                position_offset=2,
                default_seq=2048,
            ),
            _llama("llama2-7b", 32, 4096, 32, 32, 11008),
            _llama("llama2-13b", 40, 5120, 40, 40, 13824),
            _llama("llama2-70b", 80, 8192, 64, 8, 28672),
            _bert("megatron-bert", pre_norm=True),
            _gpt("megatron-gpt2-xl", 40, 1024, 16, 1024),
            _gpt("megatron-gpt2-54", 54, 1920, 20, 1024),
            _gpt("megatron-gpt2-72", 72, 3072, 24, 1024),
            _gpt("gpt3-175b", 96, 12288, 96, 2048),
        )
    }
)


def preset_names() -> tuple[str, ...]:
    """Names of the built-in presets, in table order."""
    return tuple(PRESETS)


def preset(name: str) -> TransformerSpec:
    """Return the preset called ``name``.

    Examples
    --------
    >>> preset("gpt3-175b").layers
    96
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known presets: {', '.join(PRESETS)}") from None
