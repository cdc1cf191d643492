"""Reading Hugging Face ``config.json`` files (GPT-2, BERT, OPT and Llama families).

Files are read locally; nothing is downloaded. Each family's fields map onto a
:class:`~phaze.models.spec.TransformerSpec` (docs/workloads.md).
"""

from __future__ import annotations

import os

from phaze.errors import ConfigError
from phaze.jsonfile import load_json
from phaze.models.spec import TransformerSpec
from phaze.validate import check_bool

__all__ = ["read_hf_config"]


def read_hf_config(path: str | os.PathLike[str], name: str | None = None) -> TransformerSpec:
    """Read a local Hugging Face ``config.json`` (GPT-2, BERT, OPT or Llama family).

    Raises :class:`~phaze.errors.ConfigError` for a file that cannot be read or is not a
    JSON object, an unknown ``model_type``, or a missing or invalid field (integers must be
    integers within :class:`~phaze.models.spec.TransformerSpec`'s limits, flags ``true`` or
    ``false``: the string ``"false"`` is refused, not read as true).
    """
    cfg = load_json(path, "Hugging Face config")
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(cfg).__name__}")
    model_type = cfg.get("model_type")
    readers = {"gpt2": _from_gpt2, "bert": _from_bert, "opt": _from_opt, "llama": _from_llama}
    if not isinstance(model_type, str) or model_type not in readers:
        raise ConfigError(
            f"{path}: model_type={model_type!r} is not supported; "
            f"allowed: {', '.join(sorted(readers))}"
        )
    given = cfg.get("_name_or_path")
    label = (
        name
        or (given if isinstance(given, str) else None)
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

    def flag(self, key: str, default: bool) -> bool:
        """A boolean field: JSON ``true``/``false`` only (``"false"`` is refused)."""
        try:
            return check_bool(key, self.get(key, default))
        except ConfigError as exc:
            raise ConfigError(f"{self.path}: field {exc}") from None

    def positive(self, key: str, default: int | None = None) -> int:
        """An integer field that must be >= 1 when present (0 is not "use the default")."""
        value = self.int(key, default)
        if value < 1:
            raise ConfigError(f"{self.path}: field {key!r}={value!r} must be an integer >= 1")
        return value


def _act(fields: _Fields, key: str) -> str:
    act = fields.get(key, "gelu")
    if not isinstance(act, str):
        raise ConfigError(f"{fields.path}: {key}={act!r} is not supported; allowed: gelu*, relu")
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
        tied_embeddings=f.flag("tie_word_embeddings", True),
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
        tied_embeddings=f.flag("tie_word_embeddings", True),
    )


def _from_opt(f: _Fields, name: str) -> TransformerSpec:
    hidden = f.int("hidden_size")
    pre_norm = f.flag("do_layer_norm_before", True)
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
        bias=f.flag("enable_bias", True),
        embed_dim=f.int("word_embed_proj_dim", hidden),
        final_norm=pre_norm and not f.flag("_remove_final_layer_norm", False),
        position_offset=2,
        tied_embeddings=f.flag("tie_word_embeddings", True),
    )


def _from_llama(f: _Fields, name: str) -> TransformerSpec:
    """Llama family: ``attention_bias`` adds biases to q, k, v and out only, ``mlp_bias``
    to the gate, up and down projections; ``head_dim`` (if given) sets the head width."""
    heads = f.positive("num_attention_heads")
    return TransformerSpec(
        name=name,
        layers=f.int("num_hidden_layers"),
        hidden=f.int("hidden_size"),
        heads=heads,
        kv_heads=f.positive("num_key_value_heads", heads),
        ffn=f.int("intermediate_size"),
        vocab=f.int("vocab_size"),
        max_positions=f.int("max_position_embeddings"),
        norm="rmsnorm",
        mlp="swiglu",
        position="rotary",
        bias=False,  # attention_bias / mlp_bias stated only when they differ from it
        attention_bias=f.flag("attention_bias", False) or None,
        mlp_bias=f.flag("mlp_bias", False) or None,
        head_dim=f.positive("head_dim", 0) if f.cfg.get("head_dim") is not None else 0,
        dropout=False,
        tied_embeddings=f.flag("tie_word_embeddings", False),
    )
