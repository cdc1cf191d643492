"""The layer-scheduling ILP (the paper's formulation, docs/scheduling.md) with python-mip / CBC.

Internal to :mod:`phaze.schedule`. Times are scaled by the upper bound ``UB`` (a feasible
schedule's makespan), so every time lies in ``[0, 1]`` and the big-M constant is 1; CBC's
absolute tolerances then act relative to the layer's makespan.

Variables: makespan ``T``; start ``t_i``; ``y_i`` = 1 when operator ``i`` runs on all cores
(only where that is strictly faster, a dominance that keeps the optimum); order binaries
``x_ij`` / ``x_ji`` for incomparable pairs that can conflict; and, for a resource whose
cores are fewer than the largest antichain of its single-core users, core assignments
``z_ic`` (symmetry broken: the ``q``-th user may take cores ``0 .. q`` only).

Constraints::

    T >= t_i + p_i                       p_i = L1_i + (LA_i - L1_i) y_i
    t_i + p_i <= t_j                     for every edge (i, j)
    x_ij + x_ji <= 1                     incomparable i, j
    t_i + p_i - t_j <= 1 - x_ij          big-M with M = 1 (= UB)
    x_ij + x_ji >= y_i,  >= y_j          intra-op operators run alone (if LA > 0)
    x_ij + x_ji = 1                      two COMM operators (one link)
    x_ik >= x_ij + x_jk - 1              transitivity
    sum_c z_ic + y_i = 1                 single-core users of a short resource
    x_ij + x_ji >= z_ic + z_jc - 1       two operators on one core are ordered
    T >= sum_i L1_i z_ic + sum_k LA_k y_k    load of core c (valid cut; also the link)
    T <= 1

The solution's discrete part (``y``, ``x``) is turned into exact start times by a longest
path over the precedence and order edges, so the returned schedule is feasible in exact
arithmetic whatever CBC's tolerances.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import mip

from phaze.schedule._problem import COMM, R_TC, R_VC, Problem, resource_users

__all__ = ["IlpResult", "solve_ilp"]

#: CBC's integer, primal and dual tolerances on the scaled times (python-mip's defaults are
#: 1e-6, which lets an LP bound fall ~1e-6 of UB short of the optimum on some machines and
#: so fail the proof check below although the schedule is optimal).
_SOLVER_TOL = 1e-9

#: A solve counts as proven optimal when CBC's bound is within this of its objective (in
#: units of UB), two orders above the solver tolerances.
_PROOF_TOL = 1e-7


@dataclass(frozen=True, slots=True)
class IlpResult:
    """Outcome of one CBC solve."""

    makespan: float  #: seconds, of the returned schedule
    modes: tuple[int, ...]
    starts: tuple[float, ...]
    optimal: bool  #: CBC proved optimality (bound met)
    bound_s: float  #: CBC's lower bound, seconds
    status: str
    n_vars: int
    n_constraints: int
    seconds: float  #: wall time of building and solving


def _longest_path(prob: Problem, modes, order_edges) -> list[float] | None:
    """Earliest starts over precedence + order edges (Bellman-Ford rounds; ``None`` when a
    positive cycle exists, which only CBC tolerances on near-zero latencies can cause)."""
    n = prob.n
    edges = list(prob.dag.edges) + list(order_edges)
    dur = [prob.duration(i, modes[i]) for i in range(n)]
    start = [0.0] * n
    for _ in range(n + 1):
        changed = False
        for a, b in edges:
            v = start[a] + dur[a]
            if v > start[b]:
                start[b] = v
                changed = True
        if not changed:
            return start
    return None


def _no_cutoff_increment(m: mip.Model) -> None:
    """CBC prunes nodes whose bound is within its cutoff increment (1e-5 absolute by
    default, i.e. 1e-5 of UB here) of the incumbent, so "optimal" would only mean "within
    1e-5". Make the increment negligible (python-mip passes CBC parameters by name)."""
    try:
        from mip.cbc import cbc_set_parameter
    except ImportError:  # pragma: no cover - other python-mip builds: proof check catches it
        return
    cbc_set_parameter(m.solver, "increment", "1e-10")


def _mip_start(prob: Problem, modes, starts, s: float, T, t, y, x, z) -> list:
    """The incumbent schedule as a MIP start (scaled times; orders from the timeline;
    core labels renumbered by first use so the symmetry breaking admits them)."""
    n = prob.n
    fin = [starts[i] + prob.duration(i, modes[i]) for i in range(n)]
    ms = max(fin, default=0.0)
    start = [(T, ms / s)] + [(t[i], starts[i] / s) for i in range(n)]
    start += [(v, float(modes[i])) for i, v in y.items()]
    start += [(v, 1.0 if fin[i] <= starts[j] else 0.0) for (i, j), v in x.items()]
    for r in (R_TC, R_VC):
        users = sorted(i for rr, i in z if rr == r)
        if not users:
            continue
        free: list[float] = []
        label: dict[int, int] = {}
        core_of = {}
        for i in sorted((i for i in users if not modes[i]), key=lambda i: (starts[i], i)):
            c = next((k for k, f in enumerate(free) if f <= starts[i]), None)
            if c is None:
                c = len(free)
                free.append(0.0)
            free[c] = fin[i]
            core_of[i] = c
        for i in users:  # q-th user: first-use labels are <= q
            if i in core_of:
                core_of[i] = label.setdefault(core_of[i], len(label))
            for c, v in enumerate(z[r, i]):
                start.append((v, 1.0 if core_of.get(i) == c else 0.0))
    return start


def solve_ilp(
    prob: Problem,
    ub: float,
    ub_modes,
    ub_starts,
    *,
    time_limit_s: float,
    gap: float,
    transitivity: bool = True,
) -> IlpResult:
    """Solve ``prob`` with CBC; the incumbent ``(ub, ub_modes, ub_starts)`` is returned
    when CBC finds nothing better in ``time_limit_s``."""
    t0 = time.perf_counter()
    n = prob.n
    dag = prob.dag
    ub_modes, ub_starts = tuple(ub_modes), tuple(ub_starts)
    if ub <= 0.0:  # every latency is 0 on some schedule: nothing to optimise
        return IlpResult(
            ub, ub_modes, ub_starts, True, 0.0, "TRIVIAL", 0, 0, time.perf_counter() - t0
        )
    s = ub
    d1 = [prob.l1[i] / s for i in range(n)]
    da = [prob.la[i] / s for i in range(n)]
    m = mip.Model(sense=mip.MINIMIZE, solver_name="CBC")
    m.verbose = 0
    m.threads = 1
    m.seed = 0
    m.max_mip_gap = gap
    m.max_mip_gap_abs = 1e-10
    m.integer_tol = m.infeas_tol = m.opt_tol = _SOLVER_TOL
    _no_cutoff_increment(m)

    T = m.add_var("T", lb=0.0, ub=1.0)
    t = [m.add_var(f"t{i}", lb=0.0, ub=1.0) for i in range(n)]
    y = {i: m.add_var(f"y{i}", var_type=mip.BINARY) for i in range(n) if prob.can_intra(i)}

    def p(i):
        return d1[i] + (da[i] - d1[i]) * y[i] if i in y else d1[i]

    # core assignments for short resources (zero-latency operators occupy nothing)
    tc, vc, _ = resource_users(dag, prob.kinds)
    z: dict[tuple[int, int], list] = {}  # (resource, op) -> per-core binaries
    for r, users in ((R_TC, tc), (R_VC, vc)):
        users = [i for i in users if prob.l1[i] > 0.0]
        if prob.cap[r] >= dag.width(users):
            continue
        for q, i in enumerate(users):
            cores = [
                m.add_var(f"z{r}_{i}_{c}", var_type=mip.BINARY)
                for c in range(min(prob.cap[r], q + 1))
            ]
            z[r, i] = cores
            m += mip.xsum(cores) + (y[i] if i in y else 0) == 1

    def conflict(i: int, j: int) -> bool:
        if prob.l1[i] <= 0.0 or prob.l1[j] <= 0.0:
            return False  # an empty interval overlaps nothing
        if i in y or j in y:
            return True
        if prob.kinds[i] == COMM and prob.kinds[j] == COMM:
            return True
        return any((r, i) in z and (r, j) in z for r in (R_TC, R_VC))

    x = {}
    for i in range(n):
        for j in range(i + 1, n):
            if dag.comparable(i, j) or not conflict(i, j):
                continue
            xij = m.add_var(f"x{i}_{j}", var_type=mip.BINARY)
            xji = m.add_var(f"x{j}_{i}", var_type=mip.BINARY)
            x[i, j], x[j, i] = xij, xji
            if prob.kinds[i] == COMM and prob.kinds[j] == COMM:
                m += xij + xji == 1
            else:
                m += xij + xji <= 1
            m += t[i] + p(i) - t[j] + xij <= 1
            m += t[j] + p(j) - t[i] + xji <= 1
            for k in (i, j):
                if k in y and da[k] > 0.0:  # a zero-length intra-op run excludes nothing
                    m += xij + xji >= y[k]
            for r in (R_TC, R_VC):
                if (r, i) in z and (r, j) in z:
                    for c in range(min(len(z[r, i]), len(z[r, j]))):
                        m += xij + xji >= z[r, i][c] + z[r, j][c] - 1
    if transitivity:
        for (i, j), xij in x.items():
            for k in range(n):
                if k != i and (j, k) in x and (i, k) in x:
                    m += x[i, k] >= xij + x[j, k] - 1
    for a, b in dag.edges:
        m += t[a] + p(a) <= t[b]
    for i in range(n):
        if not dag.succs[i]:
            m += T >= t[i] + p(i)
    # Load cuts (valid, they tighten the LP): the operators on one core, and every
    # intra-op operator, run one at a time; so do the COMM operators on the link.
    alone = mip.xsum(da[k] * y[k] for k in y) if y else 0
    for r in (R_TC, R_VC):
        on = [(i, z[r, i]) for rr, i in z if rr == r]
        for c in range(prob.cap[r]):
            terms = [d1[i] * zc[c] for i, zc in on if c < len(zc)]
            if len(terms) > 1:
                m += T >= mip.xsum(terms) + alone
    comm = [i for i in range(n) if prob.kinds[i] == COMM and d1[i] > 0.0]
    if len(comm) > 1:
        m += T >= sum(d1[i] for i in comm) + alone
    m.objective = mip.minimize(T)
    n_vars, n_cons = m.num_cols, m.num_rows
    if not (y or x or z):
        # No binaries: the LP is a longest-path problem; solve it exactly without CBC
        # (whose LP path also prints to stdout whatever its log level).
        modes = (0,) * n
        starts = _longest_path(prob, modes, ())
        ms = max((starts[i] + prob.l1[i] for i in range(n)), default=0.0)
        return IlpResult(
            ms,
            modes,
            tuple(starts),
            True,
            ms,
            "NO_BINARIES",
            n_vars,
            n_cons,
            time.perf_counter() - t0,
        )

    m.start = _mip_start(prob, ub_modes, ub_starts, s, T, t, y, x, z)
    remaining = max(0.01, time_limit_s - (time.perf_counter() - t0))
    status = m.optimize(max_seconds=remaining)
    found = status in (mip.OptimizationStatus.OPTIMAL, mip.OptimizationStatus.FEASIBLE)
    # CBC's bound is meaningful only once its search ran (not after NO_SOLUTION_FOUND)
    bound = float(m.objective_bound or 0.0) if found else 0.0
    bound_s = min(max(0.0, bound), 1.0) * s
    makespan, modes, starts = ub, ub_modes, ub_starts
    optimal = False
    if found:
        sol_modes = tuple(1 if i in y and y[i].x >= 0.5 else 0 for i in range(n))
        order = [(i, j) for (i, j), v in x.items() if v.x >= 0.5]
        polished = _longest_path(prob, sol_modes, order)
        if polished is not None:
            ms = max((polished[i] + prob.duration(i, sol_modes[i]) for i in range(n)), default=0.0)
            if ms < makespan:
                makespan, modes, starts = ms, sol_modes, tuple(polished)
        optimal = (
            status == mip.OptimizationStatus.OPTIMAL
            and m.objective_value - m.objective_bound <= _PROOF_TOL
        )
    return IlpResult(
        makespan,
        modes,
        starts,
        optimal,
        bound_s,
        status.name,
        n_vars,
        n_cons,
        time.perf_counter() - t0,
    )
