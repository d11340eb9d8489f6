"""How arrival variability passes down the DAG (QNA-style), and one configuration evaluated whole.

Each stage sees requests whose inter-arrival scv is ``r``: a source sees the pipeline's ``cv^2``; a
stage after others sees the largest of its parents' output scv (a join releases a request when
its last parent finishes; the burstiest parent governs). A request sends k = fanout items:

- item scv ``v = k r`` for k >= 1 (bulks of k), ``v = k r + 1 - k`` for k < 1 (thinning);
- the stage's item departures have scv ``v_out`` (planner.estimate.latency, QNA with bulks);
  the request stream it passes on has ``r_out = v_out / k`` for k >= 1, and for k < 1 (a share of
  requests passes through unserved) ``max(r, v_out)``.

Because ``r`` depends on the upstream stages' choices, the candidate options of a stage are
computed for an assumed ``r`` (planner.optimize raises the assumption until the chosen plan's own
``r`` is no larger anywhere, so every stage latency the ILP used bounds the plan's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from planner.estimate import latency as lat
from planner.plan import ServiceCurve, ServicePoint
from planner.spec import PipelineSpec
from profiler.schema import ProfileRow


def item_scv(request_scv: float, fanout: float) -> float:
    """The item stream's scv from the request stream's (bulks for k >= 1, thinning for k < 1)."""
    if fanout >= 1.0:
        return request_scv * fanout
    return fanout * request_scv + (1.0 - fanout)


def request_scv_out(request_scv_in: float, departure_item_scv: float, fanout: float) -> float:
    """The request stream a stage passes on, from its item departures."""
    if fanout >= 1.0:
        return departure_item_scv / fanout
    return max(request_scv_in, departure_item_scv)


def source_scv(spec: PipelineSpec) -> float:
    return spec.arrival_cv ** 2


@dataclass(frozen=True)
class StageChoice:
    variant: str
    hardware: str
    batch_size: int
    batch_timeout_ms: float
    replicas: int


@dataclass(frozen=True)
class Evaluated:
    """One stage of an evaluated configuration."""

    estimate: lat.StageEstimate
    request_scv_in: float
    request_scv_out: float


def batch_service(rows_by_batch: Mapping[int, ProfileRow], allowed: tuple[int, ...], batch_size: int) -> lat.BatchService:
    """The service of one (variant, hardware) up to ``batch_size``, from the rows at allowed sizes."""
    sizes = [b for b in allowed if b <= batch_size and b in rows_by_batch]
    curve = ServiceCurve.from_points({b: ServicePoint(rows_by_batch[b].latency_p50_ms, rows_by_batch[b].latency_p99_ms)
                                      for b in sizes})
    return lat.BatchService.from_curve(curve, batch_size, {b: rows_by_batch[b].throughput_rps for b in sizes})


def evaluate(spec: PipelineSpec, rows: Mapping[tuple, ProfileRow], choices: Mapping[str, StageChoice],
             arrival_rps: float | None = None) -> dict[str, Evaluated]:
    """Every stage of one configuration at ``arrival_rps`` (default: the spec's), r passed down the DAG."""
    rate = spec.arrival_rps if arrival_rps is None else arrival_rps
    out: dict[str, Evaluated] = {}
    for name in spec.topological_order():
        stage = spec.stage(name)
        ch = choices[name]
        r_in = max((out[p].request_scv_out for p in stage.after), default=source_scv(spec))
        by_batch = {b: rows[(stage.model, ch.variant, ch.hardware, b)]
                    for b in (stage.batch_sizes or spec.batch_sizes)
                    if (stage.model, ch.variant, ch.hardware, b) in rows}
        service = batch_service(by_batch, stage.batch_sizes or spec.batch_sizes, ch.batch_size)
        queue = lat.StageQueue(service, rate * stage.fanout * stage.champion_share, ch.batch_timeout_ms, item_scv(r_in, stage.fanout),
                               stage.fanout, overhead_ms=spec.engine_overhead_ms)
        est = queue.at(ch.replicas)
        out[name] = Evaluated(est, r_in, request_scv_out(r_in, est.departure_scv, stage.fanout))
    return out
