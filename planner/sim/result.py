"""Metrics of a run and their stable JSON/CSV text (the CLI writes the text atomically)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from planner.plan import Plan
from planner.sim.config import Prepared, SimConfig
from planner.sim.run import RawRun, StageRun, quantile
from planner.traces import Trace

from planner.resource_class import ResourceClass

SIM_RESULT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LatencySummary:
    """End-to-end latency over all requests; a dropped request counts as infinitely late."""

    requests: int
    completed: int
    dropped: int
    mean_ms: float  # over completed requests
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    slo_ms: float
    slo_attainment: float  # share of all requests completed within the SLO
    over_slo: int  # requests late or dropped


@dataclass(frozen=True)
class StageStats:
    """What one stage did over the run."""

    stage: str
    replicas: int
    batch_size: int
    items: int
    dropped_items: int
    batches: int
    mean_batch_size: float
    max_batch_size: int
    utilization: float  # busy replica time / (replicas x span)
    mean_queue_length: float  # time-average of items waiting (served items), by Little's law
    mean_wait_ms: float  # queueing + batch fill, served items
    p99_wait_ms: float
    p99_latency_ms: float  # request's time at the stage (ready -> all its items done)
    predicted_latency_ms: float | None  # the plan's analytical p99 for the stage


@dataclass(frozen=True)
class StageEvents:
    """What a spot or serverless stage's class did over a run (planner.sim.classes)."""

    stage: str
    resource_class: ResourceClass  # spot | serverless
    instances: int  # replicas serving at the start (serverless: the plan's, at most max_concurrency)
    preemptions: int  # spot: replicas taken back (seeded Poisson draws)
    cold_starts: int  # serverless: batches that started on a cold instance (each paid the cold start)
    batches: int  # batches the stage ran


@dataclass(frozen=True)
class ClassEvents:
    """Per spot/serverless stage (topological order), the events of its resource class."""

    stages: tuple[StageEvents, ...]

    @property
    def preemptions(self) -> int:
        return sum(s.preemptions for s in self.stages)

    @property
    def cold_starts(self) -> int:
        return sum(s.cold_starts for s in self.stages)


@dataclass(frozen=True)
class SimResult:
    pipeline: str
    trace: str
    config: SimConfig
    summary: LatencySummary
    stages: tuple[StageStats, ...]
    predicted_p99_ms: float | None
    span_ms: float  # from 0 to the later of the trace's end and the last completion
    arrival_ms: np.ndarray  # the trace's column (not a copy)
    latency_ms: np.ndarray | None  # per request; NaN when dropped (None unless config.keep_requests)
    detail: tuple[StageRun, ...] | None = None
    resources: ClassEvents | None = None  # spot/serverless events (planner.sim.classes); None: not modelled


def latency_summary(latency_ms: np.ndarray, slo_ms: float) -> LatencySummary:
    """The end-to-end summary of one run's per-request latencies (NaN: dropped or failed, counted as
    infinitely late in the quantiles and the attainment). Simulated and measured runs share it.

    Quantiles are exact (``inverted_cdf``: the smallest value with at least a share q at or below it,
    so p99 <= SLO iff 99% meet it; planner.sim.run.quantile), over one float64 copy.
    """
    dropped = np.isnan(latency_ms)
    completed = latency_ms[~dropped]
    n = latency_ms.size
    mean_ms = float(completed.mean()) if completed.size else math.nan
    del completed
    late = np.where(dropped, np.inf, latency_ms)
    max_ms = float(late.max()) if n else math.nan
    attainment = float(np.mean(late <= slo_ms)) if n else math.nan
    over_slo = int(np.sum(~(late <= slo_ms)))
    p95, p99 = quantile(late, 0.95), quantile(late, 0.99)  # from the tail; the median partitions the column
    p50 = quantile(late, 0.50, overwrite=True)
    return LatencySummary(
        requests=n, completed=n - int(dropped.sum()), dropped=int(dropped.sum()), mean_ms=mean_ms,
        p50_ms=p50, p95_ms=p95, p99_ms=p99, max_ms=max_ms, slo_ms=slo_ms, slo_attainment=attainment,
        over_slo=over_slo,
    )


def request_row(request: int, arrival_ms: float, latency_ms: float) -> str:
    """One row of the per-request CSV (request, arrival_ms, latency_ms empty when dropped, dropped)."""
    dropped = latency_ms != latency_ms
    return f"{request},{arrival_ms:.6f},{'' if dropped else f'{latency_ms:.6f}'},{1 if dropped else 0}"


def summarise(plan: Plan, trace: Trace, config: SimConfig, prep: Prepared, run: RawRun) -> SimResult:
    """Turn a raw run into the result's metrics; quantiles are exact over the float64 latency column.

    The latency column is kept in the result only when ``config.keep_requests``; otherwise it lives
    only while the summary is computed.
    """
    slo_ms = config.slo_ms if config.slo_ms is not None else plan.slo_ms
    latency = run.completion_ms - prep.arrival_ms
    n = latency.size
    ends = [t.last_end_ms for t in run.tallies if t.batches]
    span = max([trace.duration_ms, *ends]) if n else trace.duration_ms
    span = span if span > 0 else 1.0
    summary = latency_summary(latency, slo_ms)
    predicted = {s.stage: s.predicted_latency_ms for s in plan.stages}
    stats = tuple(StageStats(
        stage=stage.name, replicas=stage.replicas, batch_size=stage.batch_size,
        items=t.items, dropped_items=t.dropped_items, batches=t.batches,
        mean_batch_size=t.mean_batch_size, max_batch_size=t.max_batch_size,
        utilization=float(t.busy_ms / (stage.replicas * span)),
        mean_queue_length=t.wait_sum_ms / span,
        mean_wait_ms=t.mean_wait_ms, p99_wait_ms=t.p99_wait_ms, p99_latency_ms=t.p99_latency_ms,
        predicted_latency_ms=predicted.get(stage.name),
    ) for stage, t in zip(prep.stages, run.tallies))
    return SimResult(plan.pipeline, trace.name, config, summary, stats, plan.predicted_p99_ms, float(span),
                     prep.arrival_ms, latency if config.keep_requests else None,
                     run.stages if config.keep_detail else None)


def _clean(value: Any) -> Any:
    """Fixed precision (10 significant digits); NaN and infinity become null."""
    if isinstance(value, float):
        return float(f"{value:.10g}") if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "value") and not isinstance(value, (int, str)):
        return value.value
    return value


def result_to_dict(result: SimResult, trace_info: dict[str, Any] | None = None) -> dict[str, Any]:
    config = {k: (v.value if hasattr(v, "value") else v) for k, v in asdict(result.config).items()
              if k not in ("keep_detail", "keep_requests", "accelerate")}
    resources = {} if result.resources is None else {"resources": {
        "preemptions": result.resources.preemptions, "cold_starts": result.resources.cold_starts,
        "stages": [{**asdict(s), "resource_class": s.resource_class.value} for s in result.resources.stages]}}
    return _clean({
        **resources,
        "schema_version": SIM_RESULT_SCHEMA_VERSION,
        "pipeline": result.pipeline,
        "trace": {"name": result.trace, **(trace_info or {})},
        "config": config,
        "span_ms": result.span_ms,
        "predicted_p99_ms": result.predicted_p99_ms,
        "summary": asdict(result.summary),
        "stages": [asdict(s) for s in result.stages],
    })


def result_to_json(result: SimResult, trace_info: dict[str, Any] | None = None) -> str:
    """Stable JSON: sorted keys, fixed precision, trailing newline; same seed, same bytes."""
    return json.dumps(result_to_dict(result, trace_info), indent=2, sort_keys=True, allow_nan=False) + "\n"


def requests_csv_text(result: SimResult) -> str:
    """Per-request CSV: request, arrival_ms, latency_ms (empty when dropped), dropped (0/1)."""
    if result.latency_ms is None:
        raise ValueError("the result has no per-request latencies; simulate with SimConfig(keep_requests=True)")
    lines = ["request,arrival_ms,latency_ms,dropped"]
    for i, (a, lat) in enumerate(zip(result.arrival_ms.tolist(), result.latency_ms.tolist())):
        lines.append(request_row(i, a, lat))
    return "\n".join(lines) + "\n"
