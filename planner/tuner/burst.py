"""The ``burst`` policy: a base on VMs sized by the predictive policy, bursts on serverless instances.

Spock's split (VMs for the base, fast-starting capacity for bursts), per request rather than per
interval: the VM base is the predictive policy's plan (planner.tuner.policies.PredictivePolicy,
sized for the forecast peak, on the spec's VM hardware), and every stage also gets a pool of
serverless instances (planner.tuner.deployment.Deployment.add_pool) that cost nothing idle. The
stage's queue spills the head of the queue to a serverless instance when it would wait longer
than ``spill_ms`` for a VM (planner.sim.kernel); a cold instance pays its cold start; as the VMs
the forecast asked for come up, they take the load back, and the pool goes idle (unbilled).

The base is sized lower than the predictive policy's own: for the median (``base_quantile``) of
the recent interval rates measured over whole intervals (``base_peak_window_s``), not for their
90% quantile of 5 s peaks; what is above goes to the pool. (Without the drain term the pool took
twice the work at 2.5x a VM's price: docs/benchmarks.md, "Bursts with real start-up".)

The pool's configuration per stage is the optimal plan on the catalog's serverless hardware
(``batch_sizes: [1]``: one request per invocation, as a function runs it) at the first interval's
peak; its size is ``min(slots, max_concurrency)`` instances per stage.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from planner.errors import SpecError
from planner.plan import Plan
from planner.resources import serverless_hardware
from planner.tuner.planbook import PlanBook
from planner.tuner.policies import Observation, PolicyInputs, PolicyKind, PredictivePolicy


@dataclass(frozen=True)
class BurstPool:
    """Serverless instances a stage keeps for bursts: the configuration (a plan), slots per stage, the spill wait."""

    plan: Plan
    slots: dict[str, int]
    spill_ms: float


def serverless_book(book: PlanBook) -> PlanBook:
    """A plan cache over the catalog's serverless hardware only, one request per invocation."""
    request = book.request
    names = tuple(h.name for h in serverless_hardware(request.catalog))
    if not names:
        raise SpecError("policy 'burst' needs a serverless entry in the hardware catalog (class: serverless; "
                        "see docs/formats.md, 'Resource classes'); add one or choose another policy.")
    stages = tuple(st.model_copy(update={"hardware": None, "batch_sizes": (1,)}) for st in request.spec.stages)
    spec = request.spec.model_copy(update={"hardware": names, "stages": stages, "batch_sizes": (1,)})
    return PlanBook(replace(request, spec=spec), step=book.step, base_rps=book.base_rps, cv_step=book.cv_step)


class BurstPolicy:
    """The predictive policy's VM base plus a serverless pool per stage (see the module)."""

    name = PolicyKind.BURST.value
    instant = False

    def __init__(self, inputs: PolicyInputs):
        settings = inputs.settings
        b = settings.burst
        forecast = replace(settings.predictive.forecast, quantile=b.base_quantile)
        base_settings = replace(settings, peak_window_s=min(b.base_peak_window_s, settings.interval_s),
                                predictive=replace(settings.predictive, forecast=forecast))
        self.base = PredictivePolicy(inputs.book, inputs.initial(), base_settings)
        plan = serverless_book(inputs.book).plan(float(inputs.peaks_req_per_s[0]), inputs.interval_cvs[0])
        limits = {h.name: h.max_concurrency or 1 for h in serverless_hardware(inputs.book.request.catalog)}
        slots = {s.stage: min(settings.burst.slots, limits[s.hardware]) for s in plan.stages}
        spill_ms = settings.burst.spill_share_of_slo * inputs.book.request.spec.slo_ms
        self.pool = BurstPool(plan, slots, spill_ms)

    def tell(self, observation: Observation) -> None:
        self.base.tell(observation)

    def ask(self) -> Plan:
        return self.base.ask()
