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

The latency model runs on one numpy grid per stage (planner.estimate.grid: every configuration
and replica count at once, bit for bit the scalar ``latency.StageQueue``'s numbers), the
pruning in blocks; Option objects are made for the survivors only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Mapping

import numpy as np

from planner.estimate import flow, grid
from planner.estimate import latency as lat
from planner.estimate.paths import stage_tail_weights
from planner.errors import ProfileError, SpecError
from planner.pricing import price_terms, stage_usd_per_hour
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
    by_model: Mapping[str, list[ProfileRow]] | None = None,
) -> dict[tuple[str, str], dict[int, ProfileRow]]:
    """Rows of this stage's model, keyed by (variant, hardware) then batch size; validates coverage.

    ``by_model`` (the table's rows grouped by model, as ``rows_by_model`` gives them) saves a pass
    over the whole table per stage."""
    known_hw = catalog.by_name()
    allowed_hw = stage.hardware or spec.hardware or tuple(known_hw)
    for name in allowed_hw:
        if name not in known_hw:
            raise SpecError(
                f"{sources.spec}: stage '{stage.name}': hardware '{name}' is not in {sources.catalog} "
                f"(it has {sorted(known_hw)}); add it to the catalog or remove it from the spec."
            )
    model_rows = by_model.get(stage.model, []) if by_model is not None else [
        r for r in profiles.rows if r.model == stage.model]
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


def rows_by_model(profiles: ProfileTable) -> dict[str, list[ProfileRow]]:
    """The table's rows grouped by model, in table order."""
    grouped: dict[str, list[ProfileRow]] = {}
    for row in profiles.rows:
        grouped.setdefault(row.model, []).append(row)
    return grouped


@lru_cache(maxsize=65536)
def timeouts_for(batch_size: int, load_items_per_s: float, quantiles: tuple[float, ...]) -> tuple[float, ...]:
    """Candidate batch timeouts (ms) at this load: 0 (greedy) and quantiles of the batch fill time, to 1 us."""
    if batch_size <= 1:
        return (0.0,)
    return tuple(sorted({0.0} | {round(lat.fill_time_ms(batch_size, load_items_per_s / 1000.0, q), 3) for q in quantiles}))


@dataclass(frozen=True)
class _Sequences:
    """One stage's (variant, hardware, batch, timeout) configurations, one entry per configuration;
    each is scanned over replica counts first..last (planner.estimate.grid evaluates them)."""

    group: np.ndarray  # index into the stage's (variant, hardware) tables
    batch: np.ndarray
    timeout_ms: np.ndarray
    m_fill: np.ndarray
    first: np.ndarray
    last: np.ndarray
    units_cap: np.ndarray  # replicas allowed by the hardware's max_units (max_replicas when uncapped or ignored)
    usd_per_hour: np.ndarray  # of one replica (planner.pricing.PriceTerms: 0 on serverless)
    usd_per_busy_s: np.ndarray  # serverless: one instance busy a second (0 on a VM)
    usd_per_item: np.ndarray  # serverless: one item served (0 on a VM)
    per_replica_items_per_s: np.ndarray  # full-batch capacity of one replica
    accuracy: np.ndarray
    rows: tuple[ProfileRow, ...]


@lru_cache(maxsize=4096)
def _service_tables(rows: tuple[ProfileRow, ...], allowed: tuple[int, ...]) -> lat.BatchService:
    """flow.batch_service of one (variant, hardware) at its largest batch size, cached: a tuner or a
    frontier re-estimates the same profile rows many times."""
    return flow.batch_service({r.batch_size: r for r in rows}, allowed, max(r.batch_size for r in rows))


@dataclass(frozen=True)
class _Scanned:
    """The rows each configuration's scan visited: which configuration, its replica count, the model's terms."""

    seq: np.ndarray
    replicas: np.ndarray
    est: grid.Rows


# The scan of one configuration stops at the first replica count whose p99 wait is 0 and whose fill
# is the timeout; most stop within a few counts, so the grid evaluates counts in chunks, this many
# first, then twice as many for the configurations still going.
_FIRST_CHUNK = 4


def _scan(tables: grid.Tables, seqs: _Sequences, lam: float, v: float, tail: float, z: float,
          overhead_ms: float, fanout: float) -> _Scanned:
    """Every replica count each configuration's scan visits (as ``StageQueue.scan`` in
    the scalar model: first..last, up to and including the first count with no wait and
    fill <= tau), evaluated in chunks over all configurations at once."""
    start = seqs.first.copy()
    pending = np.flatnonzero(start <= seqs.last)
    chunk = _FIRST_CHUNK
    seqs_seen, replicas_seen, estimates = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], []
    while pending.size:
        counts = np.minimum(chunk, seqs.last[pending] - start[pending] + 1)
        offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
        seq = np.repeat(pending, counts)
        pos = np.arange(seq.size) - np.repeat(offsets, counts)
        replicas = start[seq] + pos
        est = grid.evaluate(tables, seqs.group[seq], seqs.batch[seq], replicas, seqs.timeout_ms[seq],
                            seqs.m_fill[seq], lam, v, tail, z, overhead_ms, fanout)
        stops = (est.wait_ms == 0.0) & (est.fill_ms <= seqs.timeout_ms[seq])
        first_stop = np.minimum.reduceat(np.where(stops, pos, seq.size), offsets)
        visited = pos <= np.repeat(first_stop, counts)
        seqs_seen.append(seq[visited])
        replicas_seen.append(replicas[visited])
        estimates.append(est.take(visited))
        start[pending] += counts
        pending = pending[(first_stop >= seq.size) & (start[pending] <= seqs.last[pending])]
        chunk *= 2
    return _Scanned(np.concatenate(seqs_seen), np.concatenate(replicas_seen), grid.Rows.concat(estimates))


# Candidates are pruned in blocks of this many (in the pruning order).
_PRUNE_BLOCK = 256


def _dominated(latency, accuracy, departure, group, units, by: np.ndarray, of: np.ndarray) -> np.ndarray:
    """[i, j]: option by[i] is in of[j]'s group and no worse on latency (the path term), accuracy, scv
    and units (0 outside a capped kind)."""
    return ((latency[of][None, :] >= latency[by][:, None]) & (accuracy[of][None, :] <= accuracy[by][:, None])
            & (departure[of][None, :] >= departure[by][:, None]) & (group[of][None, :] == group[by][:, None])
            & (units[of][None, :] >= units[by][:, None]))


def _prune(cost: np.ndarray, latency: np.ndarray, accuracy: np.ndarray, departure: np.ndarray,
           group: np.ndarray, units: np.ndarray, tie_keys: tuple[np.ndarray, ...]) -> np.ndarray:
    """Indices of the options no other option beats or ties on cost, latency, accuracy, output scv and
    group (a capped hardware kind is its own group; the rest share one), and within a capped kind on
    ``units`` (its replicas: on a VM they follow the cost, on a serverless entry they do not, since its
    idle instances are free; 0 elsewhere), in the order (cost, latency, -accuracy, scv, then
    ``tie_keys``: p99, variant, hardware, batch, timeout, replicas).
    ``latency`` is the path term l_o (planner.estimate.paths), the only latency the ILP reads: every
    kept option's p99 is within the SLO.

    Walking that order, an option is dropped when an earlier survivor of its group is no worse on
    latency, accuracy and scv (its cost is no higher, by the order). Dominance is transitive, so
    "an earlier survivor" may be read "any earlier option": a dropped one's dominator dominates
    whatever it dominates. So a block is compared with the survivors before it at once, and what
    remains with its own earlier members that remain, at once."""
    order = np.lexsort(tuple(reversed((cost, latency, -accuracy, departure) + tie_keys)))
    lat, acc, dep, grp, uni = latency[order], accuracy[order], departure[order], group[order], units[order]
    kept = np.zeros(0, dtype=np.int64)
    for lo in range(0, order.size, _PRUNE_BLOCK):
        block = np.arange(lo, min(lo + _PRUNE_BLOCK, order.size))
        if kept.size:
            block = block[~_dominated(lat, acc, dep, grp, uni, kept, block).any(axis=0)]
        within = np.triu(_dominated(lat, acc, dep, grp, uni, block, block), k=1)  # earlier i dominates later j
        kept = np.concatenate((kept, block[~within.any(axis=0)]))
    return order[kept]


def _stage_options(spec: PipelineSpec, stage: StageSpec, grouped: dict[tuple[str, str], dict[int, ProfileRow]],
                   hardware: dict[str, Hardware], load_items_per_s: float, r_in: float, capped: set[str],
                   unit_caps: bool, feeds_others: bool,
                   tail_weight: float) -> tuple[tuple[Option, ...], float, float, float]:
    """One stage's non-dominated options, the fastest p99 and the least path term l_o = mean + w_s
    (p99 - mean) (``tail_weight`` = w_s, planner.estimate.paths) over every scanned configuration
    (before the SLO and unit filters), and the most items/s any option carries within max_replicas.

    The latency model runs on one grid per stage (planner.estimate.grid); Options are made for
    the survivors of the pruning only."""
    batches = stage.batch_sizes or spec.batch_sizes
    max_replicas = stage.max_replicas or spec.max_replicas
    lam = load_items_per_s / 1000.0
    loaded = math.isfinite(load_items_per_s) and load_items_per_s > 0
    k_items = max(1.0, math.floor(stage.fanout))  # an idle replica already finds min(b, k) of a request's k items
    services: list[lat.BatchService] = []
    entries: list[tuple] = []  # one per configuration, in _Sequences' field order (rows apart)
    rows: list[ProfileRow] = []
    max_capacity = 0.0
    for (variant, hw_name), by_batch in sorted(grouped.items()):
        hw = hardware[hw_name]
        prices = price_terms(hw)
        full = _service_tables(tuple(by_batch[b] for b in batches if b in by_batch), tuple(batches))
        group = len(services)
        services.append(full)  # every smaller batch size's tables are a prefix of these
        # A serverless entry runs at most max_concurrency instances per stage: its replica bound.
        hw_replicas = min(max_replicas, hw.max_concurrency) if hw.max_concurrency else max_replicas
        units = min(hw_replicas, hw.max_units or hw_replicas)
        units_cap = hw.max_units if unit_caps and hw.max_units is not None else hw_replicas
        for batch in batches:
            row = by_batch.get(batch)
            if row is None:  # above where this variant's sweep stopped
                continue
            mean_b = full.mean_ms[batch - 1]
            max_capacity = max(max_capacity, units * 1000.0 * batch / mean_b)
            if not loaded:
                continue
            service = lat.BatchService(batch, full.mean_ms[:batch], full.p99_ms[:batch], full.scv[:batch])
            first = lat.first_useful_replicas(service, load_items_per_s, spec.max_utilization)
            if not first <= hw_replicas:  # a huge load or a tiny throughput: no options, no scan
                continue
            first = int(first)
            last = min(hw_replicas, first + _MAX_EXTRA_REPLICAS)
            per_replica = 1000.0 * batch / mean_b
            for timeout_ms in timeouts_for(batch, load_items_per_s, spec.batch_timeout_quantiles):
                # The diagnosis wants the fastest option even beyond the hardware's unit cap, to tell
                # "the SLO binds" from "the unit limits bind"; the ILP gets only options within both.
                m_fill = max(lat.expected_batch(batch, lam, timeout_ms), min(float(batch), k_items))
                entries.append((group, batch, timeout_ms, m_fill, first, last, units_cap, *prices,
                                per_replica, row.accuracy))
                rows.append(row)
    if not entries:
        return (), math.inf, math.inf, max_capacity
    seqs = _Sequences(*(np.array(column) for column in zip(*entries)), rows=tuple(rows))
    quantile = lat.item_quantile(stage.fanout)
    scanned = _scan(grid.Tables.stack(services), seqs, lam, flow.item_scv(r_in, stage.fanout), 1.0 - quantile,
                    NormalDist().inv_cdf(quantile), spec.engine_overhead_ms, stage.fanout)
    est, seq, replicas = scanned.est, scanned.seq, scanned.replicas
    rows = seqs.rows
    best_latency = float(est.total_ms.min()) if seq.size else math.inf
    # paths.path_latency_ms per row (NaN where the stage is unstable: inf - inf; never the least)
    capped_mean = np.minimum(est.mean_ms, est.total_ms)
    path_ms = capped_mean + tail_weight * (est.total_ms - capped_mean)
    best_path = float(np.fmin.reduce(path_ms, initial=math.inf))
    ok = np.flatnonzero((est.total_ms <= spec.slo_ms) & (replicas <= seqs.units_cap[seq]))
    seq, replicas = seq[ok], replicas[ok]
    # The output scv matters only when a later stage reads it.
    departure = est.departure_scv[ok] if feeds_others else np.zeros(ok.size)
    rank = {name: i for i, name in enumerate(sorted({r.hardware for r in rows} | {r.variant for r in rows}))}
    hw_rank = np.array([rank[r.hardware] for r in rows])[seq]
    var_rank = np.array([rank[r.variant] for r in rows])[seq]
    group = np.where(np.isin(hw_rank, [rank[h] for h in capped if h in rank]), hw_rank, -1)
    cost = stage_usd_per_hour(replicas, load_items_per_s, seqs.per_replica_items_per_s[seq], seqs.usd_per_hour[seq],
                              seqs.usd_per_busy_s[seq], seqs.usd_per_item[seq])  # planner.pricing
    keep = _prune(cost, path_ms[ok], seqs.accuracy[seq], departure, group, np.where(group >= 0, replicas, 0),
                  (est.total_ms[ok], var_rank, hw_rank, seqs.batch[seq], seqs.timeout_ms[seq], replicas))
    timeouts = seqs.timeout_ms.tolist()
    picked = ok[keep]
    values = zip(seq[keep].tolist(), replicas[keep].tolist(), cost[keep].tolist(),
                 (replicas * seqs.per_replica_items_per_s[seq])[keep].tolist(), departure[keep].tolist(),
                 *(a[picked].tolist() for a in (est.fill_ms, est.wait_ms, est.service_ms, est.total_ms,
                                                est.utilization, est.mean_batch, est.mean_ms, path_ms)))
    options = tuple(
        Option(stage=stage.name, model=stage.model, variant=rows[i].variant, hardware=rows[i].hardware,
               batch_size=rows[i].batch_size, batch_timeout_ms=timeouts[i], replicas=c, accuracy=rows[i].accuracy,
               usd_per_hour=usd, capacity_items_per_s=capacity, load_items_per_s=load_items_per_s,
               utilization=rho, latency=lat.StageLatency(fill, wait, service, spec.engine_overhead_ms),
               latency_ms=total, mean_batch=m, request_scv_in=r_in,
               request_scv_out=flow.request_scv_out(r_in, dep, stage.fanout), mean_ms=mean, path_latency_ms=path)
        for i, c, usd, capacity, dep, fill, wait, service, total, rho, m, mean, path in values)
    return options, best_latency, best_path, max_capacity


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
    by_model = rows_by_model(profiles)
    weights = stage_tail_weights(spec)
    for name in spec.topological_order():
        stage = spec.stage(name)
        grouped = stage_rows(spec, stage, catalog, profiles, sources, by_model)
        load_items_per_s = rate_rps * stage.fanout * stage.champion_share  # a challenger takes its share
        if stage.after and request_scv is not None and name in request_scv:
            r_in = request_scv[name]
        else:
            r_in = max((max((o.request_scv_out for o in built[p].options), default=built[p].request_scv_in)
                        for p in stage.after), default=flow.source_scv(spec))
        options, best_latency, best_path, max_capacity = _stage_options(
            spec, stage, grouped, hardware, load_items_per_s, r_in, capped, unit_caps, name in parents, weights[name])
        built[name] = StageCandidates(
            stage=stage.name,
            options=options,
            load_items_per_s=load_items_per_s,
            best_latency_ms=best_latency,
            best_path_latency_ms=best_path,
            max_capacity_items_per_s=max_capacity * spec.max_utilization,
            request_scv_in=r_in,
        )
    return CandidateSet(tuple(built[s.name] for s in spec.stages))
