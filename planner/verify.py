"""Verified planning: the cheapest plan found whose SIMULATED p99 on a trace meets the SLO.

InferLine's estimator check, made a search around the exact planner. The analytical latency model
is conservative on most pipelines (docs/benchmarks.md, latency-model fidelity) and optimistic on
some bursty ones, so the model-only plan may both overspend and, rarely, miss. The search:

1. plan with the analytical model (planner.optimize.make_plan) and simulate the plan on the trace
   (planner.sim; a plan with spot or serverless stages with its preemptions and cold starts,
   planner.sim.classes); a plan *verifies* when its simulated p99 over all requests is at most the SLO;
2. if it verifies, **loosen**: re-plan against a relaxed model SLO ``a x slo`` for an allowance
   ``a`` in ``[1, max_allowance]``, bisecting (geometrically) between the largest allowance whose
   plan verified and the smallest whose plan did not, the first probe at ``slo / simulated p99``
   (how much room the simulation left). A looser model SLO can only lower the optimal cost, so
   the verified plans found get cheaper as the allowance rises until they stop verifying. Whether
   a plan verifies is not monotone in the allowance, though (the model and the simulator rank some
   configurations differently), so the rounds left scan allowances above the failing end;
3. if it misses, **tighten** along two paths, each until a plan verifies, no plan fits, or its
   share of the rounds is spent:
   - latency budget: plan against ``predicted_p99 x min(1 - 1e-6, slo / simulated_p99)``: below the
     rejected plan's predicted p99 (so it is cut off), scaled by how much the model under-estimated;
   - headroom: lower ``max_utilization`` below the rejected plan's busiest stage, by 5% or more;
   then bisect the allowance between the verified budget and the last rejected one with the rounds
   left (a verified budget that overshot leaves money on the table);
4. **local search** (planner.localsearch) from the best verified plan: one- and two-stage moves
   through every configuration the candidate enumeration considers, ranked by the objective and
   simulated best first, the best feasible improvement accepted, until no move improves or the
   simulation budget is spent. It reaches configurations that are no model SLO's optimum (the model
   and the simulator rank them differently), which the allowance search cannot;
5. return the best verified plan under the spec's objective, with a :class:`VerifyReport` beside it
   (its own type and file, naming the plan by the sha256 of its JSON; the Plan does not carry it),
   or raise InfeasibleError naming the closest miss.

Work is bounded twice: at most ``max_rounds`` ILP plans, and at most ``max_simulations`` distinct
configurations simulated in all (a configuration met again reuses its result; every simulation of a
search uses the same trace and seed, common random numbers, so that plans are compared on the same
draws). A plan the local search improved has solver status ``local_search`` and its provenance's
``local_search`` says which moves led to it and how many simulations the search made.

The simulated p99 is itself an estimate from a finite trace: the report gives a distribution-free
95% band for it (order statistics of the binomial count below the p99) and MLPerf LoadGen's
sample-size verdict. The plans are the best found, not proven the best verifiable.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np

from planner.errors import InfeasibleError
from planner.localsearch import improve
from planner.optimize import PlanRequest, make_plan
from planner.plan import Plan, SolveStatus
from planner.sim import ServiceModel, SimConfig, SimResult, simulate
from planner.sim.classes import has_classes, simulate_classes
from planner.spec import Objective, PipelineSpec
from planner.traces import MAX_TRACE_DURATION_S, MAX_TRACE_REQUESTS, Trace, gamma
# The report's types live in planner.verifyreport; they are part of this module's interface too.
from planner.verifyreport import (Knob, StageCheck, VerifyReport, VerifyRound, estimate_note_text, sample_note_text, p99_band_ms, plan_sha256)

log = logging.getLogger(__name__)

_CUT = 1e-6  # relative step below the rejected plan's predicted p99 / utilisation
_HEADROOM_STEP = 0.95
_MIN_UTILIZATION = 0.05
_ALLOWANCE_TOLERANCE = 0.02  # bisection stops when the bracket's ratio is within 2%
_SCAN_STEP = 1.2  # the scan above the bisection's failing end
DEFAULT_MAX_SIMULATIONS = 200  # distinct configurations simulated per search (plan --verify-sims)
# MLPerf LoadGen's binomial rule at 99% confidence: 459 requests with none over the target for a
# p99 claim. A generated trace holds 100 x 459 requests, so about 459 lie above its p99.
_P99_TAIL_REQUESTS = 459
GENERATED_REQUESTS = 100 * _P99_TAIL_REQUESTS
_GENERATED_MIN_DURATION_S = 60.0


def generated_trace(spec: PipelineSpec, seed: int) -> Trace:
    """Arrivals at the spec's ``arrival_rps`` and ``arrival_cv`` (Gamma renewal; Poisson at CV 1; evenly
    spaced at CV 0), long enough for about 459 requests above the p99 (45,900 requests, at least 60 s),
    within the trace limits. Deterministic given ``seed``."""
    rate = spec.arrival_rps
    duration_s = max(GENERATED_REQUESTS / rate, min(_GENERATED_MIN_DURATION_S, 0.5 * MAX_TRACE_REQUESTS / rate))
    duration_s = min(duration_s, MAX_TRACE_DURATION_S, 0.5 * MAX_TRACE_REQUESTS / rate)
    if spec.arrival_cv <= 0:
        gap_ms = 1000.0 / rate
        arrivals = np.arange(int(duration_s * rate)) * gap_ms
        return Trace(arrivals, duration_s * 1000.0, "generated",
                     f"evenly spaced(rate_rps={rate:g}, duration_s={duration_s:g})")
    trace = gamma(rate, spec.arrival_cv, duration_s, np.random.default_rng(seed))
    return replace(trace, name="generated")


def _configuration(plan: Plan) -> str:
    return "; ".join(f"{s.stage}={s.variant}@{s.hardware} b{s.batch_size} t{s.batch_timeout_ms:.3g} x{s.replicas}"
                     for s in plan.stages)


def _better(objective: Objective, a: Plan, b: Plan) -> bool:
    """Whether plan a beats plan b under the spec's objective."""
    return objective.better((a.cost_usd_per_hour, a.accuracy), (b.cost_usd_per_hour, b.accuracy))


class _Search:
    """The search's state: the rounds tried and the configurations already simulated."""

    def __init__(self, request: PlanRequest, trace: Trace, config: SimConfig, max_rounds: int, max_simulations: int):
        self.request, self.trace, self.config, self.max_rounds = request, trace, config, max_rounds
        self.max_simulations = max_simulations
        self.slo_ms = request.spec.slo_ms
        self.ilp_rounds = 0
        self.local_simulations = 0
        self.rounds: list[VerifyRound] = []
        self.seen: dict[str, SimResult] = {}
        self.plans: list[Plan] = []  # one per round
        self.verified: list[tuple[Plan, SimResult]] = []

    @property
    def left(self) -> int:
        """ILP plans left: none once the simulation budget is spent."""
        return self.max_rounds - self.ilp_rounds if len(self.seen) < self.max_simulations else 0

    def probe(self, plan: Plan, move: str) -> SimResult | None:
        """The local search's simulation of ``plan``: a known configuration's result is reused (and not
        recorded again); None once the simulation budget is spent."""
        key = _configuration(plan)
        if key in self.seen:
            return self.seen[key]
        if len(self.seen) >= self.max_simulations:
            return None
        # The per-stage detail lets the search rule out more configurations; only the summary is kept.
        result = simulated(plan, self.trace, replace(self.config, keep_detail=True, keep_requests=False))
        self.seen[key] = replace(result, detail=None)
        self.local_simulations += 1
        self._record(Knob.LOCAL_MOVE, math.nan, self.request.spec.max_utilization, plan, result, True, key, move)
        return result

    def _record(self, knob: Knob, budget_ms: float, utilization: float, plan: Plan, result: SimResult, fresh: bool,
                key: str, move: str = "") -> None:
        simulated = result.summary.p99_ms
        ok = simulated <= self.slo_ms
        self.rounds.append(VerifyRound(
            len(self.rounds) + 1, knob, budget_ms, budget_ms / self.slo_ms, utilization, plan.cost_usd_per_hour,
            plan.accuracy, plan.predicted_p99_ms, simulated, result.summary.slo_attainment, ok, fresh, key, move))
        log.info("verify round %d (%s%s): predicted p99 %.2f ms, simulated %.2f ms, SLO %.2f ms", len(self.rounds),
                 knob.value, f" {move}" if move else f", model SLO {budget_ms:.2f} ms", plan.predicted_p99_ms,
                 simulated, self.slo_ms)
        self.plans.append(plan)
        if ok:
            self.verified.append((plan, result))

    def attempt(self, knob: Knob, budget_ms: float, utilization: float) -> tuple[Plan, SimResult] | None:
        """Plan against the changed spec and simulate; None when no plan fits it."""
        spec = self.request.spec
        changed = spec.model_copy(update={"slo_ms": budget_ms, "max_utilization": utilization})
        try:
            plan = make_plan(replace(self.request, spec=changed))
        except InfeasibleError:
            if knob is Knob.NONE:
                raise
            return None
        key = _configuration(plan)
        fresh = key not in self.seen
        result = self.seen[key] if not fresh else simulated(plan, self.trace, self.config)
        self.seen[key] = result
        self.ilp_rounds += 1
        self._record(knob, budget_ms, utilization, plan, result, fresh, key)
        return plan, result

    def bisect(self, ok: tuple[float, Plan], fail_allowance: float, fail_plan: Plan | None = None,
               first_probe: float | None = None) -> float:
        """Geometric bisection of the allowance between one whose plan verified (``ok``: allowance, plan)
        and one whose plan did not (or the upper bound, ``fail_plan`` None), while rounds are left.

        A looser model SLO never makes the optimum worse, so once the plan at the failing end does
        not beat the verified one (the objective and its tie-break equal) no plan in between can:
        the search stops there. Returns the failing end of the final bracket.
        """
        utilization = self.request.spec.max_utilization
        objective = self.request.spec.objective
        ok_allowance, ok_plan = ok
        probe = first_probe
        while self.left > 0 and fail_allowance > ok_allowance * (1 + _ALLOWANCE_TOLERANCE):
            if fail_plan is not None and not _better(objective, fail_plan, ok_plan):
                break
            a = probe if probe is not None and ok_allowance < probe < fail_allowance else math.sqrt(
                ok_allowance * fail_allowance)
            probe = None
            tried = self.attempt(Knob.SLO_ALLOWANCE, self.slo_ms * a, utilization)
            if tried is None:
                fail_allowance, fail_plan = a, None
            elif tried[1].summary.p99_ms <= self.slo_ms:
                ok_allowance, ok_plan = a, tried[0]
            else:
                fail_allowance, fail_plan = a, tried[0]
        return fail_allowance

    def scan(self, above: float, max_allowance: float) -> None:
        """Allowances above a failing one, a factor _SCAN_STEP apart, while rounds are left: whether a
        plan verifies is not monotone in the allowance (the model and the simulator rank some
        configurations differently), so a cheaper plan may verify above a rejected one."""
        a = above
        while self.left > 0 and a < max_allowance:
            a = min(max_allowance, a * _SCAN_STEP)
            self.attempt(Knob.SLO_ALLOWANCE, self.slo_ms * a, self.request.spec.max_utilization)

    def tighten(self, knob: Knob, first: tuple[Plan, SimResult], rounds: int) -> tuple[float, Plan] | None:
        """One tightening path from the rejected first plan; the budget (ms) and the plan that verified
        on it, or None."""
        spec = self.request.spec
        plan, result = first
        budget, utilization = self.slo_ms, spec.max_utilization
        for _ in range(rounds):
            if knob is Knob.LATENCY_BUDGET:
                simulated = result.summary.p99_ms
                ratio = self.slo_ms / simulated if math.isfinite(simulated) and simulated > 0 else 0.5
                budget = plan.predicted_p99_ms * min(1 - _CUT, ratio)
            else:
                utilization = min(utilization * _HEADROOM_STEP,
                                  max(s.utilization for s in plan.stages) * (1 - _CUT))
                if utilization < _MIN_UTILIZATION:
                    return None
            tried = self.attempt(knob, budget, utilization)
            if tried is None:
                return None
            plan, result = tried
            if result.summary.p99_ms <= self.slo_ms:
                return budget, plan
        return None


def simulated(plan: Plan, trace: Trace, config: SimConfig) -> SimResult:
    """The simulation a plan is verified by: with its spot preemptions and serverless cold starts when
    it has such stages (planner.sim.classes; seeded by ``config.seed``), else the plain simulator."""
    return (simulate_classes if has_classes(plan) else simulate)(plan, trace, config)


def verify_plan(request: PlanRequest, trace: Trace, seed: int = 0, max_rounds: int = 16,
                max_allowance: float = 3.0, service: ServiceModel = ServiceModel.LOGNORMAL,
                trace_generated: bool = False, max_simulations: int = DEFAULT_MAX_SIMULATIONS,
                local_search: bool = True) -> tuple[Plan, VerifyReport]:
    """The best plan (per the spec's objective) found whose simulated p99 on ``trace`` meets the SLO,
    and the report of the search (see the module docstring), at most ``max_rounds`` ILP plans and
    ``max_simulations`` distinct configurations simulated in all; ``local_search=False`` stops after
    the allowance search.

    The returned plan's ``slo_ms`` is the spec's; when it was solved against a relaxed or tightened
    model SLO, ``provenance["planned_slo_ms"]`` says which. Raises InfeasibleError, naming the
    closest miss, when no plan verifies; the planner's own InfeasibleError propagates when even the
    first plan does not exist.
    """
    spec = request.spec
    slo_ms = spec.slo_ms
    if trace.requests == 0:
        raise InfeasibleError(f"trace '{trace.name}' has no requests; verify against a trace with arrivals.")
    if not (max_rounds >= 1 and max_allowance >= 1 and max_simulations >= 1):
        raise ValueError("verify_plan needs max_rounds >= 1, max_allowance >= 1 and max_simulations >= 1, found "
                         f"{max_rounds}, {max_allowance}, {max_simulations}")
    if abs(trace.mean_rps - spec.arrival_rps) > 0.2 * spec.arrival_rps:
        log.warning("trace '%s' averages %.2f rps but the spec plans for %.2f rps; verification uses the trace as is",
                    trace.name, trace.mean_rps, spec.arrival_rps)
    search = _Search(request, trace, SimConfig(seed=seed, service=service, slo_ms=slo_ms), max_rounds, max_simulations)
    first = search.attempt(Knob.NONE, slo_ms, spec.max_utilization)
    assert first is not None  # attempt raises for the first round
    first_p99 = first[1].summary.p99_ms
    if first_p99 <= slo_ms:
        room = slo_ms / first_p99 if first_p99 > 0 else max_allowance
        failed = search.bisect((1.0, first[0]), max_allowance, first_probe=min(max_allowance, room))
        search.scan(failed, max_allowance)
    else:
        per_path = max(1, (max_rounds - 1) // 3)
        found = [search.tighten(knob, first, min(per_path, search.left))
                 for knob in (Knob.LATENCY_BUDGET, Knob.HEADROOM)]
        if found[0] is not None:
            ok_budget, ok_plan = found[0]
            failed = min(((r.latency_budget_ms, r.round) for r in search.rounds
                          if r.knob in (Knob.NONE, Knob.LATENCY_BUDGET) and not r.verified
                          and r.latency_budget_ms > ok_budget))
            search.bisect((ok_budget / slo_ms, ok_plan), failed[0] / slo_ms, search.plans[failed[1] - 1])
    moves: tuple[str, ...] = ()
    if search.verified and local_search:
        start = _best(spec.objective, search.verified)[0]
        moves = improve(request, start, search.probe, max_allowance).moves
    if search.verified:
        return _result(request, search, first, trace, seed, service, trace_generated, moves)
    rounds = search.rounds
    best = min(rounds, key=lambda r: r.simulated_p99_ms)
    tried_text = "; ".join(f"round {r.round} ({r.knob.value}): predicted {r.predicted_p99_ms:.1f} ms, simulated "
                           f"{r.simulated_p99_ms:.1f} ms, {r.cost_usd_per_hour:.3f} USD/h" for r in rounds)
    raise InfeasibleError(
        f"no plan verified on trace '{trace.name}' ({trace.requests} requests, {trace.mean_rps:.2f} rps mean) "
        f"against the SLO {slo_ms:g} ms after {len(rounds)} plan(s): {tried_text}. Closest: round {best.round}, "
        f"simulated p99 {best.simulated_p99_ms:.1f} ms, {best.simulated_p99_ms - slo_ms:.1f} ms over the SLO "
        f"({100 * best.slo_attainment:.2f}% of requests within it). To fix: raise the SLO, allow more replicas "
        "(max_replicas) or faster hardware/variants, raise the round limit, or check that the trace's rate "
        "matches the spec's arrival_rps.")


def _best(objective: Objective, verified: list[tuple[Plan, SimResult]]) -> tuple[Plan, SimResult]:
    """The best verified plan under the objective (the earliest among equals)."""
    best = verified[0]
    for pair in verified[1:]:
        if _better(objective, pair[0], best[0]):
            best = pair
    return best


def _result(request: PlanRequest, search: _Search, first: tuple[Plan, SimResult], trace: Trace, seed: int,
            service: ServiceModel, trace_generated: bool, moves: tuple[str, ...]) -> tuple[Plan, VerifyReport]:
    spec, slo_ms = request.spec, request.spec.slo_ms
    best_plan, best_result = _best(spec.objective, search.verified)
    planned_slo_ms = best_plan.slo_ms
    provenance = dict(best_plan.provenance)
    if best_plan.solver.status is SolveStatus.LOCAL_SEARCH:
        provenance["local_search"] = {"moves": list(moves), "simulations": search.local_simulations,
                                      "simulations_in_all": len(search.seen)}
    elif not math.isclose(planned_slo_ms, slo_ms, rel_tol=1e-12):
        provenance["planned_slo_ms"] = planned_slo_ms
    plan = replace(best_plan, slo_ms=slo_ms, provenance=provenance)
    # The band needs the per-request column: one more run of the chosen plan (same seed, same numbers).
    column = simulated(plan, trace, replace(search.config, keep_requests=True)).latency_ms
    band = p99_band_ms(column)
    by_stage = {s.stage: s for s in best_result.stages}
    stages = tuple(StageCheck(s.stage, s.predicted_latency_ms, by_stage[s.stage].p99_latency_ms, s.utilization,
                              by_stage[s.stage].utilization, by_stage[s.stage].mean_batch_size) for s in plan.stages)
    model_only, model_result = first
    summary = best_result.summary
    report = VerifyReport(
        verified=True, plan_sha256=plan_sha256(plan), slo_ms=slo_ms, trace=trace.name, trace_source=trace.source,
        trace_generated=trace_generated, trace_requests=trace.requests, trace_mean_rps=trace.mean_rps,
        spec_arrival_rps=spec.arrival_rps, spec_arrival_cv=spec.arrival_cv, seed=seed, service=service.value,
        predicted_p99_ms=plan.predicted_p99_ms, simulated_p99_ms=summary.p99_ms, simulated_p99_band_ms=band,
        model_only_cost_usd_per_hour=model_only.cost_usd_per_hour, model_only_accuracy=model_only.accuracy,
        model_only_simulated_p99_ms=model_result.summary.p99_ms,
        model_only_verified=model_result.summary.p99_ms <= slo_ms,
        cost_usd_per_hour=plan.cost_usd_per_hour, accuracy=plan.accuracy,
        cost_saved_usd_per_hour=model_only.cost_usd_per_hour - plan.cost_usd_per_hour,
        simulations=len(search.seen), max_simulations=search.max_simulations,
        local_search_simulations=search.local_simulations, local_search_moves=moves,
        rounds=tuple(search.rounds), stages=stages,
        p99_sample_note=sample_note_text(summary.requests, summary.over_slo),
        estimate_note=estimate_note_text(summary.requests, band, slo_ms))
    return plan, report
