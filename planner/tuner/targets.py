"""Whether a replay meets the tuner's targets, and by how much it misses: one check for single runs and comparisons.

A replay meets its targets when

1. at least ``attainment`` of all requests finish within the SLO (default 99%);
2. the spec's objective holds its side condition in every interval: for ``min_cost`` every plan's
   accuracy is at least ``min_accuracy`` (margin: the worst interval's accuracy minus the floor);
   for ``max_accuracy`` every interval's cost per hour is at most the budget (margin: the budget
   minus the dearest interval's cost per hour, USD/h); ``weighted`` has none;
3. its objective value (``Objective.value`` at the mean cost per hour and the time-mean accuracy)
   falls short of the hindsight oracle's on the same trace by at most ``shortfall`` of the
   oracle's magnitude (default 15%): for min_cost ``cost <= 1.15 x oracle``.

The oracle is part of every check, so a single policy's run replays the oracle beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.spec import MaxAccuracy, MinCost, PipelineSpec
from planner.tuner.replay import TuneResult
from planner.tuner.settings import PolicyKind


@dataclass(frozen=True)
class Targets:
    attainment: float = 0.99  # share of requests within the SLO
    shortfall: float = 0.15  # objective worse than the oracle's by at most this share of its magnitude


@dataclass(frozen=True)
class CompareRow:
    policy: str
    total_cost_usd: float
    cost_vs_oracle: float
    slo_attainment: float
    mean_accuracy: float
    objective_value: float  # in objective_unit
    objective_unit: str
    shortfall_vs_oracle: float  # (oracle - own) / |oracle| for a maximised objective, the reverse if minimised
    constraint: str  # the side condition checked ("accuracy >= 0.4", "usd_per_hour <= 0.4", "none")
    constraint_margin: float  # >= 0: held with this much to spare; < 0: missed by this much (its unit)
    reconfigurations: int
    meets_targets: bool


def side_condition(spec: PipelineSpec, result: TuneResult) -> tuple[str, float]:
    """The objective's side condition (2. in the module) and its margin: >= 0 held, < 0 missed by that much."""
    objective = spec.objective
    if isinstance(objective, MinCost):
        worst = min(r.accuracy for r in result.timeline)
        return f"accuracy >= {objective.min_accuracy:g}", worst - objective.min_accuracy
    if isinstance(objective, MaxAccuracy):
        dearest = max(r.cost_usd * 3600.0 / max(min(result.summary.interval_s,
                                                     result.summary.duration_s - r.time_s), 1e-9)
                      for r in result.timeline)
        return f"usd_per_hour <= {objective.budget_usd_per_hour:g}", objective.budget_usd_per_hour - dearest
    return "none", math.inf


def shortfall(value: float, oracle: float, maximize: bool) -> float:
    """How much worse ``value`` is than ``oracle``, as a share of the oracle's magnitude (<= 0: no worse)."""
    gap = (oracle - value) if maximize else (value - oracle)
    return gap / max(abs(oracle), 1e-12)


def compare_rows(spec: PipelineSpec, results: list[TuneResult], targets: Targets = Targets()) -> list[CompareRow]:
    """Each policy against the oracle (which must be among ``results``): objective, side condition, targets."""
    oracle = next((r.summary for r in results if r.summary.policy == PolicyKind.ORACLE.value), None)
    if oracle is None:
        raise ValueError("compare_rows needs the oracle's replay among the results; run it beside the policy")
    rows = []
    for r in results:
        s = r.summary
        name, margin = side_condition(spec, r)
        short = shortfall(s.objective_value, oracle.objective_value, spec.objective.maximize)
        met = s.slo_attainment >= targets.attainment and margin >= -1e-9 and short <= targets.shortfall + 1e-12
        rows.append(CompareRow(s.policy, s.total_cost_usd, s.total_cost_usd / oracle.total_cost_usd,
                               s.slo_attainment, s.mean_accuracy, s.objective_value, s.objective_unit, short,
                               name, margin, s.reconfigurations, met))
    return rows
