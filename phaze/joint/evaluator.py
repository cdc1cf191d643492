"""The search's inner loop: architectures in, best plans out, as numpy arrays.

:class:`WorkloadEvaluator` prepares one workload once (model graphs for every micro-batch
size and tensor width; from :class:`~phaze.joint.arch_bounds.ArchBounds`, which it
inherits, the unique-operator table, operator latencies for every architecture of an
:class:`~phaze.hardware.ArchTable` and lower-bound layer latencies) and then answers two
questions per architecture:

* :meth:`~WorkloadEvaluator.upper_bound`: an optimistic throughput (samples/s) from
  lower-bound layer latencies (:mod:`phaze.joint.arch_bounds`) -- cheap, vectorised;
* :meth:`~WorkloadEvaluator.exact`: the exact throughput of the best plan -- layer
  latencies from the layer scheduler (memoised), then the placement DP for every
  (HBM size, recomputation) setting -- with the plan's average power per device and
  energy per sample (docs/energy.md).

Energy is prepared like the latencies (:mod:`phaze.joint.arch_bounds`): per micro-batch
size, the dynamic energy of every layer at every tensor width on every architecture
(vectorised), so a plan's energy (:meth:`~WorkloadEvaluator.dynamic_energy_j`) is a
few sums: every layer runs once per micro-batch, forward and backward, on ``a`` devices
(``t`` for a tensor-parallel layer), and with recomputation every stage but the last runs
its forward again.

:func:`evaluate_architectures` is the public one-call form used in notebooks and scripts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from phaze.energy import EnergyModel
from phaze.errors import ConfigError
from phaze.hardware import ArchTable
from phaze.joint import arch_bounds
from phaze.joint.arch_bounds import ArchBounds
from phaze.joint.bounds import devices_lower_bound
from phaze.joint.megatron import MegatronData, megatron_data
from phaze.models import build_graph
from phaze.placement import PlacementProblem, Plan, Stage
from phaze.placement.chain import ChainPlacement, place_chain, prepare_chain
from phaze.rows import PlanRow
from phaze.schedule import ScheduleCache, schedule_model
from phaze.training import stage_rules
from phaze.validate import check_bool, check_hbm_bytes, check_int
from phaze.workload import Cluster, Workload

__all__ = [
    "SEARCH_GRAPH_KINDS",
    "WorkloadEvaluator",
    "evaluate_architectures",
    "warmup_kernels",
]

#: The layer-graph shapes a joint search places: the evaluator prepares chain placements
#: only (:func:`~phaze.placement.chain.prepare_chain`), so the general-DAG kernels are
#: neither used nor compiled by a search.
SEARCH_GRAPH_KINDS = ("chain",)


def warmup_kernels(
    workloads=None, architectures: int | None = None, visits_all: bool = False
) -> None:
    """Compile (or load from numba's cache) every kernel a joint search of ``workloads``
    (None: of any workloads) over ``architectures`` architectures (None: any number)
    uses; call before starting worker processes (they then only read numba's cache).
    The interleaved-plan kernels are left out when no workload has an interleave other
    than 1, the bound kernel of large spaces when the space keeps its whole latency
    table (:func:`~phaze.joint.arch_bounds.keeps_whole_table` of ``architectures`` and
    ``visits_all``, read at each call)."""
    from phaze import _kernels

    interleaved = workloads is None or any(w.training.interleaves != (1,) for w in workloads)
    _kernels.warmup(
        graph_kinds=SEARCH_GRAPH_KINDS,
        interleaved=interleaved,
        large_spaces=architectures is None
        or not arch_bounds.keeps_whole_table(architectures, visits_all),
    )


#: Placements an evaluator memoises (keyed by micro-batch size, HBM, recomputation and
#: the layer latencies); the memo is emptied when full, to bound memory.
MAX_MEMO_PLACEMENTS = 200_000


@dataclass(frozen=True, eq=False)
class _MbsData:
    """Everything about one micro-batch size that does not depend on the architecture."""

    micro_batch_size: int
    num_micro_batches: int
    graphs: dict
    widths: tuple[int, ...]
    param_bytes: np.ndarray  # (W, n)
    activation_bytes: np.ndarray
    tensor_parallel: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_bytes: np.ndarray  # (W, E)
    replica_param_bytes: np.ndarray  # (W,): parameter bytes of one pipeline replica
    chain: ChainPlacement  # the placement inputs that do not depend on the architecture


class WorkloadEvaluator(ArchBounds):
    """Prepared state for evaluating one workload on the architectures of an ArchTable.

    Operator latencies of a micro-batch size are computed on first use: a micro-batch size
    whose plans cannot fit in memory (:meth:`memory_fits`) never needs them. The
    latencies, layer lower bounds, energies and optimistic bounds of every architecture
    come from :class:`~phaze.joint.arch_bounds.ArchBounds`.

    Parameters
    ----------
    workload : Workload
    cluster : Cluster
    arch_table : ArchTable
    micro_batch_sizes : sequence of int
        Micro-batch sizes to prepare; each must divide the global batch.
    cache : ScheduleCache, optional
        Memo of layer schedules; a new one if omitted.
    energy_model : EnergyModel, optional
        Energy constants (default ``EnergyModel()``).
    visits_all : bool, optional
        Whether every architecture will be evaluated (the ``exhaustive`` strategy,
        :func:`evaluate_architectures`): the whole latency table is then kept up to
        :data:`~phaze.joint.arch_bounds.LATENCY_CHUNK_ARCHS` architectures, not only up
        to :data:`~phaze.joint.arch_bounds.KEEP_TABLE_ARCHS`
        (:func:`~phaze.joint.arch_bounds.keeps_whole_table`).
    """

    def __init__(
        self,
        workload: Workload,
        cluster: Cluster,
        arch_table,
        micro_batch_sizes: Sequence[int],
        cache: ScheduleCache | None = None,
        energy_model: EnergyModel | None = None,
        *,
        visits_all: bool = False,
    ) -> None:
        if not isinstance(workload, Workload):
            raise ConfigError(
                f"workload={workload!r} is invalid; allowed: a phaze.Workload, e.g. "
                "phaze.Workload(phaze.preset('bert-large'))"
            )
        if not isinstance(cluster, Cluster):
            raise ConfigError(f"cluster={cluster!r} is invalid; allowed: a phaze.Cluster")
        if not isinstance(arch_table, ArchTable):
            raise ConfigError(
                f"arch_table={arch_table!r} is invalid; allowed: an ArchTable, e.g. "
                "phaze.DesignSpace(...).enumerate()"
            )
        self.workload, self.cluster, self.arch_table = workload, cluster, arch_table
        self.visits_all = check_bool("visits_all", visits_all)
        self.energy_model = EnergyModel() if energy_model is None else energy_model
        if not isinstance(self.energy_model, EnergyModel):
            raise ConfigError(
                f"energy_model={energy_model!r} is invalid; allowed: a phaze.EnergyModel"
            )
        self.leakage_w = self.energy_model.leakage_w(arch_table.area_um2)
        self.cache = cache if cache is not None else ScheduleCache()
        self.widths = tuple(t for t in workload.tensor_widths if t <= cluster.devices)
        if not self.widths:
            raise ConfigError(
                f"no tensor width of {workload.name} fits on {cluster.devices} devices"
            )
        self.num_tc = np.asarray(arch_table.num_tc, dtype=np.int64)
        self.num_vc = np.asarray(arch_table.num_vc, dtype=np.int64)
        self._mbs: dict[int, _MbsData] = {}
        self._init_arch_bounds()
        for mbs in micro_batch_sizes:
            mbs = check_int("micro_batch_size", mbs)
            self._mbs[mbs] = self._prepare(mbs)
        # without the optimizer step, which runs at each architecture's HBM bandwidth
        # (_dp_terms)
        self.dp_terms = workload.training.dp_terms(workload.bytes_per_element)
        self._hbm_Bps = np.asarray(arch_table.hbm_bandwidth_Bps, dtype=np.float64)
        self._megatron: dict[int, MegatronData] = {}
        if not workload.training.is_paper:
            for mbs, data in self._mbs.items():
                self._megatron[mbs] = megatron_data(data, workload.training.recompute_mode)
        self.dp_calls = 0
        self.placements_reused = 0
        self._placements: dict[tuple, object] = {}
        self._devices_needed: dict[tuple[int, float], int] = {}
        self._exact_layers: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def _prepare(self, mbs: int) -> _MbsData:
        w = self.workload
        if w.global_batch % mbs:
            raise ConfigError(
                f"micro-batch size {mbs} must be >= 1 and divide the global "
                f"batch ({w.global_batch})"
            )
        graphs = {
            t: build_graph(
                w.model,
                w.seq_len,
                mbs,
                t,
                w.bytes_per_element,
                sequence_parallel=w.training.sequence_parallel,
            )
            for t in self.widths
        }
        glist = [graphs[t] for t in self.widths]
        shape = (len(glist), len(glist[0].layers))
        pb, ab = np.zeros(shape), np.zeros(shape)
        tp = np.zeros(shape, dtype=bool)
        for gi, g in enumerate(glist):
            for pos, layer in enumerate(g.layers):
                pb[gi, pos] = layer.param_bytes
                ab[gi, pos] = layer.activation_bytes
                tp[gi, pos] = layer.tensor_parallel
        g0 = glist[0]
        edge_src = np.array([e.src for e in g0.edges], dtype=np.int64)
        edge_dst = np.array([e.dst for e in g0.edges], dtype=np.int64)
        edge_bytes = np.array([[e.bytes for e in g.edges] for g in glist], dtype=float)
        return _MbsData(
            micro_batch_size=mbs,
            num_micro_batches=w.global_batch // mbs,
            graphs=graphs,
            widths=self.widths,
            param_bytes=pb,
            activation_bytes=ab,
            tensor_parallel=tp,
            edge_src=edge_src,
            edge_dst=edge_dst,
            edge_bytes=edge_bytes,
            replica_param_bytes=(np.where(tp, np.asarray(self.widths)[:, None], 1) * pb).sum(
                axis=1
            ),
            chain=prepare_chain(
                self.widths,
                pb,
                ab,
                tp,
                edge_src,
                edge_dst,
                edge_bytes,
                devices=self.cluster.devices,
                link_bandwidth_Bps=self.cluster.data_bandwidth_Bps,
                num_micro_batches=w.global_batch // mbs,
                adam=w.optimizer == "adam",
                network=self.cluster.network,
            ),
        )

    def devices_needed(self, mbs: int, hbm_bytes: float) -> int:
        """A lower bound on the devices any plan at micro-batch ``mbs`` needs to fit in
        ``hbm_bytes`` per device (:func:`phaze.joint.bounds.devices_lower_bound`); memory
        does not depend on the architecture, so no layer is scheduled."""
        key = (mbs, float(hbm_bytes))
        found = self._devices_needed.get(key)
        if found is None:
            d = self._mbs[mbs]
            meg = self._megatron.get(mbs)
            found = self._devices_needed[key] = devices_lower_bound(
                d.widths,
                d.param_bytes,
                d.activation_bytes if meg is None else meg.least_activation_bytes,
                d.tensor_parallel,
                hbm_bytes,
                adam=self.workload.optimizer == "adam",
                state_factor=self._least_state_factor(mbs),
            )
        return found

    def _dp_terms(self, arch: int):
        """The placement's data-parallel terms on architecture ``arch`` (the optimizer
        step runs at its HBM bandwidth)."""
        w = self.workload
        if not w.training.optimizer_step:
            return self.dp_terms
        return w.training.dp_terms(w.bytes_per_element, float(self._hbm_Bps[arch]))

    def _least_state_factor(self, mbs: int) -> float:
        """The fewest state bytes per parameter byte any plan at ``mbs`` keeps (with the
        distributed optimizer: at the largest data-parallel degree; a memory bound)."""
        w = self.workload
        d_max = min(self.cluster.devices, self._mbs[mbs].num_micro_batches)
        least = w.training.least_state_bytes_per_param(w.optimizer, d_max, w.bytes_per_element)
        return least / w.bytes_per_element

    def memory_fits(self, mbs: int, hbm_bytes: float) -> bool:
        """False when no plan at micro-batch ``mbs`` fits in ``hbm_bytes`` per device on
        the cluster (:meth:`devices_needed`); True means "may fit"."""
        return self.devices_needed(mbs, hbm_bytes) <= self.cluster.devices

    def layer_latencies(self, mbs: int, arch: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact per-layer (fwd, bwd) latencies, shape (W, n), of one architecture."""
        found = self._exact_layers.get((mbs, arch))
        if found is None:
            self.schedule(mbs, [arch])
            found = self._exact_layers[(mbs, arch)]
        return found

    def schedule(self, mbs: int, archs) -> None:
        """Schedule every layer for the architectures ``archs`` at once (vectorised over
        architectures in the scheduler) and memoise the results."""
        todo = sorted({int(a) for a in archs if (mbs, int(a)) not in self._exact_layers})
        if not todo:
            return
        d, lat = self._mbs[mbs], self._latencies(mbs)
        fwd = np.zeros((len(d.widths), d.param_bytes.shape[1], len(todo)))
        bwd = np.zeros_like(fwd)
        latency_s, rows, num_tc, num_vc = lat.latency_s, todo, self.num_tc, self.num_vc
        if latency_s is None:  # a large space: the latencies of these architectures only
            idx = np.asarray(todo, dtype=np.int64)
            # (no energies: they were kept per layer when the bounds were computed)
            table = self._op_latency_table(lat.op_table, self.arch_table.take(idx))
            latency_s = table.latency_s
            rows, num_tc, num_vc = np.arange(idx.size), num_tc[idx], num_vc[idx]
            if lat.layer_energy_j is None:
                self._keep_energy(mbs, idx, table)
        for i, t in enumerate(d.widths):
            s = schedule_model(
                d.graphs[t],
                latency_s,
                rows,
                cache=self.cache,
                num_tc=num_tc,
                num_vc=num_vc,
                op_index=lat.op_index,
                graph=i,
            )
            fwd[i], bwd[i] = s.fwd_s, s.bwd_s
        for j, a in enumerate(todo):
            self._exact_layers[(mbs, a)] = (
                np.ascontiguousarray(fwd[:, :, j]),
                np.ascontiguousarray(bwd[:, :, j]),
            )

    def has_layers(self, mbs: int, arch: int) -> bool:
        """Whether the layer latencies of ``arch`` at ``mbs`` are memoised here."""
        return (mbs, arch) in self._exact_layers

    def set_layers(self, mbs: int, arch: int, fwd: np.ndarray, bwd: np.ndarray) -> None:
        """Memoise layer latencies given by the caller (as :meth:`schedule` would)."""
        self._exact_layers[(mbs, arch)] = (fwd, bwd)

    def problem(
        self,
        mbs: int,
        arch: int,
        hbm_bytes: float,
        recompute: bool,
        fixed_baseline: tuple[int, int, int] | None = None,
    ) -> PlacementProblem:
        """The placement problem of one architecture and setting (for plans and reports)."""
        d = self._mbs[mbs]
        fwd, bwd = self.layer_latencies(mbs, arch)
        problem = PlacementProblem.from_graphs(
            d.graphs,
            {t: fwd[i] for i, t in enumerate(d.widths)},
            {t: bwd[i] for i, t in enumerate(d.widths)},
            devices=self.cluster.devices,
            link_bandwidth_Bps=self.cluster.data_bandwidth_Bps,
            hbm_bytes=float(hbm_bytes),
            num_micro_batches=d.num_micro_batches,
            recompute=bool(recompute),
            optimizer=self.workload.optimizer,
            fixed_baseline=fixed_baseline,
        )
        if self.cluster.network is not None:
            problem = dataclasses.replace(problem, network=self.cluster.network)
        if mbs not in self._megatron:
            return problem
        kw = self._placement_rules(mbs, arch, bool(recompute), fwd)
        graphs = tuple(
            dataclasses.replace(
                g,
                activation_bytes=kw["activation_bytes"][i],
                recompute_s=kw["recompute_s"][i],
                work_bytes=kw["work_bytes"][i],
            )
            for i, g in enumerate(problem.graphs)
        )
        return dataclasses.replace(
            problem,
            graphs=graphs,
            state_factor=kw["state_factor"],
            recompute_last=kw["recompute_last"],
            stash_inputs=kw["stash_inputs"],
            dp_terms=self._dp_terms(arch),
        )

    def _rules(self, mbs: int, recompute: bool) -> tuple[float, bool, bool]:
        """``(state_factor, recompute_last, stash_inputs)`` of the workload's training
        accounting (:func:`phaze.training.stage_rules`)."""
        w = self.workload
        return stage_rules(w.training, w.optimizer, recompute, w.bytes_per_element)

    def _placement_rules(self, mbs: int, arch: int, recompute: bool, fwd: np.ndarray) -> dict:
        """Keyword arguments of :func:`~phaze.placement.place_arrays` for the training
        accounting: the paper's (only ``state_factor``) or Megatron's per-layer
        activations, recomputation latencies and working bytes."""
        factor, last, stash = self._rules(mbs, recompute)
        meg = self._megatron.get(mbs)
        if meg is None:
            return {"activation_bytes": self._mbs[mbs].activation_bytes, "state_factor": factor}
        mode = self.workload.training.mode(recompute)
        act, work = meg.bytes[mode]
        if mode == "selective":
            core_s = self._core_latency(mbs)[0][:, arch]  # (W,)
            rec = np.where(meg.block, core_s[:, None], 0.0)
        else:  # full: every block's forward again (none: not used)
            rec = np.where(meg.block, fwd, 0.0)
        return {
            "activation_bytes": act,
            "state_factor": factor,
            "recompute_s": rec,
            "work_bytes": work,
            "recompute_last": last,
            "stash_inputs": stash,
        }

    def exact(self, mbs: int, arch: int, hbm_bytes: float, recompute: bool) -> PlanRow:
        """The best plan's row (without scheduling a layer when no plan can fit in
        memory: :meth:`memory_fits`)."""
        if not self.memory_fits(mbs, hbm_bytes):
            return PlanRow(0.0, math.inf, 0, 0, 0, -1)
        res = self._placement(mbs, arch, hbm_bytes, recompute)
        time = float(res.time_per_batch_s)
        tput = self.workload.global_batch / time if np.isfinite(time) and time > 0 else 0.0
        power, per_sample = 0.0, np.inf
        if tput > 0:
            dyn = self.dynamic_energy_j(
                mbs,
                arch,
                int(res.tensor_width),
                int(res.data_parallel),
                bool(recompute),
                res.last_stage_layers,
            )
            power, per_sample = self.power(arch, dyn, time)
        return PlanRow(
            tput,
            time,
            int(res.tensor_width),
            int(res.data_parallel),
            int(res.num_stages),
            int(res.bottleneck_stage),
            power,
            per_sample,
            int(res.interleave),
        )

    def interleaved_plan(self, mbs: int, arch: int, hbm_bytes: float, recompute: bool) -> Plan:
        """The :class:`~phaze.placement.Plan` of the best row when it is interleaved
        (``row.interleave > 1``; its stages, loads and memory from the placement that
        chose it, docs/placement.md "Interleaved plans")."""
        res = self._placement(mbs, arch, hbm_bytes, recompute)
        if res.interleave == 1:
            raise ConfigError("interleaved_plan needs a row whose best plan is interleaved")
        g = self._mbs[mbs].graphs[int(res.tensor_width)]
        recompute_last = self._rules(mbs, bool(recompute))[1]
        stages = []
        for q, (first, end, load, memory) in enumerate(res.stages):
            layers = g.layers[first:end]
            stages.append(
                Stage(
                    tuple(layer.layer_id for layer in layers),
                    g.tensor_width if any(layer.tensor_parallel for layer in layers) else 1,
                    load,
                    memory,
                    bool(recompute) and (q < len(res.stages) - 1 or recompute_last),
                )
            )
        return Plan(
            int(res.tensor_width),
            int(res.data_parallel),
            tuple(stages),
            float(res.time_per_batch_s),
            self._mbs[mbs].num_micro_batches,
            mbs,
            interleave=int(res.interleave),
        )

    def _placement(self, mbs: int, arch: int, hbm_bytes: float, recompute: bool):
        """The :class:`~phaze.placement.solve.ArrayPlacement` of one setting (memoised
        per distinct layer latencies)."""
        d = self._mbs[mbs]
        fwd, bwd = self.layer_latencies(mbs, arch)
        rules = self._placement_rules(mbs, arch, bool(recompute), fwd)
        # the plan depends on the architecture only through the layer latencies (and,
        # with selective recomputation, the attention core's), which many architectures
        # share: one placement per distinct latency table
        digest = hashlib.blake2b(fwd.tobytes() + bwd.tobytes(), digest_size=20)
        if "recompute_s" in rules:
            digest.update(np.ascontiguousarray(rules["recompute_s"]).tobytes())
        terms = self._dp_terms(arch)
        key = (mbs, float(hbm_bytes), bool(recompute), digest.digest())
        if terms.step_s_per_B or terms.step_sharded_s_per_B:  # the step: HBM bandwidth
            key += (terms.step_s_per_B, terms.step_sharded_s_per_B)
        res = self._placements.get(key)
        if res is None:
            self.dp_calls += 1
            extra = {
                k: np.require(v, np.float64, ["C", "W"]) if isinstance(v, np.ndarray) else v
                for k, v in rules.items()
            }
            meg = self._megatron.get(mbs)
            if meg is not None and self.workload.training.interleaves != (1,):
                extra["interleaves"] = self.workload.training.interleaves
                extra["block_mask"] = meg.block
            res = place_chain(
                d.chain,
                fwd,
                bwd,
                hbm_bytes=float(hbm_bytes),
                recompute=bool(recompute),
                dp_terms=terms,
                **extra,
            )
            if len(self._placements) >= MAX_MEMO_PLACEMENTS:
                self._placements.clear()
            self._placements[key] = res
        else:
            self.placements_reused += 1
        return res

    def dynamic_energy_j(
        self,
        mbs: int,
        arch: int,
        tensor_width: int,
        data_parallel: int,
        recompute: bool,
        last_stage_layers=(),
    ) -> float:
        """Dynamic energy (J) of one global batch on the whole cluster for a plan of
        ``tensor_width`` and ``data_parallel``: every layer forward and backward once per
        micro-batch; with ``recompute``, the forward again for every layer outside
        ``last_stage_layers`` (the last stage never recomputes); plus the data-parallel
        gradient all-reduce, ``2 (d - 1)`` times a replica's parameter bytes in total."""
        d, lat = self._mbs[mbs], self._latencies(mbs)
        i = d.widths.index(tensor_width)
        layer_j, total_j = self._arch_energy(mbs, arch)
        fwd, bwd = total_j[i]
        per_mb = fwd + bwd
        meg = self._megatron.get(mbs)
        if recompute and meg is not None:  # every stage recomputes, the last included
            if self.workload.training.recompute_mode == "selective":
                per_mb += int(meg.block.sum(axis=1)[i]) * self._core_latency(mbs)[1][i, arch]
            else:  # every block's forward again
                blocks = np.flatnonzero(meg.block[i])
                per_mb += layer_j[i, lat.layer_unique[i, blocks], 0].sum()
        elif recompute:
            last = np.asarray(last_stage_layers, dtype=np.int64)
            per_mb += fwd - layer_j[i, lat.layer_unique[i, last], 0].sum()
        # the all-reduce's 2 (d - 1) P bytes; the distributed optimizer's reduce-scatter +
        # all-gather send 3/4 of them (its sync factor 3 against the all-reduce's 4)
        sync = self.dp_terms.sync_factor / 4.0
        net = 2.0 * sync * (data_parallel - 1) * d.replica_param_bytes[i] * 8.0
        return float(d.num_micro_batches * per_mb + net * self.energy_model.network_j_per_bit)

    def power(self, arch: int, dynamic_j: float, time_per_batch_s: float) -> tuple[float, float]:
        """(average power per device in W, energy per sample in J) of a plan that takes
        ``time_per_batch_s`` and ``dynamic_j`` per batch: every device of the cluster
        leaks for the whole batch, busy or not."""
        n = self.cluster.devices
        leak = float(self.leakage_w[arch])
        power = dynamic_j / (time_per_batch_s * n) + leak
        return power, power * n * time_per_batch_s / self.workload.global_batch


def evaluate_architectures(
    workload: Workload,
    cluster: Cluster,
    arch_table,
    micro_batch_size: int,
    hbm_bytes: float,
    recompute: bool,
    *,
    cache: ScheduleCache | None = None,
) -> PlanRow:
    """Best plan of ``workload`` on every architecture of ``arch_table``.

    Parameters
    ----------
    workload : Workload
    cluster : Cluster
    arch_table : ArchTable
        Architectures to evaluate (e.g. ``DesignSpace(...).enumerate()`` or a slice).
    micro_batch_size : int
    hbm_bytes : float
        HBM capacity per device, from 1 byte to ``2**60`` bytes.
    recompute : bool
        Activation recomputation (a real bool: the string ``"no"`` is refused).
    cache : ScheduleCache, optional
        Reuse layer schedules across calls (e.g. over HBM sizes).

    Returns
    -------
    PlanRow
        Of numpy arrays, one entry per architecture (infeasible: throughput 0).

    Raises
    ------
    ConfigError
        An argument of the wrong type or out of range (the message names it), or a
        micro-batch size that does not divide the global batch.

    Examples
    --------
    >>> from phaze.hardware import DesignSpace
    >>> from phaze.models import preset
    >>> from phaze.units import GIB
    >>> space = DesignSpace(num_tc=(8,), num_vc=(2,), tc_width=(128,), tc_depth=(128,),
    ...                     vc_width=(128,), glb_bytes=(2**27,), area_band=0.0)
    >>> w = Workload(preset("bert-large"), global_batch=256)
    >>> r = evaluate_architectures(w, Cluster(devices=16), space.enumerate(),
    ...     micro_batch_size=8, hbm_bytes=32 * GIB, recompute=False)
    >>> bool(r.throughput[0] > 0), int(r.tensor_width[0]) in (1, 2, 4, 8)
    (True, True)
    """
    micro_batch_size = check_int("micro_batch_size", micro_batch_size)
    hbm_bytes = check_hbm_bytes(hbm_bytes)
    recompute = check_bool("recompute", recompute)
    if cache is not None and not isinstance(cache, ScheduleCache):
        raise ConfigError(f"cache={cache!r} is invalid; allowed: a ScheduleCache or None")
    ev = WorkloadEvaluator(
        workload, cluster, arch_table, [micro_batch_size], cache, visits_all=True
    )
    n = len(ev.num_tc)
    out = [np.zeros(n), np.full(n, np.inf)] + [np.zeros(n, dtype=np.int64) for _ in range(4)]
    out += [np.zeros(n), np.full(n, np.inf), np.ones(n, dtype=np.int64)]
    for lo in range(0, n, 256):  # layer schedules vectorised over blocks of architectures
        if ev.memory_fits(micro_batch_size, hbm_bytes):
            ev.schedule(micro_batch_size, range(lo, min(n, lo + 256)))
    for a in range(n):
        for col, value in zip(out, ev.exact(micro_batch_size, a, hbm_bytes, recompute)):
            col[a] = value
    return PlanRow(*out)
