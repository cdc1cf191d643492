"""What a search knows about every architecture before it evaluates any.

:class:`ArchBounds` is the part of :class:`~phaze.joint.evaluator.WorkloadEvaluator`
that looks at all architectures of an :class:`~phaze.hardware.ArchTable` at once, per
micro-batch size, vectorised over architectures:

* the operator latency table of the workload's unique operators
  (:func:`phaze.cost.latency_table`), kept whole up to :data:`KEEP_TABLE_ARCHS`
  architectures; above, built chunk by chunk of :data:`LATENCY_CHUNK_ARCHS` for the
  bounds, and again for the architectures that get scheduled;
* lower-bound layer latencies (:mod:`phaze.joint.bounds`), stored per unique layer;
* the dynamic energy of every unique layer and the attention core's latency and energy
  (selective recomputation);
* the optimistic bounds built from them: :meth:`~ArchBounds.upper_bound` (throughput),
  :meth:`~ArchBounds.score_upper_bound` (any objective, memoised) and
  :meth:`~ArchBounds.score_bound_from_larger_hbm`;
* the hand-over of that state between processes (:meth:`~ArchBounds.latency_state` and
  its setter).

Exact evaluation of one architecture (layer schedules, placement, a plan's energy) stays
in :mod:`phaze.joint.evaluator`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phaze.cost import latency_table
from phaze.energy import charged_energy_j
from phaze.joint.bounds import (
    layer_latency_lower_bound,
    layer_lower_bound_of_configs,
    stages_lower_bound,
    time_per_batch_lower_bound,
)
from phaze.joint.layer_energy import EnergyMemo, energy_totals, layer_energies
from phaze.joint.megatron import attention_core
from phaze.models import unique_ops

__all__ = ["KEEP_TABLE_ARCHS", "LATENCY_CHUNK_ARCHS", "ArchBounds", "keeps_whole_table"]

#: Above this many architectures the operator latency table is not kept whole: it is
#: computed in chunks of this many architectures (bounds, energies), and again for the
#: few architectures that get scheduled (bounded memory in spaces of 10^6 architectures).
LATENCY_CHUNK_ARCHS = 65_536

#: Up to this many architectures (and never above :data:`LATENCY_CHUNK_ARCHS`) the
#: operator latency table and every architecture's layer energies are kept whole; above,
#: as for a large space, the bounds come from each unique core configuration's cycles and
#: a table is built only for the architectures that get scheduled (a search visits a few
#: thousand of the paper's 29,360: keeping all of them cost more time and memory).
KEEP_TABLE_ARCHS = 4_096


def keeps_whole_table(n_arch: int, visits_all: bool = False) -> bool:
    """Whether a space of ``n_arch`` architectures keeps its whole latency table (the
    module constants, read at each call): up to :data:`KEEP_TABLE_ARCHS`, or, when every
    architecture will be evaluated (``visits_all``: the table of each is then needed
    anyway), up to :data:`LATENCY_CHUNK_ARCHS`."""
    limit = LATENCY_CHUNK_ARCHS if visits_all else min(KEEP_TABLE_ARCHS, LATENCY_CHUNK_ARCHS)
    return n_arch <= limit


@dataclass(frozen=True, eq=False)
class _MbsLatency:
    """Operator latencies of one micro-batch size on every architecture (computed only
    for micro-batch sizes whose plans may fit in memory)."""

    latency_s: np.ndarray | None  # [op, arch, mode, pass]; None: computed when scheduling
    op_table: object  # OpTable of the graphs' unique operators
    op_index: object  # OpIndex of the graphs, in width order
    lb_fwd_s: np.ndarray  # (W, U, A): lower bounds per unique (layer DAG, devices) pair
    lb_bwd_s: np.ndarray
    lb_devices: np.ndarray  # (W, U): devices of a stage holding that layer (t or 1)
    lb_count: np.ndarray  # (W, U): positions per unique layer (0 for padding rows)
    # (W, U, 2, A): joules of unique layer u, pass, on all devices; None in a large space
    # (kept per scheduled architecture instead: ArchBounds._arch_energy)
    layer_energy_j: np.ndarray | None
    layer_unique: np.ndarray  # (W, n): the unique layer of each position
    total_energy_j: np.ndarray | None  # (W, 2, A): sum over layers, per pass; None likewise
    energy_groups: tuple  # per width: (u, operator rows, devices) of each unique layer


class ArchBounds:
    """Operator latencies, layer lower bounds, layer energies and optimistic bounds of
    every architecture, per micro-batch size (computed on first use, then kept).

    A mixin of :class:`~phaze.joint.evaluator.WorkloadEvaluator`, which calls
    :meth:`_init_arch_bounds` in its constructor and provides what these methods read:
    ``workload``, ``cluster``, ``arch_table``, ``visits_all``, ``energy_model``, ``leakage_w``,
    ``num_tc``, ``num_vc``, ``dp_terms``, the per-micro-batch-size data ``_mbs`` and
    ``_megatron``, and the memory checks ``memory_fits`` and ``_least_state_factor``.
    """

    def _init_arch_bounds(self) -> None:
        """Empty memos of the state this class computes."""
        self._lat: dict[int, _MbsLatency] = {}
        # (seconds, joules) of a block's attention core per micro-batch size (Megatron's
        # accounting only: selective recomputation reruns it)
        self._core: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # large spaces: energies of the scheduled architectures, and of all (energy bounds)
        self._energy = EnergyMemo()
        self._total_energy: dict[int, np.ndarray] = {}
        # score_upper_bound's results by (mbs, objective, power budget, HBM)
        self._score_ub: dict[tuple, np.ndarray] = {}

    def _op_latency_table(self, table, arch_table):
        """The :class:`~phaze.cost.LatencyTable` of the operators ``table`` on
        ``arch_table``."""
        return latency_table(
            table,
            arch_table,
            link_bandwidth_Bps=self.cluster.link_bandwidth_Bps,
            network=self.cluster.network,
        )

    def _latencies(self, mbs: int) -> _MbsLatency:
        """Operator latencies and lower-bound layer latencies of ``mbs`` on every
        architecture (computed on first use, then kept).

        Up to :data:`KEEP_TABLE_ARCHS` architectures (:func:`keeps_whole_table`), the
        operator latency table is kept for scheduling. Above, the table is computed chunk
        by chunk of :data:`LATENCY_CHUNK_ARCHS` for the bounds and then dropped; the
        architectures that get scheduled have theirs computed again
        (:meth:`~phaze.joint.evaluator.WorkloadEvaluator.schedule`), with their energies:
        memory per architecture stays a few hundred bytes per micro-batch size instead of
        the full table."""
        found = self._lat.get(mbs)
        if found is not None:
            return found
        d = self._mbs[mbs]
        glist = [d.graphs[t] for t in d.widths]
        table, index = unique_ops(glist)
        n_arch = len(self.num_tc)
        keep = keeps_whole_table(n_arch, self.visits_all)
        core = None
        if mbs in self._megatron:  # selective recomputation reruns the attention core
            core = (np.zeros((len(glist), n_arch)), np.zeros((len(glist), n_arch)))
        shape = d.param_bytes.shape
        # lower bounds are stored per unique (layer DAG, devices) of each width, not per
        # layer: gpt3's 96 blocks are one row (memory per architecture, at 10^6 of them)
        lb_groups: list[list] = []  # per width: (u, layer, rows, devices)
        e_groups: list[list] = []  # per width: (u, rows, devices)
        uniq = np.zeros(shape, dtype=np.int64)
        counts: list[dict] = []
        for gi, g in enumerate(glist):
            done: dict[tuple, int] = {}
            seen: dict[tuple, int] = {}
            lbs, es, cnt = [], [], {}
            for pos, layer in enumerate(g.layers):
                rows = index.rows(gi, pos)
                a = g.tensor_width if layer.tensor_parallel else 1
                key = (a, tuple(np.sort(rows).tolist()))
                if key not in seen:
                    seen[key] = len(es)
                    es.append((seen[key], rows, a))
                uniq[gi, pos] = seen[key]
                lkey = (id(layer.ops), a)
                if lkey not in done:
                    done[lkey] = len(lbs)
                    lbs.append((done[lkey], layer, rows, a))
                cnt[done[lkey]] = cnt.get(done[lkey], 0) + 1
            lb_groups.append(lbs)
            e_groups.append(es)
            counts.append(cnt)
        n_lb = max(len(x) for x in lb_groups)
        n_u = max(len(x) for x in e_groups)
        lb_f = np.zeros((shape[0], n_lb, n_arch))
        lb_b = np.zeros_like(lb_f)
        lb_dev = np.ones((shape[0], n_lb))
        lb_count = np.zeros((shape[0], n_lb))
        # a large space keeps energies only of the architectures it schedules (the energy
        # of the others is needed only by the energy objectives' bounds: _all_total_energy)
        lazy = not keep and core is None
        energy = None if lazy else np.zeros((len(glist), n_u, 2, n_arch))
        for gi in range(len(glist)):
            for u, _, _, a in lb_groups[gi]:
                lb_dev[gi, u] = a
                lb_count[gi, u] = counts[gi][u]
        step = n_arch if keep else LATENCY_CHUNK_ARCHS
        lat = None
        for lo in range(0, n_arch, step):
            cols = slice(lo, min(lo + step, n_arch))
            tab = self.arch_table if keep else self.arch_table.take(cols)
            lat_table = self._op_latency_table(table, tab)
            if not lazy:  # (the lazy path never builds the (ops, C, 2, 2) latencies)
                lat = lat_table.latency_s
                charged = charged_energy_j(lat_table, self.energy_model)
                if core is not None:
                    sec, joules = attention_core(glist, index, lat, charged)
                    core[0][:, cols], core[1][:, cols] = sec, joules
                if energy is not None:
                    energy[..., cols] = layer_energies(e_groups, charged)
                del charged
            # kept: the table's planes [mode][pass] (ops, C), whose rows a layer gathers
            # contiguously; else the per-config cycles, without the (ops, C, 2, 2) table
            planes = None
            if keep:
                planes = [[np.ascontiguousarray(lat[:, :, m, p]) for p in (0, 1)] for m in (0, 1)]
            for gi in range(len(glist)):
                for u, layer, rows, _ in lb_groups[gi]:
                    for p, out in ((0, lb_f), (1, lb_b)):
                        if planes is not None:
                            out[gi, u, cols] = layer_latency_lower_bound(
                                layer.ops.edges,
                                layer.ops.kinds,
                                planes[0][p][rows],
                                planes[1][p][rows],
                                self.num_tc[cols],
                                self.num_vc[cols],
                            )
                            continue
                        out[gi, u, cols] = layer_lower_bound_of_configs(
                            layer.ops.edges,
                            layer.ops.kinds,
                            lat_table,
                            rows,
                            p,
                            self.num_tc[cols],
                            self.num_vc[cols],
                        )
            del lat_table, planes
        if core is not None:
            self._core[mbs] = core
        total = None if energy is None else energy_totals(energy, uniq)
        found = self._lat[mbs] = _MbsLatency(
            latency_s=lat if keep else None,
            op_table=table,
            op_index=index,
            lb_fwd_s=lb_f,
            lb_bwd_s=lb_b,
            lb_devices=lb_dev,
            lb_count=lb_count,
            layer_energy_j=energy,
            layer_unique=uniq,
            total_energy_j=total,
            energy_groups=tuple(tuple(g) for g in e_groups),
        )
        return found

    def _core_latency(self, mbs: int) -> tuple[np.ndarray, np.ndarray]:
        """(seconds, joules on all devices) of one block's attention core forward, (W, A)."""
        if mbs not in self._core:
            self._latencies(mbs)
        return self._core[mbs]

    def _layer_energies(self, mbs: int, table) -> np.ndarray:
        """:func:`~phaze.joint.layer_energy.layer_energies` on the architectures of the
        latency table ``table``."""
        charged = charged_energy_j(table, self.energy_model)
        return layer_energies(self._latencies(mbs).energy_groups, charged)

    def _keep_energy(self, mbs: int, archs: np.ndarray, table) -> None:
        """Memoise the energies of ``archs`` (a large space), from their latency table."""
        unique = self._latencies(mbs).layer_unique
        self._energy.keep(mbs, archs, self._layer_energies(mbs, table), unique)

    def _arch_energy(self, mbs: int, arch: int) -> tuple[np.ndarray, np.ndarray]:
        """``(layer joules (W, U, 2), total joules (W, 2))`` of one architecture."""
        lat = self._latencies(mbs)
        if lat.layer_energy_j is not None:
            return lat.layer_energy_j[:, :, :, arch], lat.total_energy_j[:, :, arch]
        found = self._energy.get(mbs, arch)
        if found is None:
            idx = np.array([arch], dtype=np.int64)
            table = self._op_latency_table(lat.op_table, self.arch_table.take(idx))
            self._keep_energy(mbs, idx, table)
            found = self._energy.get(mbs, arch)
        return found

    def _all_total_energy(self, mbs: int) -> np.ndarray:
        """Total joules per width and pass of every architecture, ``(W, 2, A)`` (in a large
        space computed chunk by chunk on first use: only the energy objectives' bounds
        need it)."""
        lat = self._latencies(mbs)
        if lat.total_energy_j is not None:
            return lat.total_energy_j
        found = self._total_energy.get(mbs)
        if found is None:
            n_arch = len(self.num_tc)
            found = np.zeros((len(lat.energy_groups), 2, n_arch))
            for lo in range(0, n_arch, LATENCY_CHUNK_ARCHS):
                cols = slice(lo, min(lo + LATENCY_CHUNK_ARCHS, n_arch))
                table = self._op_latency_table(lat.op_table, self.arch_table.take(cols))
                found[:, :, cols] = energy_totals(
                    self._layer_energies(mbs, table), lat.layer_unique
                )
            self._total_energy[mbs] = found
        return found

    def latency_state(self, mbs: int, bound_args: tuple | None = None) -> tuple:
        """What :meth:`set_latency_state` takes: the operator latencies and layer lower
        bounds of ``mbs`` (computed here on first use) and, given ``bound_args``
        ``(objective, power_budget_w, hbm_bytes)``, :meth:`score_upper_bound` there;
        for another process."""
        bounds = {}
        if bound_args is not None:
            key = (mbs, *bound_args)
            bounds[key] = self.score_upper_bound(*key)
        return self._latencies(mbs), self._core.get(mbs), bounds

    def set_latency_state(self, mbs: int, state: tuple) -> None:
        """Keep the latencies (and bounds) of ``mbs`` computed elsewhere
        (:meth:`latency_state` of a worker process's copy of this evaluator)."""
        self._lat[mbs], core, bounds = state
        if core is not None:
            self._core[mbs] = core
        self._score_ub.update(bounds)

    def upper_bound(self, mbs: int, hbm_bytes: float | None = None) -> np.ndarray:
        """Optimistic throughput (samples/s) of every architecture at micro-batch ``mbs``;
        valid for every recomputation setting and every HBM size up to ``hbm_bytes``
        (default: any size). Zero when no plan fits in ``hbm_bytes``."""
        d = self._mbs[mbs]
        if hbm_bytes is not None and not self.memory_fits(mbs, hbm_bytes):
            return np.zeros(self.num_tc.shape[0])
        lat = self._latencies(mbs)
        best = np.full(self.num_tc.shape[0], np.inf)
        # least bytes per layer over every recomputation setting (as devices_needed)
        state = self._least_state_factor(mbs)
        meg = self._megatron.get(mbs)
        act = d.activation_bytes if meg is None else meg.least_activation_bytes
        for i, t in enumerate(d.widths):
            min_stages = (
                1
                if hbm_bytes is None
                else stages_lower_bound(state * d.param_bytes[i] + act[i], hbm_bytes)
            )
            lb = time_per_batch_lower_bound(
                lat.lb_fwd_s[i],
                lat.lb_bwd_s[i],
                lat.lb_devices[i],
                self.cluster.devices,
                d.num_micro_batches,
                first_layer_param_bytes=float(d.param_bytes[i, 0]),
                # a width without tensor-parallel layers places its pipelines at stride 1
                link_bandwidth_Bps=self._allreduce_bound_Bps(
                    t if d.tensor_parallel[i].any() else 1
                ),
                min_stages=min_stages,
                layer_count=lat.lb_count[i],
                # hidden by the overlap, the synchronisation may cost nothing
                sync_factor=0.0 if self.dp_terms.overlap_dp else self.dp_terms.sync_factor,
                interleave=max(self.workload.training.interleaves),
            )
            best = np.minimum(best, lb)
        with np.errstate(divide="ignore"):
            ub = np.where(best > 0, self.workload.global_batch / best, np.inf)
        return ub * (1 + 1e-9)  # float summation order must never make the bound cut

    def _allreduce_bound_Bps(self, t: int) -> float:
        """The fastest the data-parallel all-reduce at width ``t`` can run: the link, or
        on network levels the ring of two pipelines (rings of more members span no fewer
        levels, so their bandwidth is no higher)."""
        if self.cluster.network is None:
            return self.cluster.data_bandwidth_Bps
        return self.cluster.network.ring(2, t)[0]

    def score_upper_bound(
        self,
        mbs: int,
        objective: str = "throughput",
        power_budget_w: float | None = None,
        hbm_bytes: float | None = None,
    ) -> np.ndarray:
        """Optimistic score (:func:`phaze.joint.objective.row_score`) of every
        architecture at micro-batch ``mbs``, valid for every HBM size and recomputation
        (memoised: :meth:`_score_upper_bound`)."""
        key = (mbs, objective, power_budget_w, hbm_bytes)
        found = self._score_ub.get(key)
        if found is None:
            found = self._score_ub[key] = self._score_upper_bound(*key)
            found.setflags(write=False)  # shared by every caller
        return found

    def _score_upper_bound(
        self, mbs: int, objective: str, power_budget_w: float | None, hbm_bytes: float | None
    ) -> np.ndarray:
        """Optimistic score (:func:`phaze.joint.objective.row_score`) of every
        architecture at micro-batch ``mbs``, valid for every HBM size and recomputation.

        Power is at least the leakage (exact per architecture), so no plan of an
        architecture that leaks more than the budget fits. Energy per sample is at least
        the dynamic energy of the cheapest tensor width without recomputation or gradient
        all-reduce, plus the leakage of every device over the least possible time."""
        tput = self.upper_bound(mbs, hbm_bytes)
        fits = (
            np.ones(tput.shape, dtype=bool)
            if power_budget_w is None
            else self.leakage_w <= power_budget_w
        )
        if objective == "throughput":
            return np.where(fits, tput, 0.0)
        if not (tput > 0).any():  # nothing fits: no latencies (or energies) needed
            return np.zeros(tput.shape)
        d = self._mbs[mbs]
        batch = self.workload.global_batch
        dyn = d.num_micro_batches * self._all_total_energy(mbs).sum(axis=1).min(axis=0)  # (A,)
        with np.errstate(divide="ignore", invalid="ignore"):
            leak = np.where(tput > 0, self.cluster.devices * self.leakage_w * batch / tput, np.inf)
            ub = np.where(dyn + leak > 0, batch / (dyn + leak), np.inf)
        return np.where(fits, ub * (1 + 1e-9), 0.0)

    def score_bound_from_larger_hbm(self, mbs: int, arch: int, row, objective: str) -> float:
        """Optimistic score of a setting at a smaller HBM size, given its ``row`` at a
        larger one: fewer plans fit in less memory, so the time per batch is at least
        ``row.time_per_batch_s`` (and infeasible stays infeasible); energy per batch is at
        least the cheapest width's dynamic energy."""
        if not row.throughput > 0:
            return 0.0
        if objective == "throughput":
            return float(row.throughput)
        d = self._mbs[mbs]
        total = self._arch_energy(mbs, arch)[1]
        dyn = d.num_micro_batches * float(total.sum(axis=1).min())
        leak = self.cluster.devices * float(self.leakage_w[arch]) * row.time_per_batch_s
        total = dyn + leak
        bound = self.workload.global_batch / total if total > 0 else np.inf
        return bound * (1 + 1e-9)  # float summation order must never make the bound cut
