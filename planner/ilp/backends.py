"""Translate a LinearModel for a solver, solve it, and report the status explicitly.

- ``cbc``: pulp with its bundled CBC (the default; a subprocess per solve).
- ``highs``: pulp's in-process HiGHS binding (highspy). Only this one HiGHS binding is used in the
  process: mixing it with OR-Tools' HiGHS backend crashes.
- ``cpsat``: OR-Tools CP-SAT, which needs integer coefficients: continuous quantities are scaled to
  integer units (microseconds for latency, 1e-9 for accuracy, log-accuracy and dollars) and every
  coefficient is rounded in the direction that keeps the rounded constraint at least as strict, so
  a CP-SAT plan always satisfies the unrounded model (the re-check verifies it).

CBC runs as a child process. pipeplan owns it: its .mps/.sol files live in a temporary folder
removed after every solve, and the child runs in its own process group (session), so a Ctrl-C at
the terminal reaches pipeplan only; on Ctrl-C or SIGTERM (which the CLI turns into Ctrl-C) the
child's group is killed and the folder removed before the interrupt goes on.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from enum import Enum
from pathlib import Path
from typing import Iterator

from planner.errors import SolverError
from planner.plan import SolveStatus
from planner.ilp.program import LinearModel, Sense, Solution, VarKind


class SolverName(str, Enum):
    CBC = "cbc"
    HIGHS = "highs"
    CPSAT = "cpsat"


def solve(model: LinearModel, solver: SolverName, time_limit_s: float | None = None) -> Solution:
    """Solve ``model``; never raises for infeasibility (status says so), raises SolverError on failure."""
    if time_limit_s is not None and not (math.isfinite(time_limit_s) and time_limit_s > 0):
        # A negative limit made CBC stop at once and the plan read as a time-out.
        raise SolverError(f"time limit {time_limit_s!r} s: give a positive number of seconds (--time-limit).")
    for terms in [model.objective] + [c.terms for c in model.constraints]:
        names = [n for n, _ in terms]
        if len(names) != len(set(names)):
            # pulp keeps only the last coefficient of a repeated variable: refuse rather than mis-solve.
            raise SolverError(f"model '{model.name}' names a variable twice in one row; this is a bug in pipeplan.")
    if solver is SolverName.CPSAT:
        return _solve_cpsat(model, time_limit_s)
    return _solve_pulp(model, solver, time_limit_s)


def _pulp_problem(model: LinearModel):
    """The model as a pulp problem (variable and constraint names kept) and its variables by name."""
    import pulp

    prob = pulp.LpProblem(model.name, pulp.LpMaximize if model.maximize else pulp.LpMinimize)
    xs = {
        v.name: prob.add_variable(
            v.name, lowBound=v.lower, upBound=v.upper,
            cat=pulp.LpBinary if v.kind is VarKind.BINARY else pulp.LpContinuous,
        )
        for v in model.variables
    }
    prob += pulp.LpAffineExpression([(xs[n], c) for n, c in model.objective]), "objective"
    for con in model.constraints:
        expr = pulp.LpAffineExpression([(xs[n], c) for n, c in con.terms])
        if con.sense is Sense.LE:
            prob += (expr <= con.rhs, con.name)
        elif con.sense is Sense.GE:
            prob += (expr >= con.rhs, con.name)
        else:
            prob += (expr == con.rhs, con.name)
    return prob, xs


def write_lp(model: LinearModel, path: str | Path) -> None:
    """Write the program in LP format with its readable variable and constraint names."""
    prob, _ = _pulp_problem(model)
    prob.writeLP(str(path))


class _OwnedPopen(subprocess.Popen):
    """subprocess.Popen starting the child in its own session (process group), remembered so that
    an interrupt can kill its whole group."""

    children: list[subprocess.Popen] = []

    def __init__(self, *args, **kwargs):
        kwargs["start_new_session"] = True
        super().__init__(*args, **kwargs)
        _OwnedPopen.children.append(self)


class _SubprocessProxy:
    """What pulp's CBC module sees as ``subprocess`` during one solve: Popen is _OwnedPopen."""

    Popen = _OwnedPopen

    def __getattr__(self, name: str):
        return getattr(subprocess, name)


@contextlib.contextmanager
def _owned_cbc() -> Iterator[str]:
    """A temporary folder for CBC's files, and CBC children in their own process group; on any
    exit (an interrupt included) live children are killed and the folder removed."""
    from pulp.apis import coin_api

    folder = tempfile.mkdtemp(prefix="pipeplan-cbc-")
    saved = coin_api.subprocess
    coin_api.subprocess = _SubprocessProxy()
    try:
        yield folder
    finally:
        coin_api.subprocess = saved
        while _OwnedPopen.children:
            child = _OwnedPopen.children.pop()
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=5)
        shutil.rmtree(folder, ignore_errors=True)


def _solve_pulp(model: LinearModel, solver: SolverName, time_limit_s: float | None) -> Solution:
    import pulp

    prob, xs = _pulp_problem(model)
    if solver is SolverName.CBC:
        with warnings.catch_warnings():
            # pulp 3.x deprecates the bundled CBC in favour of a separately installed one (pulp 4);
            # the bundled binary is what makes a plain `pip install` work offline, so keep it.
            warnings.simplefilter("ignore", DeprecationWarning)
            # No `threads` option: with `-threads 1` the bundled CBC 2.10 starts a worker thread that
            # now and then waits 10 s to start (measured: 1 solve in 4 on a 2-core machine took
            # 10.0 s, "Thread 0 ... waiting to start 10.000117" in CBC's log); without it CBC runs
            # single-threaded with no pool at all.
            # Cut generation off: on these multiple-choice knapsacks CBC's cuts rarely pay; over 18
            # benchmark programs (bench_planner sizes and seeds, both objectives) it cut the total
            # CBC time by 23% with identical optima.
            # Preprocessing off as well: CBC's preprocess probes and tightens the multiple-choice rows
            # at a cost these programs never repay (first min-cost solve, CPU: 16x10x4 0.22 -> 0.11 s,
            # 64x10x4 DAG ~25 -> 1.05 s; docs/benchmarks.md, "Planner solve time").
            backend = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s, cuts=False, options=["preprocess off"])
    else:
        # HiGHS stops at a 1e-4 relative gap by default; a plan called optimal must be optimal.
        backend = pulp.HiGHS(msg=False, timeLimit=time_limit_s, threads=1, gapRel=0.0)
    start = time.perf_counter()
    try:
        with quiet_stdout() if solver is SolverName.HIGHS else _owned_cbc() as folder:
            if solver is SolverName.CBC:
                backend.tmpDir = folder
            prob.solve(backend)
    except pulp.PulpSolverError as exc:
        raise SolverError(f"solver {solver.value} failed: {exc}; try another with --solver.") from None
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    status = _pulp_status(prob.status, prob.sol_status)
    values = {n: (v.value() or 0.0) for n, v in xs.items()} if status.has_plan else {}
    objective = pulp.value(prob.objective) if values else None
    gap = 0.0 if status is SolveStatus.OPTIMAL else None
    if status is SolveStatus.TIME_LIMIT and solver is SolverName.HIGHS:
        gap = float(prob.solverModel.getInfo().mip_gap)
    return Solution(values, status, objective, gap, elapsed_ms, solver.value)


@contextlib.contextmanager
def quiet_stdout():
    """Silence file descriptor 1: highspy prints a banner from C++ when a model is created."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def _pulp_status(status: int, sol_status: int) -> SolveStatus:
    import pulp

    if sol_status == pulp.LpSolutionOptimal:
        return SolveStatus.OPTIMAL
    if sol_status == pulp.LpSolutionIntegerFeasible:
        return SolveStatus.TIME_LIMIT
    if status == pulp.LpStatusInfeasible or sol_status == pulp.LpSolutionInfeasible:
        return SolveStatus.INFEASIBLE
    if status == pulp.LpStatusNotSolved or sol_status == pulp.LpSolutionNoSolutionFound:
        return SolveStatus.NO_SOLUTION  # e.g. the time limit hit before any feasible plan was found
    return SolveStatus.ERROR


_SCALE = {"ms": 1000.0, "accuracy": 1e6, "": 1.0}
_OBJ_SCALE = 1e6
# Rows over binaries only (accuracy floor, budget): rounding each coefficient costs at most 1e-9
# per stage, far below the planner's tie tolerance (1e-6 relative), so exact ties stay feasible.
_ROW_SCALE = 1e9


def _solve_cpsat(model: LinearModel, time_limit_s: float | None) -> Solution:
    from ortools.sat.python import cp_model

    cp = cp_model.CpModel()
    scale = {v.name: _SCALE.get(v.unit, 1.0) for v in model.variables}
    xs = {}
    for v in model.variables:
        if v.kind is VarKind.BINARY:
            xs[v.name] = cp.NewBoolVar(v.name)
        else:
            s = scale[v.name]
            xs[v.name] = cp.NewIntVar(math.ceil(v.lower * s), math.floor(v.upper * s), v.name)
    for con in model.constraints:
        # A constraint on continuous variables in unit u is multiplied by u's scale so those
        # variables take integer coefficients; rounding then tightens it (never loosens).
        k = max((scale[n] for n, _ in con.terms if scale[n] != 1.0), default=1.0)
        if k == 1.0 and any(not float(c).is_integer() for _, c in con.terms):
            k = _ROW_SCALE
        if con.sense is Sense.LE:
            terms = [(n, math.ceil(c * k / scale[n] - 1e-9)) for n, c in con.terms]
            cp.Add(sum(xs[n] * c for n, c in terms) <= math.floor(con.rhs * k + 1e-9))
        elif con.sense is Sense.GE:
            terms = [(n, math.floor(c * k / scale[n] + 1e-9)) for n, c in con.terms]
            cp.Add(sum(xs[n] * c for n, c in terms) >= math.ceil(con.rhs * k - 1e-9))
        else:
            terms = [(n, round(c * k / scale[n])) for n, c in con.terms]
            cp.Add(sum(xs[n] * c for n, c in terms) == round(con.rhs * k))
    objective = sum(xs[n] * round(c * _OBJ_SCALE / scale[n]) for n, c in model.objective)
    if model.maximize:
        cp.Maximize(objective)
    else:
        cp.Minimize(objective)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = 0
    if time_limit_s is not None:
        solver.parameters.max_time_in_seconds = float(time_limit_s)
    start = time.perf_counter()
    code = solver.Solve(cp)
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    if code == cp_model.OPTIMAL:
        status = SolveStatus.OPTIMAL
    elif code == cp_model.FEASIBLE:
        status = SolveStatus.TIME_LIMIT
    elif code == cp_model.INFEASIBLE:
        status = SolveStatus.INFEASIBLE
    elif code == cp_model.UNKNOWN:
        status = SolveStatus.NO_SOLUTION
    else:
        raise SolverError(f"CP-SAT returned {solver.StatusName(code)}; the model may be invalid; try --solver cbc.")
    if not status.has_plan:
        return Solution({}, status, None, None, elapsed_ms, "cpsat")
    values = {n: solver.Value(x) / scale[n] for n, x in xs.items()}
    true_objective = sum(c * values[n] for n, c in model.objective)
    gap = 0.0
    if status is SolveStatus.TIME_LIMIT:
        best, bound = solver.ObjectiveValue(), solver.BestObjectiveBound()
        gap = abs(bound - best) / max(1e-9, abs(best))
    return Solution(values, status, true_objective, gap, elapsed_ms, "cpsat")
