"""The tuner: adapt the plan as load shifts (policies behind one ask/tell interface), and evaluate it.

``tune(PlanBook(request), trace, PolicyKind.PREDICTIVE)`` replays a trace under a policy through
the schedule simulator (planner.sim.schedule) with reconfiguration delays (planner.tuner.deployment);
``compare`` runs every policy, the hindsight oracle first.
"""

from planner.tuner.planbook import PlanBook
from planner.tuner.policies import (Observation, Policy, PolicyKind, PolicySettings, PredictiveSettings,
                                    ReactiveSettings, make_policy)
from planner.tuner.replay import CompareRow, TuneResult, TuneSettings, compare, compare_rows, tune

__all__ = ["CompareRow", "Observation", "PlanBook", "Policy", "PolicyKind", "PolicySettings", "PredictiveSettings",
           "ReactiveSettings", "TuneResult", "TuneSettings", "compare", "compare_rows", "make_policy", "tune"]
