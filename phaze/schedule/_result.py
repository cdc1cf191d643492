"""Schedule results, the caller-owned memo and the schedule validity checker."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from phaze.errors import ConfigError
from phaze.schedule._problem import COMM, R_TC, R_VC, SINGLE_DEMAND, make_problem

__all__ = ["IlpStat", "LayerSchedule", "ScheduleCache", "build_schedule", "check_schedule"]

#: Relative tolerance of the checker: start times are sums of latencies along different
#: paths, so equal instants can differ by a few ulps of the makespan.
CHECK_RTOL = 1e-9


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, slots=True)
class LayerSchedule:
    """One layer's schedule on one accelerator (forward, or backward on the reversed DAG).

    Attributes
    ----------
    makespan_s : float
        Latency of the layer, seconds.
    start_s, duration_s : numpy.ndarray of float64, shape (n,)
        Start time and latency of each operator, seconds.
    intra_op : numpy.ndarray of bool, shape (n,)
        The operator runs on all cores of its kind (and alone).
    tc_core, vc_core : numpy.ndarray of int64, shape (n,)
        Tensor / vector core of a single-core operator; -1 when it uses none of that kind
        or runs on all cores (``intra_op``). COMM operators use the link only.
    tc_util_avg, vc_util_avg : float
        Busy core-seconds / (cores x makespan); a core is busy while an operator computes
        on it (an intra-op VC operator keeps the tensor cores idle, though it blocks them).
    tc_util_peak, vc_util_peak : float
        Largest fraction of the cores busy at one instant.
    lower_bound_s : float
        A proven lower bound of the optimum (``<= makespan_s``).
    optimal : bool
        ``makespan_s`` is proven least (False only when a CBC solve hit its time limit or
        stopped at a positive gap).
    method : str
        How the hardest part was solved: ``"chain"``, ``"bounds"``, ``"enumeration"``,
        ``"ilp"``.
    num_tc, num_vc : int
    """

    makespan_s: float
    start_s: np.ndarray
    duration_s: np.ndarray
    intra_op: np.ndarray
    tc_core: np.ndarray
    vc_core: np.ndarray
    tc_util_avg: float
    tc_util_peak: float
    vc_util_avg: float
    vc_util_peak: float
    lower_bound_s: float
    optimal: bool
    method: str
    num_tc: int
    num_vc: int

    @property
    def finish_s(self) -> np.ndarray:
        """Finish time of each operator, seconds."""
        return self.start_s + self.duration_s


@dataclass(frozen=True, slots=True)
class IlpStat:
    """Size and time of one CBC solve (for reports)."""

    n_ops: int
    n_vars: int
    n_constraints: int
    seconds: float
    status: str
    optimal: bool


@dataclass(slots=True)
class ScheduleCache:
    """Memo of layer and segment schedules, owned by the caller (one per run).

    Keys are (DAG structure, kinds, latency vector, effective core counts, solver
    settings); values are deterministic functions of the key. Counters:

    ``layer_hits`` / ``segment_hits``
        Results found in the memo.
    ``chains``
        Layers whose DAG is a chain (no solver; sum of the faster latencies).
    ``bound_closed``
        Segments whose lower bound met the list-schedule upper bound.
    ``enumerated``
        Segments solved by exact enumeration.
    ``solved``
        CBC solves (``ilp_stats`` holds their sizes and times).
    ``not_optimal``
        Results not proven optimal (CBC time limit or positive gap).

    :attr:`layer_schedules` is the work done: ``bound_closed + enumerated + solved``.
    """

    layers: dict = field(default_factory=dict)
    segments: dict = field(default_factory=dict)
    structures: dict = field(default_factory=dict)
    layer_hits: int = 0
    segment_hits: int = 0
    chains: int = 0
    bound_closed: int = 0
    enumerated: int = 0
    solved: int = 0
    not_optimal: int = 0
    ilp_stats: list = field(default_factory=list)

    @property
    def hits(self) -> int:
        """Memo hits, layers and segments."""
        return self.layer_hits + self.segment_hits

    @property
    def layer_schedules(self) -> int:
        """Schedules computed, not read from the memo: segments closed by bounds,
        enumerated or solved by CBC (chains need no scheduler and are not counted)."""
        return self.bound_closed + self.enumerated + self.solved

    #: Names of the integer counters (attributes), in report order.
    COUNTERS = (
        "layer_hits",
        "segment_hits",
        "chains",
        "bound_closed",
        "enumerated",
        "solved",
        "not_optimal",
    )

    def stats(self) -> dict:
        """Counters as a dict (for reports), with :attr:`layer_schedules`."""
        out = {name: getattr(self, name) for name in self.COUNTERS}
        out["layer_schedules"] = self.layer_schedules
        out["max_solve_s"] = max((s.seconds for s in self.ilp_stats), default=0.0)
        return out

    def clear(self) -> None:
        """Drop memoised results and reset the counters."""
        fresh = ScheduleCache()
        for name in self.__slots__:
            setattr(self, name, getattr(fresh, name))


def _assign(starts, durs, users) -> dict[int, int]:
    """Interval colouring: each user gets the lowest core free at its start."""
    free: list[float] = []  # finish time per core
    out = {}
    for i in sorted(users, key=lambda i: (starts[i], i)):
        core = next((c for c, f in enumerate(free) if f <= starts[i]), None)
        if durs[i] <= 0.0:  # an empty interval occupies no core
            out[i] = 0 if core is None else core
            continue
        if core is None:
            core = len(free)
            free.append(0.0)
        free[core] = starts[i] + durs[i]
        out[i] = core
    return out


def _utilisation(starts, durs, held, cores: int, makespan: float) -> tuple[float, float]:
    if makespan <= 0.0:
        return 0.0, 0.0
    busy = sum(held[i] * durs[i] for i in range(len(durs)))
    events = sorted({starts[i] for i in range(len(durs)) if durs[i] > 0.0})
    peak = 0
    for p in events:
        peak = max(
            peak,
            sum(
                held[i]
                for i in range(len(durs))
                if durs[i] > 0.0 and starts[i] <= p < starts[i] + durs[i]
            ),
        )
    return busy / (cores * makespan), peak / cores


def build_schedule(
    prob, modes, starts, *, lower_bound: float, optimal: bool, method: str
) -> LayerSchedule:
    """Assemble a :class:`LayerSchedule`: cores by interval colouring, utilisation."""
    n = prob.n
    durs = [prob.duration(i, modes[i]) for i in range(n)]
    makespan = max((starts[i] + durs[i] for i in range(n)), default=0.0)
    single = [i for i in range(n) if not modes[i]]
    tc = _assign(starts, durs, [i for i in single if SINGLE_DEMAND[prob.kinds[i]][R_TC]])
    vc = _assign(starts, durs, [i for i in single if SINGLE_DEMAND[prob.kinds[i]][R_VC]])
    # utilisation counts the cores an operator computes on: an intra-op VC operator
    # blocks the tensor cores (it runs alone) but does not use them
    uses_tc = [SINGLE_DEMAND[prob.kinds[i]][R_TC] for i in range(n)]
    uses_vc = [SINGLE_DEMAND[prob.kinds[i]][R_VC] for i in range(n)]
    held_tc = [prob.num_tc * uses_tc[i] if modes[i] else uses_tc[i] for i in range(n)]
    held_vc = [prob.num_vc * uses_vc[i] if modes[i] else uses_vc[i] for i in range(n)]
    tca, tcp = _utilisation(starts, durs, held_tc, prob.num_tc, makespan)
    vca, vcp = _utilisation(starts, durs, held_vc, prob.num_vc, makespan)
    return LayerSchedule(
        makespan_s=float(makespan),
        start_s=_frozen(np.array(starts, dtype=np.float64).reshape(n)),
        duration_s=_frozen(np.array(durs, dtype=np.float64).reshape(n)),
        intra_op=_frozen(np.array(modes, dtype=bool).reshape(n)),
        tc_core=_frozen(np.array([tc.get(i, -1) for i in range(n)], dtype=np.int64)),
        vc_core=_frozen(np.array([vc.get(i, -1) for i in range(n)], dtype=np.int64)),
        tc_util_avg=tca,
        tc_util_peak=tcp,
        vc_util_avg=vca,
        vc_util_peak=vcp,
        lower_bound_s=float(min(lower_bound, makespan)),
        optimal=bool(optimal),
        method=method,
        num_tc=prob.num_tc,
        num_vc=prob.num_vc,
    )


def check_schedule(
    schedule: LayerSchedule,
    op_dag,
    lat_one,
    lat_all,
    kinds,
    *,
    reverse: bool = False,
    rtol: float = CHECK_RTOL,
) -> list[str]:
    """Check a schedule against the instance; returns the violations (empty when valid).

    Checked: latencies match the mode (``lat_all`` when ``intra_op``, else ``lat_one``);
    starts >= 0; precedence (on the reversed DAG when ``reverse``); the makespan is the
    last finish; a single-core operator holds a valid core of each kind it needs and one
    core runs one operator at a time; COMM operators never run intra-op and use the one
    link one at a time; an intra-op operator overlaps no other operator. Intervals are
    half-open, so an operator of zero latency overlaps nothing.

    Examples
    --------
    >>> import networkx as nx
    >>> from phaze.schedule import schedule_layer, check_schedule
    >>> g = nx.DiGraph([(0, 1), (0, 2)])
    >>> s = schedule_layer(g, [1.0, 2.0, 2.0], [0.5, 1.5, 1.5], [0, 0, 0], 2, 1)
    >>> check_schedule(s, g, [1.0, 2.0, 2.0], [0.5, 1.5, 1.5], [0, 0, 0])
    []
    """
    prob = make_problem(
        op_dag, lat_one, lat_all, kinds, schedule.num_tc, schedule.num_vc, reverse=reverse
    )
    n = prob.n
    errors: list[str] = []
    for name in ("start_s", "duration_s", "intra_op", "tc_core", "vc_core"):
        if np.shape(getattr(schedule, name)) != (n,):
            raise ConfigError(
                f"schedule.{name} has shape {np.shape(getattr(schedule, name))}"
                f"; expected ({n},) for this operator graph"
            )
    s = schedule.start_s.tolist()
    intra = schedule.intra_op.tolist()
    d = [prob.la[i] if intra[i] else prob.l1[i] for i in range(n)]
    f = [s[i] + d[i] for i in range(n)]
    tol = rtol * max(schedule.makespan_s, max(f, default=0.0), 1e-300)
    for i in range(n):
        if abs(schedule.duration_s[i] - d[i]) > tol:
            errors.append(f"op {i}: duration {schedule.duration_s[i]} != latency {d[i]}")
        if s[i] < -tol:
            errors.append(f"op {i}: negative start {s[i]}")
        if intra[i] and prob.kinds[i] == COMM:
            errors.append(f"op {i}: COMM operator marked intra-op")
    if abs(schedule.makespan_s - max(f, default=0.0)) > tol:
        errors.append(f"makespan {schedule.makespan_s} != last finish {max(f, default=0.0)}")
    for a, b in prob.dag.edges:
        if f[a] > s[b] + tol:
            errors.append(f"precedence {a}->{b}: finish {f[a]} > start {s[b]}")

    def overlap(i: int, j: int) -> bool:
        return min(f[i], f[j]) - max(s[i], s[j]) > tol

    tcc, vcc = schedule.tc_core.tolist(), schedule.vc_core.tolist()
    for cores, r, cap, name in ((tcc, R_TC, prob.num_tc, "tc"), (vcc, R_VC, prob.num_vc, "vc")):
        for i in range(n):
            needs = not intra[i] and SINGLE_DEMAND[prob.kinds[i]][r]
            if needs and not 0 <= cores[i] < cap:
                errors.append(f"op {i}: {name}_core={cores[i]} not in 0..{cap - 1}")
            if not needs and cores[i] != -1:
                errors.append(f"op {i}: {name}_core={cores[i]} but it holds no single {name}")
        for i in range(n):
            for j in range(i + 1, n):
                if cores[i] >= 0 and cores[i] == cores[j] and overlap(i, j):
                    errors.append(f"ops {i} and {j} overlap on {name} core {cores[i]}")
    for i in range(n):
        for j in range(i + 1, n):
            if not overlap(i, j):
                continue
            if intra[i] or intra[j]:
                errors.append(f"ops {i} and {j} overlap but {i if intra[i] else j} is intra-op")
            elif prob.kinds[i] == COMM and prob.kinds[j] == COMM:
                errors.append(f"COMM ops {i} and {j} overlap on the link")
    return errors
