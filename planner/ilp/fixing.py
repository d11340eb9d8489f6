r"""Reduced-cost fixing: the binary columns a bound on the objective rules out, from one LP.

A tie-break solve (planner.optimize) asks, among the plans whose objective is as good as the first
solve's optimum ``z*``, for the best on a second count. Most options can be in no such plan, and
the LP relaxation of the first program proves which, in milliseconds.

For ``min c x`` subject to ``A_ub x <= b_ub``, ``A_eq x = b_eq``, ``l <= x <= u``, let ``z_LP`` be
the LP optimum, ``y`` its row duals and ``d = c - A^T y`` the reduced costs (``d_j >= 0`` on a column
at its lower bound, ``<= 0`` at its upper bound). For every point ``x`` the rows admit,

    c x  >=  z_LP + sum_{j: d_j > 0} d_j (x_j - l_j) + sum_{j: d_j < 0} d_j (x_j - u_j)
         >=  z_LP + d_k (x_k - l_k)                       for any k with d_k > 0

(weak duality: ``y_ub <= 0``, so ``y_ub A_ub x >= y_ub b_ub``; each dropped term is >= 0). So a
binary column with ``l_k = 0`` and ``d_k > B - z_LP`` is 0 in every point with ``c x <= B``: it is
*fixed out*. The LP leaves out the binaries' upper bounds ``x <= 1``: a relaxation of a larger
region, so its bound stays valid, and in the planner's programs the same LP (each ``x`` is in one
``sum = 1`` row), but no column sits at an upper bound, where a degenerate dual would hide the
other columns' reduced costs in ``d_k < 0`` (choosing among ``x_1 + x_2 + x_3 = 1`` of costs 1, 2,
3, a basis with ``x_3`` at its upper bound may report ``d = (1, 0, -1)`` for the maximum). For ``max`` the same holds with the signs turned (``d_k < -(z_LP - B)``). Nothing the
bound admits is lost, so a program over the remaining columns, with the same rows, the bound and
any further rows, has exactly the feasible plans of the full one.

Where no bound is known yet (the first solve), rounding the LP's solution gives one when it keeps
every row: in each one-of row (``sum x = 1``, all coefficients 1) one of the columns the LP uses
is set to 1 (:func:`rounded_objective`); the cost of a plan that keeps every row bounds the
optimum, so the columns it fixes out are in no optimal plan either.

The LP is solved by HiGHS (highspy, a core dependency; quiet). Before it fixes anything the
bound is widened by what HiGHS's dual feasibility tolerance (1e-7 per column) can add over every
column's range (1 for a binary, the bounds' span for a continuous column), times the objective's
magnitude; an LP that HiGHS does not solve to optimality fixes nothing. "Exact" is thus exact up
to the solvers' own tolerances, as every solve is; and where a tie-break admits plans the first
program did not (its floor or budget relaxed by the planner's tie tolerance, 1e-6 relative), those
within 1e-6 of the first program's floor or budget may be left out: plans the first program
itself called infeasible.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from planner.ilp.backends import quiet_stdout
from planner.ilp.program import LinearModel, Sense, VarKind

_DUAL_TOL = 1e-7
_MAX_ROUNDINGS = 1024  # choices tried in the one-of rows the LP leaves fractional


@dataclass(frozen=True)
class Relaxation:
    """The LP relaxation's optimum of one model (HiGHS), in the model's own sense."""

    model: LinearModel
    objective: float  # z_LP (the model's sense: a maximum when it maximises)
    values: np.ndarray  # x_LP per variable, in the model's order
    reduced: np.ndarray  # reduced costs in the minimised sense (max c x solved as min -c x)


def relax(model: LinearModel) -> Relaxation | None:
    """Solve ``model``'s LP relaxation (binaries in [0, inf): see the module); None if HiGHS does not
    reach an optimum."""
    import highspy

    names = [v.name for v in model.variables]
    index = {n: i for i, n in enumerate(names)}
    sign = -1.0 if model.maximize else 1.0  # HiGHS minimises: max c x is min -c x
    cost = np.zeros(len(names))
    for n, w in model.objective:
        cost[index[n]] = sign * w
    starts, cols, values, lower, upper = [0], [], [], [], []
    for con in model.constraints:
        for n, w in con.terms:
            cols.append(index[n])
            values.append(w)
        starts.append(len(cols))
        lower.append(con.rhs if con.sense in (Sense.GE, Sense.EQ) else -highspy.kHighsInf)
        upper.append(con.rhs if con.sense in (Sense.LE, Sense.EQ) else highspy.kHighsInf)
    with quiet_stdout():
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        # HiGHS starts one global thread scheduler per process, with the first run's thread count,
        # and refuses a later run that asks for another: one thread, as the HiGHS backend asks.
        h.setOptionValue("threads", 1)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = len(names), len(model.constraints)
        lp.col_cost_ = cost
        lp.col_lower_ = np.array([v.lower for v in model.variables], dtype=np.float64)
        lp.col_upper_ = np.array([highspy.kHighsInf if v.kind is VarKind.BINARY else v.upper
                                  for v in model.variables], dtype=np.float64)
        lp.row_lower_ = np.array(lower, dtype=np.float64)
        lp.row_upper_ = np.array(upper, dtype=np.float64)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
        lp.a_matrix_.index_ = np.array(cols, dtype=np.int32)
        lp.a_matrix_.value_ = np.array(values, dtype=np.float64)
        h.passModel(lp)
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        solution = h.getSolution()
        return Relaxation(model, sign * h.getInfo().objective_function_value, np.asarray(solution.col_value),
                          np.asarray(solution.col_dual))


def fixed_out(model: LinearModel, bound: float, relaxation: Relaxation | None = None) -> frozenset[str]:
    """The binary variables of ``model`` that are 0 in every point of its rows whose objective is at
    least as good as ``bound`` (``<= bound`` when minimising, ``>= bound`` when maximising).
    ``relaxation``: the model's LP, if already solved."""
    relaxation = relaxation if relaxation is not None else relax(model)
    if relaxation is None:
        return frozenset()
    sign = -1.0 if model.maximize else 1.0
    z_lp = sign * relaxation.objective  # the minimised sense
    # How much worse than the LP a point may be, widened by what the duals' tolerated infeasibility
    # (at most _DUAL_TOL per column, times how far the column can move: 1 for a binary, its range
    # for a continuous one, e.g. a finish time's SLO) can add.
    spread = sum(1.0 if v.kind is VarKind.BINARY else v.upper - v.lower for v in model.variables)
    limit = sign * bound - z_lp
    limit += _DUAL_TOL * spread * max(1.0, abs(z_lp))
    return frozenset(v.name for v, d in zip(model.variables, relaxation.reduced)
                     if v.kind is VarKind.BINARY and v.lower == 0.0 and d > limit)


def rounded_objective(relaxation: Relaxation) -> float | None:
    """The best objective of the LP's solution rounded (see the module), or None when the model has
    a continuous variable or a binary outside the one-of rows, or no rounding keeps every row.

    A basic LP solution is fractional in few one-of rows (at most one per other row: the planner's
    path rows and accuracy floor), so every choice among the columns the LP uses there is tried,
    up to ``_MAX_ROUNDINGS`` of them, and the best that keeps every row is kept; the one-of rows
    the LP settles keep its choice."""
    model = relaxation.model
    index = {v.name: i for i, v in enumerate(model.variables)}
    if any(v.kind is not VarKind.BINARY for v in model.variables):
        return None
    one_of = [[index[n] for n, _ in con.terms] for con in model.constraints
              if con.sense is Sense.EQ and con.rhs == 1.0 and all(w == 1.0 for _, w in con.terms)]
    if sum(len(cols) for cols in one_of) != len(model.variables):
        return None
    x = relaxation.values
    point = np.zeros(len(model.variables))
    open_rows = []
    for cols in one_of:
        support = [j for j in cols if x[j] > 1e-9] or cols[:1]
        if len(support) == 1:
            point[support[0]] = 1.0
        else:
            open_rows.append(support)
    if math.prod(len(s) for s in open_rows) > _MAX_ROUNDINGS:
        return None
    best = None
    for picks in itertools.product(*open_rows):
        trial = point.copy()
        trial[list(picks)] = 1.0
        value = _objective_if_feasible(model, index, trial)
        if value is not None and (best is None or (value > best if model.maximize else value < best)):
            best = value
    return best


def _objective_if_feasible(model: LinearModel, index: dict[str, int], point: np.ndarray) -> float | None:
    for con in model.constraints:
        # Kept exactly, no tolerance: the point's cost must bound what any solver may return.
        activity = sum(w * point[index[n]] for n, w in con.terms)
        if ((con.sense is Sense.LE and activity > con.rhs) or (con.sense is Sense.GE and activity < con.rhs)
                or (con.sense is Sense.EQ and activity != con.rhs)):
            return None
    return float(sum(w * point[index[n]] for n, w in model.objective))
