"""Capacity for a stage's challenger (traffic split) and mirror (shadow copy), recorded in the plan.

The ILP plans each stage's champion at its share of the load (planner.estimate.candidates). Each route is then
sized on its own, from the same candidate options (the same latency model): a challenger answers
``percent`` of the stage's requests, so it must be no slower than the champion there (every path's
p99 bound then still holds); the cheapest such option is taken. A mirror receives a copy of all the
stage's items and its answers are dropped, so it is off the critical path: the cheapest option that
carries the full load under max_utilization, whatever its latency.
"""

from __future__ import annotations

from planner.estimate.candidates import build_candidates
from planner.errors import InfeasibleError
from planner.plan import Plan, RoutePlan


def _route_options(request, stage, variant: str, share: float):
    """The candidate options of ``variant`` for ``stage`` when it gets ``share`` of the requests (each
    with the stage's full fan-out: routing is per request)."""
    spec = request.spec
    routed = stage.model_copy(update={"variants": (variant,), "challenger": None, "mirror": None})
    derived = spec.model_copy(update={"stages": tuple(routed if s.name == stage.name else s for s in spec.stages)})
    candidates = build_candidates(derived, request.catalog, request.profiles, request.sources,
                                  arrival_rps=spec.arrival_rps * share)
    return candidates.of(stage.name).options


def _route(role: str, option, percent: int) -> RoutePlan:
    return RoutePlan(role=role, variant=option.variant, hardware=option.hardware, batch_size=option.batch_size,
                     batch_timeout_ms=option.batch_timeout_ms, replicas=option.replicas, percent=percent,
                     load_items_per_s=option.load_items_per_s, capacity_items_per_s=option.capacity_items_per_s, utilization=option.utilization,
                     predicted_latency_ms=option.latency_ms, accuracy=option.accuracy, usd_per_hour=option.usd_per_hour)


def with_routes(request, plan: Plan) -> Plan:
    """``plan`` with each stage's challenger and mirror sized (unchanged when the spec has none)."""
    spec = request.spec
    if not any(s.challenger or s.mirror for s in spec.stages):
        return plan
    stages = []
    for sp in plan.stages:
        stage = spec.stage(sp.stage)
        routes = []
        if stage.challenger:
            share = stage.challenger.percent / 100.0
            fits = [o for o in _route_options(request, stage, stage.challenger.variant, share)
                    if o.latency_ms <= sp.predicted_latency_ms]
            if not fits:
                raise InfeasibleError(
                    f"{request.sources.spec}: stage '{sp.stage}': no configuration of challenger variant "
                    f"'{stage.challenger.variant}' serves {stage.challenger.percent}% of the load within the "
                    f"champion's {sp.predicted_latency_ms:.1f} ms at this stage; pick a faster challenger, a "
                    "smaller percent, or raise the stage's max_replicas.")
            routes.append(_route("challenger", min(fits, key=lambda o: (o.usd_per_hour, o.latency_ms)),
                                 stage.challenger.percent))
        if stage.mirror:
            options = _route_options(request, stage, stage.mirror.variant, 1.0)
            if not options:
                raise InfeasibleError(
                    f"{request.sources.spec}: stage '{sp.stage}': no configuration of mirror variant "
                    f"'{stage.mirror.variant}' carries the stage's full load under max_utilization; raise "
                    "the stage's max_replicas or mirror a faster variant.")
            routes.append(_route("mirror", min(options, key=lambda o: (o.usd_per_hour, o.latency_ms)), 100))
        stages.append(sp if not routes else type(sp)(**{**sp.__dict__, "routes": tuple(routes)}))
    return type(plan)(**{**plan.__dict__, "stages": tuple(stages)})
