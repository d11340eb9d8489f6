"""The tuner: adapt the plan as load shifts (policies behind one ask/tell interface), and evaluate it.

``tune(PlanBook(request), trace, PolicyKind.PREDICTIVE)`` replays a trace under a policy through
the schedule simulator (planner.sim.schedule) with reconfiguration delays (planner.tuner.deployment);
``compare`` runs several policies, the hindsight oracle first; ``compare_rows`` checks each against
the targets (planner.tuner.targets).
"""

from planner.tuner.planbook import PlanBook
from planner.tuner.policies import (DEFAULT_POLICY, POLICIES, Observation, PlaybackPolicy, Policy, PolicyKind,
                                    default_policy, make_policy)
from planner.tuner.replay import TuneResult, TuneSettings, compare, tune, tune_policy
from planner.tuner.settings import (BurstSettings, ForecasterKind, ForecastSettings, PolicySettings, PredictiveSettings,
                                    ReactiveSettings)
from planner.tuner.targets import CompareRow, Targets, compare_rows

__all__ = ["BurstSettings", "CompareRow", "DEFAULT_POLICY", "ForecastSettings", "ForecasterKind", "Observation", "POLICIES",
           "PlanBook", "PlaybackPolicy", "Policy", "PolicyKind", "PolicySettings", "PredictiveSettings",
           "ReactiveSettings", "Targets", "TuneResult", "TuneSettings", "compare", "compare_rows", "default_policy", "make_policy",
           "tune", "tune_policy"]
