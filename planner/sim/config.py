"""The simulator's inputs: configuration, the per-stage model compiled from a Plan, and the random draws.

Both engines (the stage-by-stage fast path and the reference event loop) consume the same
:class:`Prepared` value, so they see identical fan-out counts and service-time draws and must agree
to the last bit; a test holds them to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

from planner.errors import SpecError
from planner.estimate.latency import Z_99
from planner.plan import Plan, StagePlan
from planner.traces import Trace


class ServiceModel(str, Enum):
    """How a batch's service time is drawn from the profile's (p50, p99) of its batch size."""

    DETERMINISTIC = "deterministic"  # always the p50
    LOGNORMAL = "lognormal"  # median p50, p99 at the profile's p99 (what latency.service_scv assumes)
    EXPONENTIAL = "exponential"  # median p50 (mean p50 / ln 2); for checks against queueing theory


class QueueMode(str, Enum):
    """Where a stage's items wait."""

    CENTRAL = "central"  # one FIFO queue feeding every replica (what the latency model assumes)
    PER_REPLICA = "per_replica"  # items dealt round-robin to replicas, each with its own FIFO queue


class Engine(str, Enum):
    FAST = "fast"  # stage by stage in topological order (the default; much faster)
    EVENTS = "events"  # the reference discrete-event loop over the whole pipeline


@dataclass(frozen=True)
class SimConfig:
    """One simulation run's settings."""

    seed: int = 0
    service: ServiceModel = ServiceModel.LOGNORMAL
    queue_mode: QueueMode = QueueMode.CENTRAL
    # A request whose item is still queued when a replica dequeues it after arrival + timeout is dropped.
    request_timeout_ms: float | None = None
    slo_ms: float | None = None  # default: the plan's SLO
    engine: Engine = Engine.FAST
    keep_detail: bool = False  # keep per-item and per-batch arrays in the result (tests, plots)
    accelerate: bool = True  # fast engine: use the numba kernels when numba is installed (same results)


@dataclass(frozen=True)
class StageModel:
    """One stage as the simulator sees it; ``base_ms[m]``/``sigma[m]`` give the service of an m-item batch."""

    name: str
    parents: tuple[int, ...]  # indices into Prepared.stages
    batch_size: int
    batch_timeout_ms: float
    replicas: int
    fanout: float
    base_ms: tuple[float, ...]  # index m = items in the batch (index 0 unused)
    sigma: tuple[float, ...]


@dataclass(frozen=True)
class Prepared:
    """Everything random or derived, drawn once per run from the seed."""

    stages: tuple[StageModel, ...]  # topological order
    sinks: tuple[int, ...]
    arrival_ms: np.ndarray
    items_per_request: tuple[np.ndarray, ...]  # per stage, items each request sends there
    service_draws: tuple[np.ndarray, ...]  # per stage, one draw per item position (indexed by a batch's first item)
    service: ServiceModel
    queue_mode: QueueMode
    request_timeout_ms: float | None


def _topological(plan: Plan) -> list[StagePlan]:
    names = {s.stage for s in plan.stages}
    for s in plan.stages:
        unknown = [p for p in s.after if p not in names]
        if unknown:
            raise SpecError(f"plan stage '{s.stage}': 'after' names unknown stage(s) {unknown}; re-create the plan.")
    order: list[StagePlan] = []
    placed: set[str] = set()
    while len(order) < len(plan.stages):
        ready = [s for s in plan.stages if s.stage not in placed and all(p in placed for p in s.after)]
        if not ready:
            raise SpecError("plan stages' 'after' links form a cycle; a pipeline must be a DAG.")
        order.append(ready[0])
        placed.add(ready[0].stage)
    return order


def _service_table(stage: StagePlan, service: ServiceModel) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per batch size m = 1..b: (base, sigma), serving m items at the smallest profiled size >= m."""
    curve = stage.service_ms_by_batch
    if stage.batch_size not in curve:
        raise SpecError(f"plan stage '{stage.stage}': service_ms_by_batch has no entry for batch_size "
                        f"{stage.batch_size} (it has {list(curve.batch_sizes)}); re-create the plan with 'pipeplan plan'.")
    sizes = [b for b in curve.batch_sizes if b <= stage.batch_size]
    base, sigma = [0.0], [0.0]
    for m in range(1, stage.batch_size + 1):
        point = curve.profiled(next(b for b in sizes if b >= m))
        p50, p99 = point.p50_ms, point.p99_ms
        if not (p50 > 0 and math.isfinite(p50) and math.isfinite(p99)):
            raise SpecError(f"plan stage '{stage.stage}': service p50 {p50} ms / p99 {p99} ms at batch {m} must be "
                            "positive and finite; fix the profile and re-plan.")
        s = math.log(p99 / p50) / Z_99 if p99 > p50 else 0.0
        if service is ServiceModel.EXPONENTIAL:
            base.append(p50 / math.log(2.0))
            sigma.append(0.0)
        else:
            base.append(p50)
            sigma.append(s if service is ServiceModel.LOGNORMAL else 0.0)
    return tuple(base), tuple(sigma)


def _items(fanout: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Items per request with mean ``fanout``: floor(f), plus one with probability frac(f)."""
    whole = math.floor(fanout)
    frac = fanout - whole
    if frac < 1e-12:
        return np.full(n, int(whole), dtype=np.int64)
    return whole + (rng.random(n) < frac).astype(np.int64)


def prepare(plan: Plan, trace: Trace, config: SimConfig) -> Prepared:
    """Compile the plan and draw fan-out counts and service variates from ``config.seed``."""
    if config.request_timeout_ms is not None and not config.request_timeout_ms > 0:
        raise SpecError(f"request_timeout_ms must be > 0, found {config.request_timeout_ms}; omit it for no timeout.")
    ordered = _topological(plan)
    index = {s.stage: i for i, s in enumerate(ordered)}
    children = {p for s in ordered for p in s.after}
    n = trace.requests
    streams = np.random.SeedSequence(config.seed).spawn(len(ordered))
    stages, items, draws = [], [], []
    for stage, stream in zip(ordered, streams):
        if stage.batch_size < 1 or stage.replicas < 1 or stage.batch_timeout_ms < 0:
            raise SpecError(f"plan stage '{stage.stage}': batch_size {stage.batch_size}, replicas {stage.replicas} "
                            f"and batch_timeout_ms {stage.batch_timeout_ms} must be >= 1, >= 1 and >= 0.")
        base, sigma = _service_table(stage, config.service)
        stages.append(StageModel(stage.stage, tuple(index[p] for p in stage.after), stage.batch_size,
                                 float(stage.batch_timeout_ms), stage.replicas, float(stage.fanout), base, sigma))
        rng = np.random.default_rng(stream)
        count = _items(stage.fanout, n, rng)
        items.append(count)
        total = int(count.sum())
        if config.service is ServiceModel.LOGNORMAL:
            draws.append(rng.standard_normal(total))
        elif config.service is ServiceModel.EXPONENTIAL:
            draws.append(rng.standard_exponential(total))
        else:
            draws.append(np.zeros(0))
    sinks = tuple(i for i, s in enumerate(ordered) if s.stage not in children)
    return Prepared(tuple(stages), sinks, trace.arrival_ms, tuple(items), tuple(draws), config.service,
                    config.queue_mode, config.request_timeout_ms)


@dataclass(frozen=True)
class StageRun:
    """What one stage did, items in the stage's FIFO order (ties: request, then item index)."""

    request: np.ndarray  # request index of each item
    ready_ms: np.ndarray  # when the item joined the queue
    start_ms: np.ndarray  # when its batch started (NaN: dropped)
    end_ms: np.ndarray  # when its batch finished (NaN: dropped)
    batch: np.ndarray  # batch index (-1: dropped)
    batch_start_ms: np.ndarray
    batch_end_ms: np.ndarray
    batch_items: np.ndarray
    completion_ms: np.ndarray  # per request: all its items done here (NaN: never reached or dropped)


@dataclass(frozen=True)
class RawRun:
    stages: tuple[StageRun, ...]
    completion_ms: np.ndarray  # per request: every sink done (NaN: dropped)
