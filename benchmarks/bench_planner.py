"""Planner solve time against problem size, per solver (median of repeats). Not a test.

Instances: chains of S stages, V variants per stage, 6 batch sizes (1..32), H hardware kinds,
seeded random profiles with latency(b) = overhead + per_item * b**e (e < 1 on accelerators),
accuracy rising with compute, a binding p99 SLO and an accuracy floor (objective min_cost).

Reported per size and solver, each the median of repeats after a warm-up: option estimation
(latency model over every variant x hardware x batch x timeout x replicas, then pruning); one ILP
solve to proven optimality (the min-cost program: building it for the solver and solving); and the
whole plan as `pipeplan plan` makes it (estimation + the min-cost solve + the tie-break solve that
picks the most accurate of equally cheap plans + the re-check).

    python benchmarks/bench_planner.py [--repeats 5] [--solvers cbc highs cpsat] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.estimate.candidates import build_candidates  # noqa: E402
from planner.ilp.backends import SolverName, solve  # noqa: E402
from planner.ilp.formulation import Goal, Problem, formulate  # noqa: E402
from planner.optimize import PlanRequest, hardware_units, make_plan  # noqa: E402
from planner.spec import HardwareCatalog, PipelineSpec  # noqa: E402
from profiler.schema import ProfileRow, ProfileTable  # noqa: E402

BATCHES = (1, 2, 4, 8, 16, 32)
SIZES = [(2, 3, 1), (2, 5, 2), (5, 5, 2), (9, 9, 2), (9, 9, 4), (12, 7, 3), (16, 3, 2), (16, 10, 4)]
HARDWARE = [("cpu-2", 0.085, 1.0, 1.0), ("cpu-8", 0.34, 0.3, 1.0), ("gpu-t4", 0.526, 0.04, 0.55),
            ("gpu-a10g", 1.006, 0.02, 0.55)]


def instance(stages: int, variants: int, hardware: int, seed: int = 0) -> PlanRequest:
    rng = np.random.default_rng(seed)
    hw = HARDWARE[:hardware]
    catalog = HardwareCatalog.model_validate({"schema_version": 1, "hardware": [
        {"name": n, "kind": "gpu" if "gpu" in n else "cpu", "cores": 4, "gpus": int("gpu" in n), "usd_per_hour": p}
        for n, p, _, _ in hw]})
    rows, spec_stages, base_ms = [], [], 0.0
    for s in range(stages):
        gflops = np.sort(rng.uniform(0.5, 12.0, variants))
        accuracy = np.sort(rng.uniform(0.80, 0.99, variants))
        for v in range(variants):
            for name, _, ms_per_gflop, exponent in hw:
                for b in BATCHES:
                    p50 = (1.0 + ms_per_gflop * 10 * gflops[v] * b**exponent) * rng.uniform(0.97, 1.03)
                    rows.append(ProfileRow(f"m{s}", f"v{v}", name, b, p50, p50 * rng.uniform(1.05, 1.4),
                                           1000.0 * b / p50, float(accuracy[v])))
        base_ms += 10 * float(np.median(gflops)) * hw[0][2] + 1.0
        spec_stages.append({"name": f"s{s}", "model": f"m{s}", "after": [f"s{s - 1}"] if s else []})
    spec = PipelineSpec.model_validate({
        "schema_version": 1, "name": f"bench-{stages}x{variants}x{hardware}", "stages": spec_stages,
        "slo_ms": base_ms * 1.5, "arrival_rps": 50.0, "batch_sizes": list(BATCHES), "max_replicas": 64,
        "objective": {"kind": "min_cost", "min_accuracy": round(0.9 ** stages, 6)},
    })
    return PlanRequest(spec=spec, catalog=catalog, profiles=ProfileTable(tuple(rows)), record_timing=True)


def _median_ms(fn, repeats: int) -> tuple[float, object]:
    fn()  # warm-up: first-call costs (imports, CP-SAT start-up) are not part of the figure
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def measure(request: PlanRequest, solver: SolverName, repeats: int) -> dict:
    request = PlanRequest(**{**request.__dict__, "solver": solver})
    spec = request.spec
    estimate_ms, cands = _median_ms(lambda: build_candidates(spec, request.catalog, request.profiles), repeats)
    problem = Problem(Goal.MIN_COST, spec.accuracy, accuracy_floor=spec.objective.min_accuracy)
    form = formulate(spec, cands, hardware_units(request.catalog), problem)
    solve_ms, solution = _median_ms(lambda: solve(form.model, solver), repeats)
    plan_ms, plan = _median_ms(lambda: make_plan(request), repeats)
    return {"estimate_ms": estimate_ms, "solve_ms": solve_ms, "plan_ms": plan_ms,
            "options": sum(len(s.options) for s in cands.stages), "status": solution.status,
            "cost": plan.cost_usd_per_hour}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--solvers", nargs="+", default=[s.value for s in SolverName])
    args = parser.parse_args()
    print(f"# machine: {platform.machine()}, {_cpu_model()}, python {platform.python_version()}, "
          f"{os.cpu_count()} cores; median of {args.repeats} repeats after one warm-up")
    print(f"# load average at start: {os.getloadavg()[0]:.2f}")
    print("| stages x variants x batches x hardware | options kept | solver | estimation (ms) | one ILP solve (ms) "
          "| whole plan (ms) | status | cost USD/h |")
    print("|---|---|---|---|---|---|---|---|")
    for stages, variants, hardware in SIZES:
        request = instance(stages, variants, hardware)
        costs = set()
        for solver in args.solvers:
            r = measure(request, SolverName(solver), args.repeats)
            costs.add(round(r["cost"], 6))
            print(f"| {stages} x {variants} x {len(BATCHES)} x {hardware} | {r['options']} | {solver} | "
                  f"{r['estimate_ms']:.1f} | {r['solve_ms']:.1f} | {r['plan_ms']:.1f} | {r['status']} | "
                  f"{r['cost']:.4f} |", flush=True)
        if len(costs) > 1:
            print(f"WARNING: solvers disagree on the optimum: {sorted(costs)}")
    print(f"# load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
