"""IPA's video pipeline as a pipeplan world: its profiles, accuracies, SLA, objective and logged decisions.

Reads ../shared/data/ipa (see its SOURCE.md; used for comparison only, nothing is copied):

- profiles/series-71.csv (yolo) and series-72.csv (resnet-human), the rows at the offered load IPA's
  optimiser used (20 requests/s): latency p50/p99 from ``model_latency_s_*`` (seconds -> ms),
  throughput ``throughput_max`` (capped by that load: planner.tuner.capacity re-plans it);
- accuracies.yaml, video: YOLOv5 mAP and ResNet top-1, in percent -> fractions;
- a hardware catalog of 1, 2, 4 and 8 cores at one unit per core-hour (so USD/h reads as cores,
  IPA's cost) with no start-up delay (IPA's decisions applied at once);
- the spec: yolo -> resnet-human, SLA 4.598 s, objective ``2 x accuracy - cores`` (IPA's alpha=2,
  beta=1; its batch term gamma=1e-6 is left out), pipeline accuracy the product of the stages';
- runs/metaseries-18-decision-trace.csv: IPA's per-step decisions (variant, cores, replicas, batch)
  and runs/metaseries-18-summary.csv: its logged mean cores and accuracy, per load pattern.

Benchmark-side I/O only (benchmarks/ is an edge, like the CLI).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from planner.optimize import PlanRequest
from planner.plan import Plan
from planner.spec import HardwareCatalog, PipelineSpec
from planner.tuner.planbook import PlanBook, StageKey
from profiler.schema import ProfileRow, ProfileTable

SLA_S = 4.5982  # metaseries-18-summary.csv, video
STAGES = (("yolo", 71, "crop"), ("resnet-human", 72, "classification"))  # (stage, profile series, accuracy key)
PROFILED_LOAD_RPS = 20.0
CORES = (1, 2, 4, 8)
# The segments file's columns and the decision trace's names for the same windows.
WINDOWS = (("bursty", "bursty"), ("steady_low", "steady low"), ("steady_high", "steady high"),
           ("fluctuating", "fluctuating"))


def _hw(cores: int) -> str:
    return f"cpu-{cores}"


def profiles(ipa: Path) -> ProfileTable:
    """IPA's video profiles at the load its optimiser used, as a pipeplan profile table."""
    accuracies = yaml.safe_load((ipa / "accuracies.yaml").read_text())["video"]
    rows = []
    for stage, series, key in STAGES:
        with (ipa / "profiles" / f"series-{series}.csv").open() as f:
            for r in csv.DictReader(f):
                if float(r["load"]) != PROFILED_LOAD_RPS or not r["model_latency_s_p50"]:
                    continue
                p50, p99, tput = (float(r[c]) for c in ("model_latency_s_p50", "model_latency_s_p99", "throughput_max"))
                if not all(math.isfinite(v) and v > 0 for v in (p50, p99, tput)):
                    continue
                rows.append(ProfileRow(stage, r["model_variant"], _hw(int(r["cpu_request"])), int(r["max_batch_size"]),
                                       1000.0 * p50, 1000.0 * max(p99, p50), tput,
                                       float(accuracies[key][r["model_variant"]]) / 100.0,
                                       samples=int(float(r["n_requests"]))))
    return ProfileTable(tuple(rows), {"source": "IPA series-71/72 at 20 rps (../shared/data/ipa)"})


def request(ipa: Path, cores: tuple[int, ...] = CORES) -> PlanRequest:
    catalog = HardwareCatalog.model_validate({"schema_version": 1, "hardware": [
        {"name": _hw(c), "kind": "cpu", "cores": c, "usd_per_hour": float(c), "startup_s": 0.0} for c in CORES]})
    spec = PipelineSpec.model_validate({
        "schema_version": 1, "name": "ipa-video", "slo_ms": 1000.0 * SLA_S, "arrival_rps": 10.0,
        "objective": {"kind": "weighted", "accuracy_weight": 2.0, "cost_weight": 1.0}, "accuracy": "product",
        "batch_sizes": [1, 2, 8, 32, 64], "max_replicas": 32, "hardware": [_hw(c) for c in cores],
        "stages": [{"name": "yolo", "model": "yolo"}, {"name": "resnet-human", "model": "resnet-human",
                                                       "after": ["yolo"]}]})
    return PlanRequest(spec=spec, catalog=catalog, profiles=profiles(ipa))


@dataclass(frozen=True)
class StageDecision:
    variant: str
    cores: int
    replicas: int
    batch: int


@dataclass(frozen=True)
class Decision:
    """IPA's choice at one 10 s step, and the load it planned for."""

    step: int
    predicted_rps: float
    stages: dict[str, StageDecision]


def decisions(ipa: Path, window: str) -> tuple[Decision, ...]:
    """IPA's own run (not a baseline's) on one load pattern of the video pipeline, step by step."""
    steps: dict[int, Decision] = {}
    with (ipa / "runs" / "metaseries-18-decision-trace.csv").open() as f:
        for r in csv.DictReader(f):
            if r["pipeline"] != "video" or not r["metadata"].startswith(f"{window} - ipa - "):
                continue
            step = int(r["step"])
            d = steps.setdefault(step, Decision(step, float(r["predicted_load_rps"]), {}))
            d.stages[r["stage"]] = StageDecision(r["variant"], int(r["cpu_per_replica"]), int(r["replicas"]),
                                                 int(r["batch"]))
    return tuple(steps[k] for k in sorted(steps))


@dataclass(frozen=True)
class LoggedScore:
    mean_cores: float
    mean_accuracy: float

    def objective(self) -> float:
        return 2.0 * self.mean_accuracy - self.mean_cores


def logged_score(ipa: Path, window: str) -> LoggedScore:
    """IPA's own logged mean cost (cores) and mean pipeline accuracy on a window (metaseries-18-summary.csv)."""
    with (ipa / "runs" / "metaseries-18-summary.csv").open() as f:
        for r in csv.DictReader(f):
            if r["pipeline"] == "video" and r["approach"] == "ipa" and r["load"] == window:
                return LoggedScore(float(r["mean_cost_cores"]), float(r["mean_logged_acc_product"]))
    raise KeyError(f"no IPA video row for load '{window}' in metaseries-18-summary.csv")


def decision_plans(book: PlanBook, steps: tuple[Decision, ...]) -> tuple[Plan, ...]:
    """Each logged decision as a pipeplan plan: the configuration pinned, IPA's replica counts.

    The batch timeout is the planner's for that configuration at the load IPA predicted (or the
    highest grid load the configuration serves alone); the replica counts are then IPA's, and the
    stage's cost and capacity scale with them.
    """
    plans = []
    for d in steps:
        pin = tuple((s, StageKey(c.variant, _hw(c.cores), c.batch)) for s, c in d.stages.items())
        base = book.pinned_capped(max(d.predicted_rps, 1.0), pin)
        if base is None:
            raise ValueError(f"IPA's step {d.step} configuration {pin} has no plan even at 1 request/s")
        plans.append(with_replicas(base, {s: c.replicas for s, c in d.stages.items()}))
    return tuple(plans)


def with_replicas(plan: Plan, replicas: dict[str, int]) -> Plan:
    """``plan`` with the given replica counts per stage; cost and capacity scaled (latency fields as solved)."""
    stages = []
    for s in plan.stages:
        n = replicas.get(s.stage, s.replicas)
        stages.append(replace(s, replicas=n, usd_per_hour=s.usd_per_hour * n / s.replicas,
                              capacity_items_per_s=s.capacity_items_per_s * n / s.replicas))
    return replace(plan, stages=tuple(stages), cost_usd_per_hour=sum(s.usd_per_hour for s in stages))
