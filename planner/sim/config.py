"""The simulator's inputs: configuration, the per-stage model compiled from a Plan, replica schedules
and the random draws.

Both engines (the stage-by-stage engine and the reference event loop) consume the same
:class:`Prepared` value, so they see identical fan-out counts and service-time draws and must agree
to the last bit; a test holds them to it. Draws are made per stage on demand from the stage's own
seed stream (:func:`stage_draws`), so a run holds one stage's draws at a time.
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
    keep_requests: bool = True  # keep the per-request latency column (the CLI keeps it only for --requests)
    accelerate: bool = True  # fast engine: use the numba kernel when numba is installed (same results)
    # The serving engine's own cost of one stage visit (request handling, serialisation, scheduling;
    # docs/formats.md, measured by benchmarks/bench_engine_fidelity.py): a pure delay, no queue, added
    # before a request joins each stage it visits. 0: the profiles' service times are all there is.
    engine_overhead_ms: float = 0.0


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
    # Serverless only (planner.sim.kernel): a batch on an instance idle longer than keep_warm_ms pays
    # cold_start_ms first; the queue spills to it only when the head would wait longer than spill_ms
    # for every other window to be free (planner.sim.kernel). 0 for VMs.
    cold_start_ms: float = 0.0
    keep_warm_ms: float = 0.0
    spill_ms: float = 0.0
    metered: bool = False  # billed per use: the schedule engine keeps its batches (ScheduleRun.metered)


@dataclass(frozen=True)
class ReplicaWindow:
    """One replica's life: launched (costs from here), ready (may serve), stopped (starts no new batch)."""

    config: int  # index into StageSchedule.configs
    launch_ms: float
    ready_ms: float
    stop_ms: float = math.inf


@dataclass(frozen=True)
class StageSchedule:
    """A stage's configurations and the replica windows that serve it."""

    stage: str
    configs: tuple[StageModel, ...]
    replicas: tuple[ReplicaWindow, ...]

    @property
    def constant(self) -> bool:
        """Every window ready at 0 and never stopped (a plain plan's replicas)."""
        return all(w.ready_ms == 0.0 and w.stop_ms == math.inf for w in self.replicas)


@dataclass(frozen=True)
class Schedule:
    stages: tuple[StageSchedule, ...]  # matched to the plan's stages by name

    def stage(self, name: str) -> StageSchedule:
        return next(s for s in self.stages if s.stage == name)


@dataclass(frozen=True)
class Prepared:
    """Everything derived from the plan and the trace, and the seed streams of the random draws."""

    stages: tuple[StageModel, ...]  # topological order
    sinks: tuple[int, ...]
    arrival_ms: np.ndarray
    streams: tuple[np.random.SeedSequence, ...]  # per stage: its fan-out counts, then its service draws
    service: ServiceModel
    queue_mode: QueueMode
    request_timeout_ms: float | None
    engine_overhead_ms: float = 0.0  # added to every stage visit's ready time (SimConfig.engine_overhead_ms)

    def constant_schedule(self) -> Schedule:
        """Each stage's plan replicas, all ready at 0 and never stopped (what planner.sim.simulate runs)."""
        return Schedule(tuple(StageSchedule(s.name, (s,), tuple(ReplicaWindow(0, 0.0, 0.0) for _ in range(s.replicas)))
                              for s in self.stages))


@dataclass(frozen=True)
class StageDraws:
    """One stage's random draws."""

    items_per_request: np.ndarray  # int32, items each request sends to the stage
    service: np.ndarray  # one draw per item position (a batch uses its first served item's); empty if deterministic


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
    """Per batch size m = 1..b: (base, sigma) of an m-item batch, its (p50, p99) by the one partial-batch
    rule, ``ServiceCurve.at`` (linear interpolation between profiled sizes <= b; see planner.plan).

    lognormal: base = p50, sigma = ln(p99 / p50) / z_0.99 (0 when p99 <= p50); exponential: base =
    p50 / ln 2 (median p50); deterministic: base = p50.
    """
    curve = stage.service_ms_by_batch
    if stage.batch_size not in curve:
        raise SpecError(f"plan stage '{stage.stage}': service_ms_by_batch has no entry for batch_size "
                        f"{stage.batch_size} (it has {list(curve.batch_sizes)}); re-create the plan with 'pipeplan plan'.")
    allowed = curve.up_to(stage.batch_size)
    base, sigma = [0.0], [0.0]
    for m in range(1, stage.batch_size + 1):
        point = allowed.at(m)
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
        return np.full(n, int(whole), dtype=np.int32)
    return (rng.random(n) < frac).astype(np.int32) + np.int32(whole)


def stage_draws(prep: Prepared, j: int) -> StageDraws:
    """Stage ``j``'s fan-out counts and service draws, from its own seed stream (same every call)."""
    rng = np.random.default_rng(prep.streams[j])
    count = _items(prep.stages[j].fanout, prep.arrival_ms.size, rng)
    total = int(count.sum())
    if prep.service is ServiceModel.LOGNORMAL:
        draws = rng.standard_normal(total)
    elif prep.service is ServiceModel.EXPONENTIAL:
        draws = rng.standard_exponential(total)
    else:
        draws = np.zeros(0)
    return StageDraws(count, draws)


def prepare(plan: Plan, trace: Trace, config: SimConfig) -> Prepared:
    """Compile the plan and seed the per-stage random streams from ``config.seed``."""
    if not (math.isfinite(config.engine_overhead_ms) and config.engine_overhead_ms >= 0):
        raise SpecError(f"engine_overhead_ms must be a finite number >= 0, found {config.engine_overhead_ms}; "
                        "measure it with benchmarks/bench_engine_fidelity.py or leave it at 0.")
    if config.request_timeout_ms is not None and not config.request_timeout_ms > 0:
        raise SpecError(f"request_timeout_ms must be > 0, found {config.request_timeout_ms}; omit it for no timeout.")
    ordered = _topological(plan)
    index = {s.stage: i for i, s in enumerate(ordered)}
    children = {p for s in ordered for p in s.after}
    streams = np.random.SeedSequence(config.seed).spawn(len(ordered))
    stages = []
    for stage in ordered:
        if stage.batch_size < 1 or stage.replicas < 1 or stage.batch_timeout_ms < 0:
            raise SpecError(f"plan stage '{stage.stage}': batch_size {stage.batch_size}, replicas {stage.replicas} "
                            f"and batch_timeout_ms {stage.batch_timeout_ms} must be >= 1, >= 1 and >= 0.")
        base, sigma = _service_table(stage, config.service)
        stages.append(StageModel(stage.stage, tuple(index[p] for p in stage.after), stage.batch_size,
                                 float(stage.batch_timeout_ms), stage.replicas, float(stage.fanout), base, sigma))
    sinks = tuple(i for i, s in enumerate(ordered) if s.stage not in children)
    return Prepared(tuple(stages), sinks, trace.arrival_ms, tuple(streams), config.service, config.queue_mode,
                    config.request_timeout_ms, float(config.engine_overhead_ms))
