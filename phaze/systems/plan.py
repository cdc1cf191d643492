"""The fastest training plans for a model on a fixed system (``phaze plan``).

Exact: every combination of tensor width, pipeline stages, data parallelism,
micro-batch size, interleave, recompute mode, sequence parallelism and distributed
optimizer that Megatron accepts is priced with the same model as ``phaze estimate``
(:func:`phaze.systems.training.iteration`; layers split uniformly over stages as Megatron
does), and the fastest that fit in device memory are returned. Per-micro-batch block
times are shared between combinations that differ only in p, d, v or the optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass

from phaze.errors import ConfigError
from phaze.models.spec import TransformerSpec
from phaze.systems.presets import System
from phaze.systems.training import (
    RECOMPUTE_MODES,
    Breakdown,
    BreakdownPower,
    TrainingPlan,
    check_plan,
    iteration,
    memory_per_device,
)

__all__ = ["PlanResult", "best_plans", "candidate_plans"]

DEFAULT_MICRO_BATCH_SIZES = (1, 2, 4, 8, 16)
DEFAULT_INTERLEAVES = (1, 2, 3, 4, 6, 8)


@dataclass(frozen=True, slots=True)
class PlanResult(BreakdownPower):
    """A plan, its predicted iteration and its throughput."""

    plan: TrainingPlan
    breakdown: Breakdown

    @property
    def iteration_s(self) -> float:
        return self.breakdown.iteration_s

    @property
    def samples_per_s(self) -> float:
        return self.plan.global_batch_size / self.breakdown.iteration_s

    def to_dict(self) -> dict:
        p = self.plan
        out = {
            "tensor_width": p.tensor_width,
            "num_stages": p.num_stages,
            "data_parallel": p.data_parallel,
            "micro_batch_size": p.micro_batch_size,
            "num_micro_batches": p.num_micro_batches,
            "interleave": p.interleave,
            "recompute_mode": p.recompute_mode,
            "sequence_parallel": p.sequence_parallel,
            "distributed_optimizer": p.distributed_optimizer,
            "samples_per_s": self.samples_per_s,
        }
        out.update(self.breakdown.to_dict())
        return out


def _divisors(n: int) -> list[int]:
    return [k for k in range(1, n + 1) if n % k == 0]


def candidate_plans(
    spec: TransformerSpec,
    devices: int,
    global_batch_size: int,
    seq_len: int,
    *,
    micro_batch_sizes=DEFAULT_MICRO_BATCH_SIZES,
    interleaves=DEFAULT_INTERLEAVES,
    recompute_modes=RECOMPUTE_MODES,
    sequence_parallel=(False, True),
    distributed_optimizer=(False, True),
    max_tensor_width: int | None = None,
):
    """Every plan Megatron accepts on exactly ``devices`` devices (a generator)."""
    for t in _divisors(devices):
        if max_tensor_width is not None and t > max_tensor_width:
            continue
        if spec.heads % t or spec.kv_heads % t or spec.ffn % t:
            continue
        for p in _divisors(devices // t):
            if spec.layers % p:
                continue
            d = devices // (t * p)
            for b in micro_batch_sizes:
                if global_batch_size % (d * b):
                    continue
                m = global_batch_size // (d * b)
                for v in interleaves:
                    if v > 1 and (p < 2 or spec.layers % (p * v) or m % p):
                        continue
                    for mode in recompute_modes:
                        for sp in sequence_parallel if t > 1 else (False,):
                            if sp and seq_len % t:
                                continue
                            for do in distributed_optimizer if d > 1 else (False,):
                                yield TrainingPlan(t, p, d, b, global_batch_size, v, mode, sp, do)


def best_plans(
    system: System,
    spec: TransformerSpec,
    devices: int,
    global_batch_size: int,
    seq_len: int | None = None,
    *,
    top: int = 5,
    micro_batch_sizes=DEFAULT_MICRO_BATCH_SIZES,
    interleaves=DEFAULT_INTERLEAVES,
    recompute_modes=RECOMPUTE_MODES,
    sequence_parallel=(False, True),
    distributed_optimizer=(False, True),
    max_tensor_width: int | None = None,
) -> tuple[list[PlanResult], int]:
    """The ``top`` fastest plans that fit in device memory, fastest first, and the
    number of plans priced.

    Ties in iteration time are broken by the plan's fields, so the order is
    deterministic. Raises :class:`ConfigError` for bad arguments; an empty list when no
    plan fits.

    Examples
    --------
    >>> from phaze import load_system, preset
    >>> plans, priced = best_plans(load_system("a100-selene"), preset("megatron-gpt2-xl"),
    ...                            16, 512, top=3)
    >>> len(plans), plans[0].iteration_s <= plans[1].iteration_s, plans[0].breakdown.fits
    (3, True, True)
    """
    seq = spec.default_seq if seq_len is None else seq_len
    for name, value in (("devices", devices), ("global batch", global_batch_size), ("top", top)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name}={value!r} must be an integer >= 1")
    if not isinstance(seq, int) or not 1 <= seq <= spec.max_positions:
        raise ConfigError(f"seq_len={seq!r} must be in 1..{spec.max_positions}")
    bad = [b for b in micro_batch_sizes if isinstance(b, bool) or not isinstance(b, int) or b < 1]
    if bad or not micro_batch_sizes:
        raise ConfigError(f"micro_batch_sizes={micro_batch_sizes!r} must be integers >= 1")
    cache: dict = {}
    found: list[tuple] = []
    priced = 0
    for plan in candidate_plans(
        spec,
        devices,
        global_batch_size,
        seq,
        micro_batch_sizes=micro_batch_sizes,
        interleaves=interleaves,
        recompute_modes=recompute_modes,
        sequence_parallel=sequence_parallel,
        distributed_optimizer=distributed_optimizer,
        max_tensor_width=max_tensor_width,
    ):
        if memory_per_device(spec, plan, seq) > system.chip.hbm_bytes:
            continue
        check_plan(spec, plan, seq)
        bd = iteration(system, spec, plan, seq, cache, with_power=False)
        priced += 1
        found.append((bd.iteration_s, _order(plan), plan, bd))
    found.sort(key=lambda x: (x[0], x[1]))
    # power only for the plans returned (it does not change the order)
    top_plans = [plan for _, _, plan, _ in found[:top]]
    return [
        PlanResult(plan, iteration(system, spec, plan, seq, cache)) for plan in top_plans
    ], priced


def _order(plan: TrainingPlan) -> tuple:
    return (
        plan.tensor_width,
        plan.num_stages,
        plan.micro_batch_size,
        plan.interleave,
        RECOMPUTE_MODES.index(plan.recompute_mode),
        plan.sequence_parallel,
        plan.distributed_optimizer,
    )
