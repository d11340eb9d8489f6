"""Resource classes (planner.spec.ResourceClass) as the planner, simulator and tuner use them. Pure.

- :func:`expand_profiles`: a catalog entry with ``profile_as`` (a spot or serverless offer of a
  machine that was profiled under another name) is planned from that entry's profile rows.
- :func:`vm_hardware` / :func:`serverless_hardware`: which entries may carry a base, which bursts.
- :func:`with_resources`: a plan's stages carry their hardware's class terms
  (planner.plan.StageResource) and the plan its :class:`~planner.plan.PlanRisk` (:func:`plan_risk`),
  first-order estimates; ``pipeplan simulate`` measures the same events (planner.sim.classes).

Spot. A replica with ``lambda`` preemptions per hour and a replacement delay of ``D`` hours is
down a share ``q = lambda D / (1 + lambda D)`` of the time (alternating renewal: up for a mean
``1/lambda``, down for ``D``), so a stage of ``r`` replicas sees ``r lambda / (1 + lambda D)``
preemptions per hour. With replicas down independently, ``k`` are down with probability
``Binomial(r, q)``. While ``k`` are down the stage's utilisation is ``u r / (r - k)``; when that
reaches 1 the stage is *degraded*: a backlog grows at ``load - c (r - k) / r`` (``c`` the full
capacity, ``load = u c``) for the outage and drains at ``c - load`` once the replacements serve,
so an outage of length ``D`` makes requests miss for ``D + D (u - (r - k) / r) / (1 - u) =
D (k / r) / (1 - u)``. Other states are counted as met (their higher queueing is ignored):

    degraded_spot = sum_{k in K} C(r, k) q^k (1 - q)^(r - k),   K = {k : k = r or u r / (r - k) >= 1}
    miss_spot     = min(1, sum_{k in K} C(r, k) q^k (1 - q)^(r - k) (k / r) / (1 - u))

Serverless. A stage's ``n = min(replicas, max_concurrency)`` instances receive batches at
``lambda_b = load / m`` per second, ``m = min(b, 1 + load T)`` the mean batch (``T`` the batch
timeout). The queue gives a batch to the instance free longest (the kernel's tie-break), so an
instance's idle gap spans about ``n`` batch gaps, Erlang(n, lambda_b), and a batch is cold (the
instance idled longer than the keep-warm ``K``) with probability

    cold = P(Erlang(n, lambda_b) > K) = P(Poisson(lambda_b K) < n)

(``cold x lambda_b`` cold starts per second after each instance's first use). A cold batch's
requests count as missed when the cold start exceeds the plan's slack, ``SLO - predicted p99``:
``miss_serverless = cold`` then, else 0. Billed at the planned load: the stage's own cost, which the
planner prices that way (planner.pricing: ``3600 (usd_per_second u r + usd_per_request x load)``
USD/h, busy instance-seconds per second ``u r``).

Stages fail independently:

    expected attainment = 0.99 x prod over spot and serverless stages of (1 - miss)

(0.99: the plan's p99 is within the SLO, so without these events at least 99% meet it.)
"""

from __future__ import annotations

import math
from dataclasses import replace

from planner.plan import Plan, PlanRisk, StagePlan, StageResource, StageRisk
from planner.resource_class import ResourceClass
from planner.spec import Hardware, HardwareCatalog, PipelineSpec
from profiler.schema import ProfileTable

PLANNED_ATTAINMENT = 0.99  # a plan's p99 is within the SLO: at least this share meets it by the latency model


def expand_profiles(table: ProfileTable, catalog: HardwareCatalog) -> ProfileTable:
    """``table`` plus, for every entry with ``profile_as``, a copy of that entry's rows under its name.

    Unchanged (the same object) when no entry has ``profile_as``.
    """
    aliases = [(h.name, h.profile_as) for h in catalog.hardware if h.profile_as is not None]
    if not aliases:
        return table
    have = {r.hardware for r in table.rows}
    extra = tuple(replace(r, hardware=name) for name, source in aliases if name not in have
                  for r in table.rows if r.hardware == source)
    return ProfileTable(table.rows + extra, table.metadata)


def vm_hardware(spec: PipelineSpec, catalog: HardwareCatalog) -> tuple[str, ...]:
    """The spec's allowed hardware (all of the catalog if it lists none) that is a VM (on-demand or spot)."""
    allowed = spec.hardware or tuple(h.name for h in catalog.hardware)
    by_name = catalog.by_name()
    return tuple(n for n in allowed if n in by_name and by_name[n].resource_class.is_vm)


def serverless_hardware(catalog: HardwareCatalog) -> tuple[Hardware, ...]:
    """The catalog's serverless entries, in catalog order."""
    return tuple(h for h in catalog.hardware if h.resource_class is ResourceClass.SERVERLESS)


def stage_resource(hw: Hardware) -> StageResource | None:
    """The class terms a plan stage on ``hw`` carries (None: on demand)."""
    if hw.resource_class is ResourceClass.ON_DEMAND:
        return None
    if hw.resource_class is ResourceClass.SPOT:
        return StageResource(hw.resource_class, preemptions_per_hour=float(hw.preemptions_per_hour or 0.0),
                             replacement_s=float(hw.replacement_s or 0.0))
    return StageResource(hw.resource_class, cold_start_ms=float(hw.cold_start_ms or 0.0),
                         keep_warm_s=float(hw.keep_warm_s or 0.0), max_concurrency=hw.max_concurrency,
                         usd_per_second=float(hw.usd_per_second or 0.0),
                         usd_per_request=float(hw.usd_per_request or 0.0))


def with_resources(plan: Plan, catalog: HardwareCatalog) -> Plan:
    """``plan`` with each stage's class terms from ``catalog`` and the plan's :class:`PlanRisk` (None when
    every stage is on demand, so on-demand plans keep their bytes). A stage whose hardware is not in
    the catalog is on demand."""
    by_name = catalog.by_name()
    stages = tuple(replace(s, resource=stage_resource(by_name[s.hardware]) if s.hardware in by_name else None)
                   for s in plan.stages)
    planned = replace(plan, stages=stages)
    return replace(planned, risk=plan_risk(planned))


def _spot_risk(s: StagePlan, r: StageResource) -> StageRisk:
    lam = (r.preemptions_per_hour or 0.0) / 3600.0  # per replica-second
    lam_d = lam * (r.replacement_s or 0.0)
    q = lam_d / (1.0 + lam_d)
    n = s.replicas
    u = s.utilization
    down = [(k, math.comb(n, k) * q ** k * (1.0 - q) ** (n - k))
            for k in range(1, n + 1) if k == n or u * n / (n - k) >= 1.0]
    degraded = sum(p for _, p in down)
    miss = min(1.0, sum(p * k / n for k, p in down) / (1.0 - u)) if u < 1.0 else 1.0
    return StageRisk(s.stage, s.hardware, r.resource_class, n, q, degraded,
                     preemptions_per_hour=3600.0 * n * lam / (1.0 + lam_d), cold_share=0.0,
                     cold_starts_per_hour=0.0, miss_share=miss, billed_usd_per_hour=s.usd_per_hour)


def _poisson_below(x: float, n: int) -> float:
    """P(Poisson(x) < n) = sum_{j < n} e^-x x^j / j!, each term in log space (no underflow at large x)."""
    if x <= 0:
        return 1.0
    log_x = math.log(x)
    return min(1.0, math.fsum(math.exp(j * log_x - x - math.lgamma(j + 1)) for j in range(n)))


def _serverless_risk(s: StagePlan, r: StageResource, slack_ms: float) -> StageRisk:
    items_per_s = s.load_items_per_s
    mean_batch = min(float(s.batch_size), 1.0 + items_per_s * s.batch_timeout_ms / 1000.0)
    batches_per_s = items_per_s / mean_batch
    instances = min(s.replicas, r.max_concurrency or s.replicas)
    cold = _poisson_below(batches_per_s * (r.keep_warm_s or 0.0), instances) if batches_per_s > 0 else 1.0
    cold_ms = r.cold_start_ms or 0.0
    miss = cold if cold_ms > 0 and cold_ms > slack_ms else 0.0
    return StageRisk(s.stage, s.hardware, r.resource_class, s.replicas, 0.0, 0.0, preemptions_per_hour=0.0,
                     cold_share=cold if cold_ms > 0 else 0.0,
                     cold_starts_per_hour=3600.0 * batches_per_s * cold if cold_ms > 0 else 0.0,
                     miss_share=miss, billed_usd_per_hour=s.usd_per_hour)


def plan_risk(plan: Plan) -> PlanRisk | None:
    """The plan's expected SLO attainment under its stages' classes (formulas in the module); None when
    every stage is on demand."""
    slack_ms = plan.slo_ms - plan.predicted_p99_ms
    out = []
    for s in plan.stages:
        if s.resource is None:
            continue
        if s.resource.resource_class is ResourceClass.SPOT:
            out.append(_spot_risk(s, s.resource))
        else:
            out.append(_serverless_risk(s, s.resource, slack_ms))
    if not out:
        return None
    factor = math.prod(1.0 - r.miss_share for r in out)
    return PlanRisk(tuple(out), factor, PLANNED_ATTAINMENT * factor)
