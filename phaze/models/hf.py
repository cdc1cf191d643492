"""Reading Hugging Face ``config.json`` files (GPT-2, BERT, OPT and Llama families).

Files are read locally; nothing is downloaded. Each family's fields map onto a
:class:`~phaze.models.spec.TransformerSpec` (docs/workloads.md).
"""

from __future__ import annotations

import json
import os

from phaze.errors import ConfigError
from phaze.models.spec import TransformerSpec

__all__ = ["read_hf_config"]


def read_hf_config(path: str | os.PathLike[str], name: str | None = None) -> TransformerSpec:
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
