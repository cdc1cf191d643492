"""Built-in model presets: the PHAZE paper's models with their real hyper-parameters,
plus Llama-2 13B and 70B (docs/workloads.md has the table)."""

from __future__ import annotations

from types import MappingProxyType

from phaze.errors import ConfigError
from phaze.models.spec import TransformerSpec

__all__ = ["PRESETS", "preset", "preset_names"]


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


#: The paper's models plus Llama-2 13B/70B, by name.
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
    except (KeyError, TypeError):  # TypeError: an unhashable name such as a list
        raise ConfigError(f"unknown model {name!r}; known presets: {', '.join(PRESETS)}") from None
