"""Metrics of a run and their stable JSON/CSV text (the CLI writes the text atomically)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from planner.sim.config import Prepared, RawRun, SimConfig, StageRun

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
class SimResult:
    pipeline: str
    trace: str
    config: SimConfig
    summary: LatencySummary
    stages: tuple[StageStats, ...]
    predicted_p99_ms: float | None
    span_ms: float  # from 0 to the later of the trace's end and the last completion
    arrival_ms: np.ndarray
    latency_ms: np.ndarray  # per request; NaN when dropped
    detail: tuple[StageRun, ...] | None = None

    @property
    def dropped(self) -> np.ndarray:
        return np.isnan(self.latency_ms)


def quantile(values: np.ndarray, q: float) -> float:
    """The smallest value with at least a share q at or below it (so p99 <= SLO iff 99% meet it)."""
    if values.size == 0:
        return math.nan
    return float(np.quantile(values, q, method="inverted_cdf"))


def summarise(plan_name: str, trace_name: str, config: SimConfig, prep: Prepared, run: RawRun,
              slo_ms: float, duration_ms: float, predicted: dict[str, float], predicted_p99_ms: float | None
              ) -> SimResult:
    """Turn a raw run into the result's metrics."""
    latency = run.completion_ms - prep.arrival_ms
    dropped = np.isnan(latency)
    late = np.where(dropped, np.inf, latency)
    completed = latency[~dropped]
    n = latency.size
    ends = [r.batch_end_ms.max() for r in run.stages if r.batch_end_ms.size]
    span = max([duration_ms, *ends]) if n else duration_ms
    span = span if span > 0 else 1.0
    summary = LatencySummary(
        requests=n, completed=int(completed.size), dropped=int(dropped.sum()),
        mean_ms=float(completed.mean()) if completed.size else math.nan,
        p50_ms=quantile(late, 0.50), p95_ms=quantile(late, 0.95), p99_ms=quantile(late, 0.99),
        max_ms=float(late.max()) if n else math.nan,
        slo_ms=slo_ms, slo_attainment=float(np.mean(late <= slo_ms)) if n else math.nan,
        over_slo=int(np.sum(~(late <= slo_ms))),
    )
    stats = []
    for j, (stage, r) in enumerate(zip(prep.stages, run.stages)):
        served = r.batch >= 0
        wait = (r.start_ms - r.ready_ms)[served]
        if stage.parents:
            ready = run.stages[stage.parents[0]].completion_ms
            for p in stage.parents[1:]:
                ready = np.maximum(ready, run.stages[p].completion_ms)
        else:
            ready = prep.arrival_ms
        sojourn = (r.completion_ms - ready)[~np.isnan(r.completion_ms)]
        busy = float(np.sum(r.batch_end_ms - r.batch_start_ms))
        stats.append(StageStats(
            stage=stage.name, replicas=stage.replicas, batch_size=stage.batch_size,
            items=int(r.request.size), dropped_items=int((~served).sum()), batches=int(r.batch_items.size),
            mean_batch_size=float(r.batch_items.mean()) if r.batch_items.size else math.nan,
            max_batch_size=int(r.batch_items.max()) if r.batch_items.size else 0,
            utilization=float(busy / (stage.replicas * span)),
            mean_queue_length=float(wait.sum()) / span,
            mean_wait_ms=float(wait.mean()) if wait.size else math.nan,
            p99_wait_ms=quantile(wait, 0.99),
            p99_latency_ms=quantile(sojourn, 0.99),
            predicted_latency_ms=predicted.get(stage.name),
        ))
    return SimResult(plan_name, trace_name, config, summary, tuple(stats), predicted_p99_ms, float(span),
                     prep.arrival_ms, latency, run.stages if config.keep_detail else None)


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
              if k not in ("keep_detail", "accelerate")}
    return _clean({
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
    lines = ["request,arrival_ms,latency_ms,dropped"]
    for i, (a, lat) in enumerate(zip(result.arrival_ms.tolist(), result.latency_ms.tolist())):
        lines.append(f"{i},{a:.6f},{'' if lat != lat else f'{lat:.6f}'},{1 if lat != lat else 0}")
    return "\n".join(lines) + "\n"
