r"""The planner's integer program.

Sets
    S            stages of the pipeline (a DAG; E = {(p, s): s runs after p})
    O_s          non-dominated options of stage s (planner.estimate.candidates): a variant, hardware kind h(o),
                 batch size b, batch timeout tau (ms) and replica count n
    H_cap        hardware kinds with a unit limit

Parameters (per option o of stage s; all precomputed, so the program is linear)
    c_o   usd_per_hour      n * price of h(o)
    L_o   ms                p99 latency of the stage: fill (tau) + queueing wait at the utilisation n
                            gives + batch service p99 (planner.estimate.latency)
    m_o   ms                mean latency of the stage (an upper bound, planner.estimate.latency), <= L_o
    l_o   ms                its term in a path sum, m_o + w_s (L_o - m_o), w_s = w(n_s) in (0, 1]
                            (planner.estimate.paths: n_s the fewest stages on a source-to-sink
                            path through s, rho the assumed correlation between stage latencies)
    a_o   (0, 1]            accuracy of the variant
    n_o   units             replicas, each one unit of h(o)
    SLO   ms                end-to-end p99 target;  U_h  units available of h;  B  usd_per_hour budget
    A     (0, 1]            accuracy floor

Variables
    x_{s,o} in {0, 1}       stage s runs option o
    f_s >= 0 (ms)           path-rule finish time of stage s: the longest path of l from the pipeline's entry
    z in [0, 1]             pipeline accuracy when it is aggregated by ``min``

Constraints (numbered as the code below; each gets a readable name in the LP file)
    (0) capacity (by construction, not a row): every option's n carries the stage load
        arrival_rps * fanout_s at utilisation <= max_utilization, with the timeout's partial
        batches counted (planner.estimate.candidates). Options whose L_o > SLO are never feasible and are
        dropped (a request is at least as slow as its slowest stage: the path rule's max_s q_s term).
    (1) one option per stage            sum_o x_{s,o} = 1                           for s in S
    (2) path latency                    f_s >= sum_o l_o x_{s,o}                    for sources s
                                        f_s >= f_p + sum_o l_o x_{s,o}              for (p, s) in E
    (3) latency SLO                     f_s <= SLO                                  for sinks s
        When the DAG has at most 64 source-to-sink paths P (every chain has one), (2)-(3) are
        written without f, one knapsack row per path, which is the same set of plans:
                                        sum_{s in P} sum_o l_o x_{s,o} <= SLO        for each path P
        With (0), (2)-(3) are exactly the path rule's F <= SLO (planner.estimate.paths):
        F = max(max_s L_s, max_P sum_{s in P} l_s), and l_o is one precomputed number per option,
        so the rule needs neither extra variables nor cuts, and the plan is optimal for the rule
        itself, not a relaxation of it. (At rho = 1, l_o = L_o: the sum of stage p99s.) The
        root-sum-square rule sum m + ||d||_Q, kept exact by Cauchy-Schwarz cuts, was tried
        (branch `path`): it needs options pruned on (mean, tail) instead of one number, 4.4x the
        options, and re-solves per cut, about 5 s per 16-stage plan; this rule is its linear
        minorant, made safe by calibrating rho (planner.estimate.paths).
    (4) hardware units                  sum_{s, o: h(o)=h} n_o x_{s,o} <= U_h       for h in H_cap
    (5) accuracy floor                  product: sum_{s,o} ln(a_o) x_{s,o} >= ln(A)   (exact: ln is monotone)
                                        mean:    sum_{s,o} a_o x_{s,o} >= |S| A
                                        min:     options with a_o < A are removed
    (6) budget                          sum_{s,o} c_o x_{s,o} <= B
    (7) min-accuracy epigraph           z <= sum_o a_o x_{s,o}                     for s in S

Objectives
    min_cost                 minimise sum c_o x_{s,o}                     subject to (1)-(5)
    max_accuracy             maximise acc(x) subject to (1)-(4), (6), (7); then, at that accuracy,
                             minimise cost (two solves, so ties go to the cheaper plan)
    min_latency (tie-break)  minimise sum l_o x_{s,o} subject to (1)-(6): among plans of equal cost
                             and accuracy, the one with the most latency headroom (so every solver
                             returns the same configuration)
    weighted (mean, min)     maximise w_a acc(x) - w_c sum c_o x_{s,o}   (linear, one solve)
    weighted (product)       product accuracy is not linear, and ln(product) as an objective
                             optimises a different trade-off, so the planner walks the
                             cost-accuracy frontier instead (min_cost at rising floors, next floor
                             just above the last point's accuracy) and keeps the best true
                             objective: exact, at one solve per frontier point.
    where acc(x) = sum ln(a_o) x (product), sum a_o x / |S| (mean) or z (min).

    The tie-break solves (the second and third of min_cost, max_accuracy) admit only plans as good
    as the first solve's optimum, so they run over the options that the first program's LP
    relaxation does not rule out by reduced cost (planner.ilp.fixing: exact, the same feasible
    plans); at 64 stages that leaves about 5% of the columns, and the two solves take 0.8 s
    instead of 8 s (docs/benchmarks.md, "Planner solve time"). The first min-cost solve does the
    same when rounding its LP solution gives a plan that keeps every row (its cost bounds the
    optimum; most 16-stage programs, not the 64-stage DAG's).

The waiting term in L_o is computed from each option's own batch size, timeout and replica count,
so nothing multiplies a 0/1 indicator by a rate (IPA's batch-wait term did, and so loosened its SLA
instead of tightening it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum
from functools import cached_property

from planner.estimate.candidates import CandidateSet, Option
from planner.ilp.fixing import Relaxation, relax
from planner.ilp.program import Constraint, LinearModel, Sense, Variable, VarKind
from planner.spec import AccuracyAggregation, PipelineSpec

# Up to this many source-to-sink paths, the SLO is one knapsack row per path (tighter for the
# solvers, no continuous variables); beyond it, finish-time variables keep the model small.
_MAX_PATH_ROWS = 64

# Floors and budgets are relaxed by this relative amount so that a plan exactly at the floor (as
# in a frontier walk) is not cut off by floating-point rounding.
_REL_TOL = 1e-9


class Goal(str, Enum):
    MIN_COST = "min_cost"
    MAX_ACCURACY = "max_accuracy"
    WEIGHTED = "weighted"
    MIN_LATENCY = "min_latency"  # tie-break: least summed stage latency under the floor and budget


@dataclass(frozen=True)
class Problem:
    """One program to solve: what to optimise and which optional constraints apply."""

    goal: Goal
    aggregation: AccuracyAggregation
    accuracy_floor: float | None = None
    budget_usd_per_hour: float | None = None
    accuracy_weight: float = 0.0
    cost_weight: float = 0.0
    enforce_units: bool = True


@dataclass(frozen=True)
class Formulation:
    model: LinearModel
    choice: dict[str, tuple[str, Option]]  # x variable name -> (stage, option)
    finish: dict[str, str]  # stage -> f variable name

    @cached_property
    def relaxation(self) -> Relaxation | None:
        """The model's LP relaxation (planner.ilp.fixing), solved once on first use."""
        return relax(self.model)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _usable(options: tuple[Option, ...], problem: Problem) -> tuple[Option, ...]:
    if problem.aggregation is AccuracyAggregation.MIN and problem.accuracy_floor:
        floor = problem.accuracy_floor * (1 - _REL_TOL)
        return tuple(o for o in options if o.accuracy >= floor)
    return options


def _ilp_pareto(options: tuple[Option, ...], capped: dict[str, int]) -> tuple[Option, ...]:
    """The options no earlier one of the same unit group beats or ties on cost, path term and accuracy.

    The candidates are pruned on those and on the output scv, which only the flow check after the
    solve reads (planner.estimate.flow); the program reads c_o, l_o, a_o and, on a capped kind h,
    n_o (its replicas: c_o / price(h) on a VM; on a serverless entry, priced per use, the cost does
    not follow them, so n is compared itself). They come in the pruning order (cost, l_o, -accuracy,
    ...), so option B dropped here has an earlier A with c_A <= c_B, l_A <= l_B, a_A >= a_B and, on
    a capped kind, the same kind and n_A <= n_B. Swapping B for A in any plan keeps (1)-(7) satisfied (each path sum,
    unit count and cost no larger, the accuracy no smaller, for product, mean and min alike) and
    makes no objective worse: min_cost, max_accuracy, weighted and min_latency are each monotone in
    (c, -a, l). So every program's optimum is unchanged, and the planner's answer, the optimum of
    the lexicographic chain (cost, then accuracy, then sum l), contains no B unless B ties A on
    cost, accuracy and l at once: then the two plans are equal on everything the planner
    optimises, and the solver's pick among them was arbitrary already."""
    kept: list[Option] = []
    for o in options:
        group = o.hardware if o.hardware in capped else "*"
        if not any((k.hardware if k.hardware in capped else "*") == group and k.path_latency_ms <= o.path_latency_ms
                   and k.accuracy >= o.accuracy and k.usd_per_hour <= o.usd_per_hour
                   and (group == "*" or k.replicas <= o.replicas) for k in kept):
            kept.append(o)
    return tuple(kept)


def accuracy_terms(xs: list[tuple[str, Option]], aggregation: AccuracyAggregation, n_stages: int):
    """The linear accuracy expression's terms for product (ln) or mean aggregation."""
    if aggregation is AccuracyAggregation.PRODUCT:
        return [(x, math.log(o.accuracy)) for x, o in xs]
    return [(x, o.accuracy / n_stages) for x, o in xs]


def formulate(spec: PipelineSpec, candidates: CandidateSet, hardware_units: dict[str, int],
              problem: Problem) -> Formulation:
    """Build the program of the module docstring for ``problem``."""
    order = spec.topological_order()
    variables: list[Variable] = []
    constraints: list[Constraint] = []
    choice: dict[str, tuple[str, Option]] = {}
    by_stage: dict[str, list[tuple[str, Option]]] = {}
    finish: dict[str, str] = {}
    by_name = {s.stage: s for s in candidates.stages}
    for s_idx, stage in enumerate(order):
        options = _ilp_pareto(_usable(by_name[stage].options, problem), hardware_units)
        xs = []
        prefix = f"x_{s_idx}_{_safe(stage)}_"  # once per stage: the regex per option was most of the build
        for k, option in enumerate(options):
            name = f"{prefix}{k}"
            variables.append(Variable(name, VarKind.BINARY))
            choice[name] = (stage, option)
            xs.append((name, option))
        by_stage[stage] = xs
    constraints += _c1_one_option(by_stage)
    paths = source_to_sink_paths(spec, _MAX_PATH_ROWS)
    if paths is not None:
        constraints += _c2_path_rows(paths, by_stage, spec.slo_ms)
    else:
        for s_idx, stage in enumerate(order):
            finish[stage] = f"f_{s_idx}_{_safe(stage)}"
            variables.append(Variable(finish[stage], VarKind.CONTINUOUS, 0.0, spec.slo_ms, unit="ms"))
        constraints += _c2_path_latency(spec, by_stage, finish)
        constraints += _c3_slo(spec, finish)
    if problem.enforce_units:
        constraints += _c4_units(by_stage, hardware_units)
    all_x = [xo for stage in order for xo in by_stage[stage]]
    if problem.accuracy_floor and problem.aggregation is not AccuracyAggregation.MIN:
        constraints.append(_c5_accuracy_floor(all_x, problem, len(order)))
    if problem.budget_usd_per_hour is not None:
        constraints.append(Constraint(
            "c6_budget", tuple((x, o.usd_per_hour) for x, o in all_x), Sense.LE,
            problem.budget_usd_per_hour * (1 + _REL_TOL)))

    cost = [(x, o.usd_per_hour) for x, o in all_x]
    if problem.goal is Goal.MIN_COST:
        objective, maximize = cost, False
    elif problem.goal is Goal.MIN_LATENCY:
        objective, maximize = [(x, o.path_latency_ms) for x, o in all_x], False
    else:
        if problem.aggregation is AccuracyAggregation.MIN:
            variables.append(Variable("z_min_accuracy", VarKind.CONTINUOUS, 0.0, 1.0, unit="accuracy"))
            constraints += _c7_min_epigraph(by_stage)
            acc = [("z_min_accuracy", 1.0)]
        else:
            acc = accuracy_terms(all_x, problem.aggregation, len(order))
        if problem.goal is Goal.MAX_ACCURACY:
            objective, maximize = acc, True
        else:
            objective = [(v, problem.accuracy_weight * c) for v, c in acc]
            objective += [(x, -problem.cost_weight * c) for x, c in cost]
            maximize = True
    model = LinearModel(
        name=_safe(spec.name),
        variables=tuple(variables),
        constraints=tuple(constraints),
        objective=merge_terms(objective),
        maximize=maximize,
    )
    return Formulation(model, choice, finish)


def merge_terms(terms) -> tuple[tuple[str, float], ...]:
    """One coefficient per variable, in first-seen order (the weighted objective names each x twice)."""
    merged: dict[str, float] = {}
    for name, coef in terms:
        merged[name] = merged.get(name, 0.0) + coef
    return tuple(merged.items())


def _c1_one_option(by_stage: dict[str, list[tuple[str, Option]]]) -> list[Constraint]:
    return [
        Constraint(f"c1_one_option_{_safe(stage)}", tuple((x, 1.0) for x, _ in xs), Sense.EQ, 1.0)
        for stage, xs in by_stage.items()
    ]


def source_to_sink_paths(spec: PipelineSpec, limit: int) -> list[tuple[str, ...]] | None:
    """Every path from a source stage to a sink, or None when there are more than ``limit``."""
    children: dict[str, list[str]] = {s.name: [] for s in spec.stages}
    for s in spec.stages:
        for parent in s.after:
            children[parent].append(s.name)
    paths: list[tuple[str, ...]] = []
    stack = [(s.name,) for s in reversed(spec.stages) if not s.after]
    while stack:
        path = stack.pop()
        nxt = children[path[-1]]
        if not nxt:
            paths.append(path)
            if len(paths) > limit:
                return None
        stack.extend(path + (c,) for c in reversed(nxt))
    return paths


def _c2_path_rows(paths, by_stage, slo_ms: float) -> list[Constraint]:
    """(2)+(3) in path form: each source-to-sink path's stage terms l_o sum to at most the SLO."""
    return [
        Constraint(f"c2_path_{i}_{_safe('_'.join(path))}"[:200],
                   tuple((x, o.path_latency_ms) for stage in path for x, o in by_stage[stage]), Sense.LE, slo_ms)
        for i, path in enumerate(paths)
    ]


def _c2_path_latency(spec: PipelineSpec, by_stage, finish: dict[str, str]) -> list[Constraint]:
    rows = []
    for stage in spec.topological_order():
        own = tuple((x, -o.path_latency_ms) for x, o in by_stage[stage])
        parents = spec.stage(stage).after
        if not parents:
            rows.append(Constraint(f"c2_path_{_safe(stage)}", ((finish[stage], 1.0),) + own, Sense.GE, 0.0))
        for parent in parents:
            rows.append(Constraint(
                f"c2_path_{_safe(stage)}_after_{_safe(parent)}",
                ((finish[stage], 1.0), (finish[parent], -1.0)) + own, Sense.GE, 0.0))
    return rows


def _c3_slo(spec: PipelineSpec, finish: dict[str, str]) -> list[Constraint]:
    return [Constraint(f"c3_slo_{_safe(s)}", ((finish[s], 1.0),), Sense.LE, spec.slo_ms) for s in spec.sinks()]


def _c4_units(by_stage, hardware_units: dict[str, int]) -> list[Constraint]:
    rows = []
    for hw, units in sorted(hardware_units.items()):
        terms = tuple((x, float(o.replicas)) for xs in by_stage.values() for x, o in xs if o.hardware == hw)
        if terms:
            rows.append(Constraint(f"c4_units_{_safe(hw)}", terms, Sense.LE, float(units)))
    return rows


def _c5_accuracy_floor(all_x, problem: Problem, n_stages: int) -> Constraint:
    floor = problem.accuracy_floor * (1 - _REL_TOL)
    if problem.aggregation is AccuracyAggregation.PRODUCT:
        rhs = math.log(floor)
    else:
        rhs = floor
    return Constraint("c5_accuracy_floor", tuple(accuracy_terms(all_x, problem.aggregation, n_stages)),
                      Sense.GE, rhs)


def _c7_min_epigraph(by_stage) -> list[Constraint]:
    return [
        Constraint(f"c7_min_accuracy_{_safe(stage)}",
                   (("z_min_accuracy", 1.0),) + tuple((x, -o.accuracy) for x, o in xs), Sense.LE, 0.0)
        for stage, xs in by_stage.items()
    ]
