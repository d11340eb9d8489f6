"""The ``burst`` policy: a base on VMs sized by the predictive policy, bursts on serverless instances.

Spock's split (VMs for the base, fast-starting capacity for bursts), per request rather than per
interval: the VM base is the predictive policy's plan (planner.tuner.policies.PredictivePolicy,
sized for the forecast peak, on the spec's VM hardware), and every stage also gets a pool of
serverless instances (planner.tuner.deployment.Deployment.add_pool) that cost nothing idle. The
stage's queue spills the head of the queue to a serverless instance when it would wait longer
than ``spill_ms`` for a VM to be free (planner.sim.kernel); a cold instance pays its cold start; as the VMs
the forecast asked for come up, they take the load back, and the pool goes idle (unbilled).

The VM base is sized for a burst-insensitive rate (``BurstSettings.base``):

- ``break-even`` (the default): the ``q``-quantile of the per-second arrival counts over the last
  ``base_lookback_s`` seconds, with ``q = 1 - c_vm / c_fn`` (:func:`break_even_quantile`). The last
  unit of base capacity at level ``L`` is busy for the share ``P(rate > L)`` of its life; below that
  the load spills to functions. A unit of VM capacity costs ``c_vm`` per hour whether busy or not;
  the same capacity on functions costs ``c_fn`` per busy hour. The unit pays for itself when
  ``P(rate > L) * c_fn >= c_vm``, so the cheapest base is the quantile at which
  ``P(rate > L) = c_vm / c_fn`` (the newsvendor's critical fractile). With
  ``c_vm = sum_s usd_per_hour_s * fanout_s / (max_utilization * capacity_items_per_s_s)`` of the
  first interval's VM plan and ``c_fn = sum_s 3600 * fanout_s * (usd_per_second * service_s +
  usd_per_request)`` of the pool's plan (batch 1, p50 service), both USD/h per request/s.
  A quantile of per-second counts barely moves with a one- or two-second burst (the Azure code
  trace's 268-request spikes are a few seconds of the 30); no trend term is used. The lookback
  (default 30 s) trades following a sustained rise (shorter: the Twitter windows) against
  following bursts (longer: Azure code); 30 s met the target on all three burst traces, 20, 60
  and 120 s on two or one (docs/benchmarks.md, "Bursts with real start-up"). The base is planned
  for the spec's ``arrival_cv``, not the measured CV (``base_measure_cv``): the pool takes the
  burstiness the CV measures (with it, the Azure code trace cost 1.40x the oracle, without 1.25x).
- ``forecast``: the predictive policy's forecaster at ``base_quantile`` of the recent interval
  rates measured over ``base_peak_window_s`` (the earlier default; its trend term follows bursts).

The predictive policy's backlog term (``base_backlog``) is off by default: the functions serve the
overflow at once, so the arrivals beyond the VMs' capacity are no backlog, and counting them grew
the base for every burst. (With the ``forecast`` base it helped: without it the pool took twice the
work at 2.5x a VM's price. With the break-even base, leaving it out cut the cost from 1.39x to
1.28x / 1.58x to 1.41x / 1.39x to 1.23x the oracle: docs/benchmarks.md, "Bursts with real start-up".)

The pool's configuration per stage is the optimal plan on the catalog's serverless hardware
(``batch_sizes: [1]``: one request per invocation, as a function runs it) at the first interval's
peak; the planner prices functions per use (planner.pricing), so that plan runs the variants with
the least busy time per item that keep the SLO and the spec's accuracy floor, at any rate. Its size
is ``min(slots, max_concurrency)`` instances per stage.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from planner.errors import SpecError
from planner.plan import Plan
from planner.resources import serverless_hardware
from planner.tuner.planbook import PlanBook
from planner.tuner.policies import Observation, PolicyInputs, PredictivePolicy
from planner.tuner.settings import BaseSizing, PolicyKind, PolicySettings


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


def break_even_quantile(vm: Plan, pool: Plan, catalog, max_utilization: float) -> float:
    """``1 - c_vm / c_fn`` clipped to [0, 1] (see the module): the base's quantile of per-second rates."""
    hardware = {h.name: h for h in catalog.hardware}
    c_vm = sum(s.usd_per_hour * s.fanout / max(max_utilization * s.capacity_items_per_s, 1e-12) for s in vm.stages)
    c_fn = 0.0
    for s in pool.stages:
        h = hardware[s.hardware]
        service_s = s.service_ms_by_batch.p50_ms[0] / 1000.0
        c_fn += 3600.0 * s.fanout * ((h.usd_per_second or 0.0) * service_s + (h.usd_per_request or 0.0))
    return min(1.0, max(0.0, 1.0 - c_vm / c_fn)) if c_fn > 0 else 1.0


class BreakEvenBase(PredictivePolicy):
    """The predictive policy sized for a quantile of the recent per-second rates (see the module)."""

    def __init__(self, book: PlanBook, initial: Plan, settings: PolicySettings, quantile: float, lookback_s: int,
                 track_backlog: bool):
        super().__init__(book, initial, settings, track_backlog=track_backlog)
        self.quantile, self.lookback_s = quantile, lookback_s
        self.seconds: list[np.ndarray] = []

    def tell(self, observation: Observation) -> None:
        super().tell(observation)
        self.seconds.append(observation.counts_per_s())
        while sum(c.size for c in self.seconds[1:]) >= self.lookback_s:
            self.seconds.pop(0)

    def forecast_rate_rps(self, horizon: float) -> float:
        counts = np.concatenate(self.seconds)[-self.lookback_s:]
        return float(np.quantile(counts, self.quantile))


class BurstPolicy:
    """The predictive policy's VM base plus a serverless pool per stage (see the module)."""

    name = PolicyKind.BURST.value
    instant = False

    def __init__(self, inputs: PolicyInputs):
        settings = inputs.settings
        b = settings.burst
        request = inputs.book.request
        plan = serverless_book(inputs.book).plan(float(inputs.peaks_req_per_s[0]), inputs.interval_cvs[0])
        initial = inputs.initial()
        if b.base is BaseSizing.BREAK_EVEN:
            q = b.break_even_quantile
            if q is None:
                q = break_even_quantile(initial, plan, request.catalog, request.spec.max_utilization)
            self.base_quantile = q
            base_settings = replace(settings, measure_cv=settings.measure_cv and b.base_measure_cv)
            self.base: PredictivePolicy = BreakEvenBase(inputs.book, initial, base_settings, q, b.base_lookback_s,
                                                        b.base_backlog)
        else:
            forecast = replace(settings.predictive.forecast, quantile=b.base_quantile)
            base_settings = replace(settings, peak_window_s=min(b.base_peak_window_s, settings.interval_s),
                                    predictive=replace(settings.predictive, forecast=forecast))
            self.base_quantile = b.base_quantile
            self.base = PredictivePolicy(inputs.book, initial, base_settings, track_backlog=b.base_backlog)
        limits = {h.name: h.max_concurrency or 1 for h in serverless_hardware(request.catalog)}
        slots = {s.stage: min(b.slots, limits[s.hardware]) for s in plan.stages}
        self.pool = BurstPool(plan, slots, b.spill_share_of_slo * request.spec.slo_ms)

    def tell(self, observation: Observation) -> None:
        self.base.tell(observation)

    def ask(self) -> Plan:
        return self.base.ask()
