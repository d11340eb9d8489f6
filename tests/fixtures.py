"""Shared builders for every test: specs, catalogs, profile tables, plans, requests, an exhaustive solver, and
the profiler's tiny ONNX models, manifests and torch factories (named in manifests as "tests.fixtures:NAME")."""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

from planner import io
from planner.estimate import flow
from planner.estimate import latency as lat
from planner.estimate.candidates import timeouts_for
from planner.estimate.paths import aggregate_accuracy, end_to_end_p99_ms
from planner.ilp.backends import SolverName
from planner.optimize import PlanRequest, make_plan
from planner.plan import (
    Plan,
    ServiceCurve,
    ServicePoint,
    SolverReport,
    SolveStatus,
    StagePlan,
)
from planner.spec import HardwareCatalog, MaxAccuracy, MinCost, PipelineSpec, Weighted
from profiler.schema import ProfileRow, ProfileTable
from planner.traces import Trace, poisson

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
SYNTHETIC = CONFIGS / "synthetic"  # synthetic-profile examples: fixed inputs of golden plans and tuner tests


def synthetic_workdir(folder: Path) -> Path:
    """``folder`` holding a copy of the synthetic video example (spec.yaml, profiles.csv, hardware.yaml),
    for tests that edit the files a command reads."""
    import shutil

    for name in ("hardware.yaml", "profiles.csv"):
        shutil.copy(SYNTHETIC / name, folder / name)
    (folder / "spec.yaml").write_text((SYNTHETIC / "video.yaml").read_text())
    return folder


def make_catalog(entries: list[dict]) -> HardwareCatalog:
    return HardwareCatalog.model_validate({"schema_version": 1, "hardware": entries})


def make_spec(**fields) -> PipelineSpec:
    return PipelineSpec.model_validate({"schema_version": 1, "name": "t", **fields})


def linear_profile(model: str, variant: str, hardware: str, batches, overhead_ms: float,
                   per_item_ms: float, accuracy: float, spread: float = 1.2) -> list[ProfileRow]:
    """Rows with latency(b) = overhead + per_item * b (the INFaaS linear fit)."""
    rows = []
    for b in batches:
        p50 = overhead_ms + per_item_ms * b
        rows.append(ProfileRow(model, variant, hardware, b, p50, p50 * spread, 1000.0 * b / p50, accuracy))
    return rows


@dataclass(frozen=True)
class Brute:
    """The best plan found by enumerating every configuration (same latency model, no pruning)."""

    feasible: bool
    objective: float | None = None
    cost: float | None = None
    accuracy: float | None = None


def stage_configs(request: PlanRequest, stage_name: str, request_scv: float) -> list[tuple]:
    """Every (variant, hardware, batch, timeout, replicas) of a stage that carries its load, with
    (cost, latency_ms, accuracy, hardware, replicas, mean_ms), at this arrival scv; replicas scanned 1..max_replicas."""
    spec, rows = request.spec, request.profiles.rows
    stage = spec.stage(stage_name)
    hardware = request.catalog.by_name()
    load = spec.arrival_rps * stage.fanout
    batches = stage.batch_sizes or spec.batch_sizes
    by_vh: dict[tuple[str, str], dict[int, object]] = {}
    for row in rows:
        if row.model == stage.model and row.batch_size in batches:
            by_vh.setdefault((row.variant, row.hardware), {})[row.batch_size] = row
    out = []
    for row in rows:
        if row.model != stage.model or row.batch_size not in batches:
            continue
        if stage.variants and row.variant not in stage.variants:
            continue
        allowed_hw = stage.hardware or spec.hardware
        if allowed_hw and row.hardware not in allowed_hw:
            continue
        hw = hardware[row.hardware]
        service = flow.batch_service(by_vh[(row.variant, row.hardware)], batches, row.batch_size)
        for timeout in timeouts_for(row.batch_size, load, spec.batch_timeout_quantiles):
            queue = lat.StageQueue(service, load, timeout, flow.item_scv(request_scv, stage.fanout), stage.fanout)
            for est in queue.scan(1, stage.max_replicas or spec.max_replicas):
                if est.utilization > spec.max_utilization * (1 + 1e-9):
                    continue
                out.append((est.replicas * hw.usd_per_hour, est.latency.total_ms, row.accuracy, row.hardware,
                            est.replicas, est.mean_ms))
    return out


def brute_force(request: PlanRequest, request_scv: dict[str, float] | None = None) -> Brute:
    """The optimum by enumeration, each later stage at the given arrival scv (default: the pipeline's cv^2)."""
    spec = request.spec
    names = [s.name for s in spec.stages]
    scv = {s.name: (request_scv or {}).get(s.name, spec.arrival_cv ** 2) for s in spec.stages}
    per_stage = [stage_configs(request, n, scv[n]) for n in names]
    caps = {h.name: h.max_units for h in request.catalog.hardware if h.max_units is not None}
    objective = spec.objective
    best: tuple | None = None
    for combo in itertools.product(*per_stage):
        latency = end_to_end_p99_ms(spec, {n: c[5] for n, c in zip(names, combo)}, {n: c[1] for n, c in zip(names, combo)})
        if latency > spec.slo_ms:
            continue
        if caps:
            used: dict[str, int] = {}
            for c in combo:
                used[c[3]] = used.get(c[3], 0) + c[4]
            if any(used.get(h, 0) > cap for h, cap in caps.items()):
                continue
        cost = sum(c[0] for c in combo)
        acc = aggregate_accuracy([c[2] for c in combo], spec.accuracy)
        if isinstance(objective, MinCost):
            if acc < objective.min_accuracy * (1 - 1e-9):
                continue
            key = (cost, -acc)
        elif isinstance(objective, MaxAccuracy):
            if cost > objective.budget_usd_per_hour * (1 + 1e-9):
                continue
            key = (-acc, cost)
        else:
            assert isinstance(objective, Weighted)
            key = (-(objective.accuracy_weight * acc - objective.cost_weight * cost), cost)
        if best is None or key < best[0]:
            best = (key, cost, acc)
    if best is None:
        return Brute(False)
    key, cost, acc = best
    return Brute(True, key[0], cost, acc)


def objective_value(plan, spec: PipelineSpec) -> float:
    """The same objective key[0] as brute_force uses, computed from a plan."""
    objective = spec.objective
    if isinstance(objective, MinCost):
        return plan.cost_usd_per_hour
    if isinstance(objective, MaxAccuracy):
        return -plan.accuracy
    return -(objective.accuracy_weight * plan.accuracy - objective.cost_weight * plan.cost_usd_per_hour)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def assert_same_run(fast, ref) -> None:
    np.testing.assert_array_equal(fast.completion_ms, ref.completion_ms)
    for f, r in zip(fast.stages, ref.stages):
        np.testing.assert_array_equal(f.request, r.request)
        np.testing.assert_array_equal(f.ready_ms, r.ready_ms)
        np.testing.assert_array_equal(f.start_ms, r.start_ms)
        np.testing.assert_array_equal(f.end_ms, r.end_ms)
        np.testing.assert_array_equal(f.batch, r.batch)
        np.testing.assert_array_equal(f.batch_items, r.batch_items)
        np.testing.assert_array_equal(f.completion_ms, r.completion_ms)


def random_plan(rng: np.random.Generator) -> Plan:
    """A small random pipeline: chain, diamond or fan-out DAG with random batching settings."""
    def rand_stage(name, after=(), fanout=1.0):
        batch = int(rng.choice([1, 2, 3, 4, 8]))
        return stage(name, after=after, batch=batch, timeout_ms=float(rng.choice([0.0, 5.0, 20.0])) if batch > 1 else 0.0,
                     replicas=int(rng.integers(1, 4)), fanout=fanout, p50_ms=float(rng.uniform(2, 15)),
                     p99_ms=float(rng.uniform(16, 40)), per_item_ms=float(rng.uniform(0, 3)))
    shape = rng.integers(3)
    if shape == 0:
        return plan_of(rand_stage("a"), rand_stage("b", ("a",)), rand_stage("c", ("b",)))
    if shape == 1:
        return plan_of(rand_stage("a"), rand_stage("b", ("a",), fanout=3.0), rand_stage("c", ("a",)),
                       rand_stage("d", ("b", "c")))
    return plan_of(rand_stage("a"), rand_stage("b", ("a",), fanout=2.5), rand_stage("c", ("b",), fanout=0.6),
                   rand_stage("e", ("a",)))


def plan_of(*stages: StagePlan, slo_ms: float = 1000.0, arrival_rps: float = 10.0) -> Plan:
    return Plan(pipeline="test", stages=tuple(stages), cost_usd_per_hour=1.0, accuracy=1.0,
                accuracy_aggregation="product", predicted_p99_ms=0.0, arrival_rps=arrival_rps, slo_ms=slo_ms,
                objective={"kind": "min_cost"}, solver=SolverReport("none", SolveStatus.OPTIMAL, 0.0, "usd_per_hour", 0.0, None))


def stage(name: str, *, after: tuple[str, ...] = (), batch: int = 1, timeout_ms: float = 0.0, replicas: int = 1,
          fanout: float = 1.0, p50_ms: float = 10.0, p99_ms: float = 20.0, per_item_ms: float = 0.0) -> StagePlan:
    """A StagePlan with a service curve: p50 = p50_ms + per_item_ms * (b - 1), p99 scaled alike."""
    curve = ServiceCurve.from_points({
        b: ServicePoint(p50_ms + per_item_ms * (b - 1), (p50_ms + per_item_ms * (b - 1)) * p99_ms / p50_ms)
        for b in sorted({1, 2, 4, 8, 16, 32, batch}) if b <= batch})
    return StagePlan(
        stage=name, model="m", variant="v", hardware="cpu", batch_size=batch, batch_timeout_ms=timeout_ms,
        replicas=replicas, capacity_items_per_s=0.0, utilization=0.0, predicted_latency_ms=0.0, latency_fill_ms=0.0,
        latency_wait_ms=0.0, latency_service_ms=0.0, accuracy=1.0, usd_per_hour=1.0, load_items_per_s=0.0, fanout=fanout,
        after=after, service_ms_by_batch=curve)


def plan_for(name: str, solver: SolverName = SolverName.CBC):
    return make_plan(request_for(name, solver))


def request_for(name: str, solver: SolverName = SolverName.CBC) -> PlanRequest:
    return io.load_request(SYNTHETIC / f"{name}.yaml", solver=solver)


def plan_at(request: PlanRequest, rps: float):
    return make_plan(replace(request, spec=request.spec.model_copy(update={"arrival_rps": rps})))


@lru_cache(maxsize=None)
def video_request() -> PlanRequest:
    return io.load_request(SYNTHETIC / "video.yaml")


@lru_cache(maxsize=None)
def one_stage_request() -> PlanRequest:
    """One stage on one CPU kind (20 s start-up, 5 s load): replicas scale linearly with the rate."""
    catalog = make_catalog([{"name": "cpu", "kind": "cpu", "cores": 2, "usd_per_hour": 0.1, "startup_s": 20}])
    rows = [replace(r, load_time_s=5.0) for r in linear_profile("m", "v", "cpu", (1, 2, 4), 20.0, 30.0, 0.9)]
    spec = make_spec(stages=[{"name": "s", "model": "m"}], slo_ms=1000, arrival_rps=10, batch_sizes=[1, 2, 4],
                     max_replicas=64)
    return PlanRequest(spec=spec, catalog=catalog, profiles=ProfileTable(tuple(rows)))


# Resource-class offers of one_stage_request's CPU (profile_as: planned from its rows).
SPOT_ENTRY = {"name": "cpu-spot", "kind": "cpu", "cores": 2, "usd_per_hour": 0.04, "class": "spot",
              "profile_as": "cpu", "startup_s": 20, "preemptions_per_hour": 1.0, "replacement_s": 60}
FUNCTION_ENTRY = {"name": "fn", "kind": "cpu", "cores": 2, "class": "serverless", "profile_as": "cpu",
                  "usd_per_second": 0.0001, "usd_per_request": 1e-6, "cold_start_ms": 500, "max_concurrency": 8,
                  "keep_warm_s": 60}


@lru_cache(maxsize=None)
def classes_request() -> PlanRequest:
    """one_stage_request's CPU plus a spot offer and a function of the same machine (profile_as)."""
    from planner.resources import expand_profiles

    base = one_stage_request()
    catalog = HardwareCatalog.model_validate({"schema_version": 1, "hardware": [
        *(h.model_dump() for h in base.catalog.hardware), SPOT_ENTRY, FUNCTION_ENTRY]})
    spec = base.spec.model_copy(update={"hardware": ("cpu",)})
    return replace(base, spec=spec, catalog=catalog, profiles=expand_profiles(base.profiles, catalog))


def plan_on(request: PlanRequest, hardware: str, rps: float) -> Plan:
    """The optimal plan of ``request`` at ``rps`` with every stage on ``hardware``."""
    spec = request.spec.model_copy(update={"hardware": (hardware,), "arrival_rps": rps})
    return make_plan(replace(request, spec=spec))


@lru_cache(maxsize=None)
def model_misranked_request() -> PlanRequest:
    """Two chained stages on CPU (0.10 USD/h) or GPU (0.45 USD/h), CV-2 arrivals at 30.2 rps, SLO 22.7 ms
    (instance 5 of benchmarks/bench_optimality.py, seed 0): latency(b) = 0.3 + ms_per_work x work x
    b^exponent (CPU 1.0 ms, exponent 0.95; GPU 0.2 ms, exponent 0.55), p99 = spread x p50. The model
    rates a GPU replica per stage with large batches far above the SLO (pred/sim ~ 2), so that plan,
    which meets the SLO in simulation, is no model SLO's optimum: only a search under the simulator
    finds it (tests/test_verify.py)."""
    catalog = make_catalog([{"name": "cpu", "kind": "cpu", "cores": 2, "usd_per_hour": 0.1},
                            {"name": "gpu", "kind": "cpu", "cores": 2, "usd_per_hour": 0.45}])
    batches = (1, 2, 4, 8, 16)
    hardware = {"cpu": (1.0, 0.95), "gpu": (0.2, 0.55)}
    # (model, variant): work, accuracy, spread on cpu, spread on gpu
    variants = {("m0", "v0"): (18.5421, 0.803, 1.479, 1.3564), ("m0", "v1"): (23.3694, 0.8126, 1.5207, 1.1333),
                ("m1", "v0"): (9.9191, 0.8818, 1.583, 1.3811), ("m1", "v1"): (7.9539, 0.8459, 1.5441, 1.2129)}
    rows = []
    for (model, variant), (work, accuracy, spread_cpu, spread_gpu) in variants.items():
        for name, spread in (("cpu", spread_cpu), ("gpu", spread_gpu)):
            ms_per_work, exponent = hardware[name]
            for b in batches:
                p50 = 0.3 + ms_per_work * work * b ** exponent
                rows.append(ProfileRow(model, variant, name, b, p50, p50 * spread, 1000.0 * b / p50, accuracy))
    spec = make_spec(stages=[{"name": "s0", "model": "m0"}, {"name": "s1", "model": "m1", "after": ["s0"]}],
                     slo_ms=22.7, arrival_rps=30.2, arrival_cv=2.0, batch_sizes=list(batches), max_replicas=16)
    return PlanRequest(spec=spec, catalog=catalog, profiles=ProfileTable(tuple(rows)))


def model_misranked_trace() -> Trace:
    """The benchmark's trace for model_misranked_request: Gamma renewal, ~20,000 requests, seed 4."""
    from planner.traces import gamma

    return gamma(30.2, 2.0, 20_000 / 30.2, np.random.default_rng(4))

# ---- profiler builders: tiny ONNX models and manifests made on the spot -------------------------

FAST_METHOD = {"warmup_runs": 1, "warmup_ms": 0, "window_ms": 5, "min_window_requests": 5,
               "max_windows": 3, "max_point_s": 0.3}


def tiny_classifier(path: Path, seed: int = 0, hidden: int = 16) -> Path:
    """An MLP 4 -> hidden -> 3 (MatMul + Add + Relu) with a dynamic batch, as an ONNX file."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = rng.normal(size=(4, hidden)).astype(np.float32)
    b1 = rng.normal(size=(hidden,)).astype(np.float32)
    w2 = rng.normal(size=(hidden, 3)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["input", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "w2"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"), numpy_helper.from_array(w2, "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def predict(path: Path, inputs: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": inputs})[0].argmax(axis=1)


def dataset_with_accuracy(model_path: Path, out: Path, n: int = 40, correct: int = 30) -> Path:
    """An .npz whose labels agree with the model's predictions on exactly ``correct`` of ``n`` items."""
    rng = np.random.default_rng(1)
    inputs = rng.normal(size=(n, 4)).astype(np.float32)
    labels = predict(model_path, inputs)
    labels[correct:] = (labels[correct:] + 1) % 3
    np.savez(out, inputs=inputs, labels=labels)
    return out


def write_manifest(folder: Path, variants: list[dict], batch_sizes=(1, 2), hardware=None, extra=None) -> Path:
    """A manifest with one model 'tiny' (input [4]) evaluated on 'eval.npz' in ``folder``."""
    data = {
        "schema_version": 1,
        "name": "tiny",
        "hardware": hardware or [{"name": "cpu-1", "threads": 1}],
        "batch_sizes": list(batch_sizes),
        "method": FAST_METHOD,
        "models": [{
            "name": "tiny",
            "input": {"name": "input", "shape": [4]},
            "evaluation": {"dataset": "eval.npz"},
            "calibration": "eval.npz",
            "variants": variants,
        }],
    }
    data.update(extra or {})
    path = folder / "manifest.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def tiny_setup(folder: Path) -> Path:
    """tiny.onnx, broken.onnx and eval.npz (accuracy 0.75 for tiny.onnx) in ``folder``."""
    model = tiny_classifier(folder / "tiny.onnx")
    (folder / "broken.onnx").write_bytes(b"this is not an onnx file")
    dataset_with_accuracy(model, folder / "eval.npz")
    return model


def tiny_torch_module(hidden: int = 8):
    """A torch factory for manifests: 'tests.fixtures:tiny_torch_module'."""
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 3))


def misbehaving_torch_module(how: str):
    """A torch factory whose forward pass crashes the process ('segfault') or never returns ('hang'),
    as a broken runtime or custom op would: 'tests.fixtures:misbehaving_torch_module'."""
    import signal
    import time

    import torch

    class Misbehaving(torch.nn.Module):
        def forward(self, x):
            if how == "segfault":
                os.kill(os.getpid(), signal.SIGSEGV)
            time.sleep(3600)
            return x

    return Misbehaving()


def torch_module_failing_above(max_batch: int):
    """A torch factory whose forward pass raises for batches larger than ``max_batch`` (as an out-of-
    memory error would): 'tests.fixtures:torch_module_failing_above'."""
    import torch

    class Limited(torch.nn.Module):
        def forward(self, x):
            if x.shape[0] > max_batch:
                raise RuntimeError(f"out of memory at batch {x.shape[0]}")
            return x * 2.0

    return Limited()


@lru_cache(maxsize=None)
def burst_trace() -> Trace:
    """10 rps with a 60 s burst at 60 rps from 100 s."""
    rng = np.random.default_rng(13)
    low1, high, low2 = poisson(10.0, 100.0, rng), poisson(60.0, 60.0, rng), poisson(10.0, 240.0, rng)
    arrivals = np.concatenate([low1.arrival_ms, 100_000.0 + high.arrival_ms, 160_000.0 + low2.arrival_ms])
    return Trace(arrivals, 400_000.0, "burst")
