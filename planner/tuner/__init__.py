"""The tuner: adapt the plan as load shifts (policies behind one ask/tell interface), and evaluate it.

``tune(PlanBook(request), trace, PolicyKind.PREDICTIVE)`` replays a trace under a policy through
the schedule simulator (planner.sim.schedule) with reconfiguration delays (planner.tuner.deployment);
``compare`` runs several policies, the hindsight oracle first; ``compare_rows`` checks each against
the targets (planner.tuner.targets).
"""

from typing import TYPE_CHECKING

from planner.lazy import lazy_exports

# Each public name and the submodule it lives in: importing one submodule (the CLI imports
# planner.tuner.settings for its enums) does not load the others (the ILP stack, scipy).
_EXPORTS = {
    **dict.fromkeys(["PlanBook"], "planner.tuner.planbook"),
    **dict.fromkeys(["Observation", "PlaybackPolicy", "Policy"], "planner.tuner.policies"),
    **dict.fromkeys(["POLICIES", "available_kinds", "default_policy", "make_policy"], "planner.tuner.registry"),
    **dict.fromkeys(["TuneResult", "TuneSettings", "compare", "tune", "tune_policy"], "planner.tuner.replay"),
    **dict.fromkeys(["DEFAULT_POLICY", "BurstSettings", "ForecasterKind", "ForecastSettings", "PolicyKind",
                     "PolicySettings", "PredictiveSettings", "ReactiveSettings"], "planner.tuner.settings"),
    **dict.fromkeys(["CompareRow", "Targets", "compare_rows"], "planner.tuner.targets"),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

if TYPE_CHECKING:  # what type checkers and editors see
    from planner.tuner.planbook import PlanBook
    from planner.tuner.policies import Observation, PlaybackPolicy, Policy
    from planner.tuner.registry import POLICIES, available_kinds, default_policy, make_policy
    from planner.tuner.replay import TuneResult, TuneSettings, compare, tune, tune_policy
    from planner.tuner.settings import (DEFAULT_POLICY, BurstSettings, ForecasterKind, ForecastSettings, PolicyKind,
                                        PolicySettings, PredictiveSettings, ReactiveSettings)
    from planner.tuner.targets import CompareRow, Targets, compare_rows
