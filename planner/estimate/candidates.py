"""Per-stage options with their cost, capacity and latency: the estimation step before the ILP.

For every stage this enumerates variant x hardware x batch size x batch timeout (0, i.e. take
what is queued, and the spec's fill-time quantiles), and for each the replica counts worth
considering: from the fewest whose full-batch capacity carries the load under ``max_utilization``
(started there, never counted up to) to ``max_replicas`` or the count beyond which another replica
no longer shortens the p99 wait. A stage after others is estimated for an assumed request scv
(planner.estimate.flow); with none given, for the largest its parents' kept options can emit. Options that another
option of the same stage beats on every count (cost, latency, accuracy and, where the hardware is
capped, units) are dropped: no optimal plan needs them, and the ILP becomes a small
multiple-choice problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping, NamedTuple

from planner.estimate import flow
from planner.estimate import latency as lat
from planner.estimate.paths import path_latency_ms, stage_tail_weights
from planner.errors import ProfileError, SpecError
from planner.spec import Hardware, HardwareCatalog, PipelineSpec, StageSpec
from profiler.schema import ProfileRow, ProfileTable

# A replica count whose p99 wait is already 0 cannot be improved by more replicas; this caps the
# scan when the wait never quite reaches 0 (it always does once Erlang C < 1 - q).
_MAX_EXTRA_REPLICAS = 64


@dataclass(frozen=True)
class Sources:
    """File names for messages (the core does no I/O; it only names where data came from)."""

    spec: str = "the pipeline spec"
    profiles: str = "the profile table"
    catalog: str = "the hardware catalog"


@dataclass(frozen=True)
class Option:
    """One way to run a stage: everything the ILP and the plan need, with units in the names."""

    stage: str
    model: str
    variant: str
    hardware: str
    batch_size: int
    batch_timeout_ms: float
    replicas: int
    accuracy: float
    usd_per_hour: float
    capacity_items_per_s: float
    load_items_per_s: float
    utilization: float
    latency: lat.StageLatency
    latency_ms: float  # = latency.total_ms, stored: the pruning and the ILP read it often
    mean_batch: float = 1.0
    request_scv_in: float = 1.0  # the arrival scv this option was estimated for
    request_scv_out: float = 1.0  # the scv of the request stream it passes on
    mean_ms: float = math.inf  # mean stage latency (an upper bound), <= latency_ms
    path_latency_ms: float = math.inf  # l_o = mean + w_s (p99 - mean): its term in a path sum (planner.estimate.paths)


@dataclass(frozen=True)
class StageCandidates:
    """The options of one stage, plus what the infeasibility diagnosis needs."""

    stage: str
    options: tuple[Option, ...]
    load_items_per_s: float
    best_latency_ms: float  # fastest option that carries the load (before the SLO and unit filters)
    max_capacity_items_per_s: float  # most items/s any option can carry within max_replicas
    best_path_latency_ms: float = math.inf  # least path term l_o of those (planner.estimate.paths)
    request_scv_in: float = 1.0  # the arrival scv the options were estimated for


@dataclass(frozen=True)
class CandidateSet:
    stages: tuple[StageCandidates, ...]

    def of(self, stage: str) -> StageCandidates:
        return next(s for s in self.stages if s.stage == stage)


def stage_rows(
    spec: PipelineSpec,
    stage: StageSpec,
    catalog: HardwareCatalog,
    profiles: ProfileTable,
    sources: Sources,
) -> dict[tuple[str, str], dict[int, ProfileRow]]:
    """Rows of this stage's model, keyed by (variant, hardware) then batch size; validates coverage."""
    known_hw = catalog.by_name()
    allowed_hw = stage.hardware or spec.hardware or tuple(known_hw)
    for name in allowed_hw:
        if name not in known_hw:
            raise SpecError(
                f"{sources.spec}: stage '{stage.name}': hardware '{name}' is not in {sources.catalog} "
                f"(it has {sorted(known_hw)}); add it to the catalog or remove it from the spec."
            )
    model_rows = [r for r in profiles.rows if r.model == stage.model]
    if not model_rows:
        raise ProfileError(
            f"{sources.spec}: stage '{stage.name}': model '{stage.model}' has no rows in {sources.profiles} "
            f"(models there: {sorted(profiles.models())}); fix the model name or profile it."
        )
    for row in model_rows:
        if row.hardware not in known_hw:
            raise ProfileError(
                f"{sources.profiles}: rows of model '{row.model}' variant '{row.variant}' name hardware "
                f"'{row.hardware}', which is not in {sources.catalog} (it has {sorted(known_hw)}); "
                "add it to the catalog or rename it in the profile."
            )
    profiled_variants = sorted({r.variant for r in model_rows})
    variants = stage.variants or tuple(profiled_variants)
    for variant in variants:
        if variant not in profiled_variants:
            raise ProfileError(
                f"{sources.spec}: stage '{stage.name}': variant '{variant}' of model '{stage.model}' has no "
                f"rows in {sources.profiles} (profiled variants: {profiled_variants}); fix the name or "
                "remove it from the stage's variants."
            )
    batches = stage.batch_sizes or spec.batch_sizes
    grouped: dict[tuple[str, str], dict[int, ProfileRow]] = {}
    for row in model_rows:
        if row.variant in variants and row.hardware in allowed_hw:
            grouped.setdefault((row.variant, row.hardware), {})[row.batch_size] = row
    if not grouped:
        raise ProfileError(
            f"{sources.spec}: stage '{stage.name}': model '{stage.model}' has no profile rows on the allowed "
            f"hardware {list(allowed_hw)}; profile it there or allow the hardware it was profiled on."
        )
    for (variant, hardware), by_batch in sorted(grouped.items()):
        # A sweep that stopped early (--early-stop, --quick) lacks only sizes above its largest: those
        # are simply not options. A gap below it, or no allowed size at all, is a mistake.
        missing = [b for b in batches if b not in by_batch]
        gaps = [b for b in missing if b < max(by_batch)]
        if gaps or len(missing) == len(batches):
            raise ProfileError(
                f"{sources.profiles}: model '{stage.model}' variant '{variant}' on '{hardware}' has no row for "
                f"batch_size {gaps or missing} (stage '{stage.name}' allows batch sizes {list(batches)}); profile those "
                "batch sizes or remove them from the spec's batch_sizes."
            )
    return grouped


def timeouts_for(batch_size: int, load_items_per_s: float, quantiles: tuple[float, ...]) -> tuple[float, ...]:
    """Candidate batch timeouts (ms) at this load: 0 (greedy) and quantiles of the batch fill time, to 1 us."""
    if batch_size <= 1:
        return (0.0,)
    return tuple(sorted({0.0} | {round(lat.fill_time_ms(batch_size, load_items_per_s / 1000.0, q), 3) for q in quantiles}))


class _Raw(NamedTuple):
    """A candidate before pruning: cheap to create, turned into an Option only if it survives."""

    usd_per_hour: float
    latency_ms: float
    accuracy: float
    variant: str
    hardware: str
    batch_size: int
    batch_timeout_ms: float
    replicas: int
    estimate: lat.StageEstimate
    capacity_items_per_s: float
    path_latency_ms: float


def _replica_options(
    spec: PipelineSpec,
    stage: StageSpec,
    hw: Hardware,
    row: ProfileRow,
    service: lat.BatchService,
    timeout_ms: float,
    load_items_per_s: float,
    item_scv: float,
    max_replicas: int,
    max_units: int | None,
    tail_weight: float,
) -> tuple[list[_Raw], float, float]:
    """Replica counts within the SLO and the unit cap, and the lowest p99 and path term seen ignoring both.

    The scan starts at the first count whose full-batch capacity carries the load (a huge load or
    a tiny throughput gives a first count beyond max_replicas: no options, no loop)."""
    first = lat.first_useful_replicas(service, load_items_per_s, spec.max_utilization)
    if not first <= max_replicas:
        return [], math.inf, math.inf
    first = int(first)
    last = min(max_replicas, first + _MAX_EXTRA_REPLICAS)
    queue = lat.StageQueue(service, load_items_per_s, timeout_ms, item_scv, stage.fanout, overhead_ms=spec.engine_overhead_ms)
    raws: list[_Raw] = []
    best_ms = best_path_ms = math.inf
    per_replica_items_per_s = 1000.0 * row.batch_size / service.mean_ms[-1]
    for est in queue.scan(first, last):
        total_ms = est.latency.total_ms
        best_ms = min(best_ms, total_ms)
        path_ms = path_latency_ms(est.mean_ms, total_ms, tail_weight)
        best_path_ms = min(best_path_ms, path_ms)
        if total_ms <= spec.slo_ms and (max_units is None or est.replicas <= max_units):
            raws.append(_Raw(est.replicas * hw.usd_per_hour, total_ms, row.accuracy, row.variant, hw.name,
                             row.batch_size, timeout_ms, est.replicas, est, est.replicas * per_replica_items_per_s,
                             path_ms))
        if est.latency.wait_ms == 0.0 and est.latency.fill_ms <= timeout_ms:
            break
    return raws, best_ms, best_path_ms


def _prune(raws: list[_Raw], capped: set[str], feeds_others: bool) -> list[_Raw]:
    """Drop options that another option beats or ties on cost, path latency (the only latency the
    ILP reads: every kept option's p99 is within the SLO), accuracy, output scv (only when a later
    stage reads it) and, where the hardware is capped, units."""
    if not feeds_others:
        raws = [o._replace(estimate=replace(o.estimate, departure_scv=0.0)) for o in raws]
    ordered = sorted(raws, key=lambda o: (o.usd_per_hour, o.path_latency_ms, -o.accuracy, o.estimate.departure_scv,
                                          o.latency_ms) + o[3:8])
    survivors: list[_Raw] = []
    for o in ordered:
        group = o.hardware if o.hardware in capped else "*"
        if not any(
            (s.hardware if s.hardware in capped else "*") == group
            and s.usd_per_hour <= o.usd_per_hour
            and s.path_latency_ms <= o.path_latency_ms
            and s.accuracy >= o.accuracy
            and s.estimate.departure_scv <= o.estimate.departure_scv
            for s in survivors
        ):
            survivors.append(o)
    return survivors


def _option(stage: StageSpec, load_items_per_s: float, r_in: float, o: _Raw) -> Option:
    return Option(
        stage=stage.name, model=stage.model, variant=o.variant, hardware=o.hardware,
        batch_size=o.batch_size, batch_timeout_ms=o.batch_timeout_ms, replicas=o.replicas,
        accuracy=o.accuracy, usd_per_hour=o.usd_per_hour, capacity_items_per_s=o.capacity_items_per_s,
        load_items_per_s=load_items_per_s, utilization=o.estimate.utilization, latency=o.estimate.latency, latency_ms=o.latency_ms,
        mean_batch=o.estimate.mean_batch, request_scv_in=r_in,
        request_scv_out=flow.request_scv_out(r_in, o.estimate.departure_scv, stage.fanout),
        mean_ms=o.estimate.mean_ms, path_latency_ms=o.path_latency_ms,
    )


def build_candidates(
    spec: PipelineSpec,
    catalog: HardwareCatalog,
    profiles: ProfileTable,
    sources: Sources = Sources(),
    arrival_rps: float | None = None,
    unit_caps: bool = True,
    request_scv: Mapping[str, float] | None = None,
) -> CandidateSet:
    """Every stage's non-dominated options at ``arrival_rps`` (default: the spec's).

    ``request_scv`` gives the arrival scv each non-source stage is estimated for; without it (or
    for a stage it does not name) the largest output scv of the parents' kept options is used, a
    bound whatever they choose. ``unit_caps=False`` ignores the hardware's ``max_units`` (the
    diagnosis uses it to tell whether the unit limits are what makes a problem infeasible).
    """
    rate_rps = spec.arrival_rps if arrival_rps is None else arrival_rps
    if not (math.isfinite(rate_rps) and rate_rps > 0):
        raise SpecError(f"{sources.spec}: arrival_rps must be a positive finite number, found {rate_rps}.")
    hardware = catalog.by_name()
    capped = {h.name for h in catalog.hardware if h.max_units is not None} if unit_caps else set()
    built: dict[str, StageCandidates] = {}
    parents = {p for s in spec.stages for p in s.after}
    weights = stage_tail_weights(spec)
    for name in spec.topological_order():
        stage = spec.stage(name)
        grouped = stage_rows(spec, stage, catalog, profiles, sources)
        load_items_per_s = rate_rps * stage.fanout * stage.champion_share  # a challenger takes its share
        if stage.after and request_scv is not None and name in request_scv:
            r_in = request_scv[name]
        else:
            r_in = max((max((o.request_scv_out for o in built[p].options), default=built[p].request_scv_in)
                        for p in stage.after), default=flow.source_scv(spec))
        v = flow.item_scv(r_in, stage.fanout)
        batches = stage.batch_sizes or spec.batch_sizes
        max_replicas = stage.max_replicas or spec.max_replicas
        raws: list[_Raw] = []
        max_capacity = 0.0
        best_latency = best_path = math.inf
        for (variant, hw_name), by_batch in sorted(grouped.items()):
            hw = hardware[hw_name]
            for batch in batches:
                row = by_batch.get(batch)
                if row is None:  # above where this variant's sweep stopped
                    continue
                service = flow.batch_service(by_batch, batches, batch)
                units = min(max_replicas, hw.max_units or max_replicas)
                max_capacity = max(max_capacity, units * 1000.0 * batch / service.mean_ms[-1])
                if not (math.isfinite(load_items_per_s) and load_items_per_s > 0):
                    continue
                for timeout_ms in timeouts_for(batch, load_items_per_s, spec.batch_timeout_quantiles):
                    # The diagnosis wants the fastest option even beyond the hardware's unit cap,
                    # to tell "the SLO binds" from "the unit limits bind"; the ILP gets only
                    # options within both.
                    kept, fastest_ms, fastest_path_ms = _replica_options(spec, stage, hw, row, service, timeout_ms, load_items_per_s, v,
                                                        max_replicas, hw.max_units if unit_caps else None,
                                                        weights[name])
                    raws.extend(kept)
                    best_latency = min(best_latency, fastest_ms)
                    best_path = min(best_path, fastest_path_ms)
        built[name] = StageCandidates(
            stage=stage.name,
            options=tuple(_option(stage, load_items_per_s, r_in, o) for o in _prune(raws, capped, name in parents)),
            load_items_per_s=load_items_per_s,
            best_latency_ms=best_latency,
            best_path_latency_ms=best_path,
            max_capacity_items_per_s=max_capacity * spec.max_utilization,
            request_scv_in=r_in,
        )
    return CandidateSet(tuple(built[s.name] for s in spec.stages))
