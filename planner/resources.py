"""Resource classes (planner.spec.ResourceClass) as the planner, simulator and tuner use them. Pure.

- :func:`expand_profiles`: a catalog entry with ``profile_as`` (a spot or serverless offer of a
  machine that was profiled under another name) is planned from that entry's profile rows.
- :func:`vm_hardware` / :func:`serverless_hardware`: which entries may carry a base, which bursts.
- :func:`preemption_risk`: the expected SLO attainment of a plan whose stages run on spot
  replicas, by a simple formula (the simulator measures it: ``pipeplan simulate --preemptions``).

The formula. A spot replica with ``lambda`` preemptions per hour and a replacement delay of ``D``
hours is down a share ``q = lambda D / (1 + lambda D)`` of the time (alternating renewal: up for
a mean ``1/lambda``, down for ``D``). With ``r`` replicas down independently, ``k`` are down with
probability ``Binomial(r, q)``. While ``k`` are down the stage's utilisation is ``u r / (r - k)``;
when that reaches 1 the queue grows and the requests of that time are counted as missed, otherwise
as met (the backlog built and the partial misses are ignored: a first-order estimate). Stages fail
independently:

    expected attainment = attainment without preemptions x prod over spot stages of
                          (1 - sum_{k : u r / (r - k) >= 1} C(r, k) q^k (1 - q)^(r - k))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from planner.plan import Plan
from planner.spec import Hardware, HardwareCatalog, PipelineSpec, ResourceClass
from profiler.schema import ProfileTable


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


@dataclass(frozen=True)
class StageRisk:
    stage: str
    hardware: str
    replicas: int
    down_share: float  # q: the share of time one replica is down
    degraded_share: float  # the share of time too few replicas serve (utilisation >= 1)


@dataclass(frozen=True)
class PreemptionRisk:
    """What a plan risks on spot replicas (see the module's formula)."""

    stages: tuple[StageRisk, ...]  # spot stages only

    @property
    def attainment_factor(self) -> float:
        """The expected attainment under preemption divided by the attainment without."""
        return math.prod(1.0 - s.degraded_share for s in self.stages)


def preemption_risk(plan: Plan, catalog: HardwareCatalog) -> PreemptionRisk:
    """Per spot stage of ``plan``: the share of time it is down a replica and degraded (formula in the module)."""
    by_name = catalog.by_name()
    out = []
    for s in plan.stages:
        hw = by_name.get(s.hardware)
        if hw is None or hw.resource_class is not ResourceClass.SPOT:
            continue
        lam_d = (hw.preemptions_per_hour or 0.0) * (hw.replacement_s or 0.0) / 3600.0
        q = lam_d / (1.0 + lam_d)
        r = s.replicas
        degraded = sum(math.comb(r, k) * q ** k * (1.0 - q) ** (r - k)
                       for k in range(1, r + 1) if k == r or s.utilization * r / (r - k) >= 1.0)
        out.append(StageRisk(s.stage, s.hardware, r, q, degraded))
    return PreemptionRisk(tuple(out))
