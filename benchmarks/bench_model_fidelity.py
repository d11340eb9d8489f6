"""How faithful is the planner's latency model? Predicted against simulated p99 on random plans.

For seeded random pipelines (2-4 stages, chains and DAGs, fan-out, 1-3 hardware kinds, batch sizes
1..32, arrival CV 0.5..2), the planner makes its optimal plan; the simulator then replays Gamma
arrivals at the planned rate and CV (lognormal service fitted to each batch size's p50/p99; long
enough for >= 2,000 requests over the p99) and measures each stage's p99 and the end-to-end p99.

Reported: the ratio simulated / predicted for each stage and end to end (and end to end by arrival
CV, the safety target being at CV <= 1.5). A ratio <= 1 means the
model was conservative (safe: the plan meets its SLO with room to spare); > 1 means it was
optimistic (the plan would miss its SLO on that arrival process, which `--verify` catches).

    python benchmarks/bench_model_fidelity.py [--instances 40] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.errors import InfeasibleError  # noqa: E402
from planner.optimize import PlanRequest, make_plan  # noqa: E402
from planner.sim import SimConfig, simulate  # noqa: E402
from planner.spec import HardwareCatalog, PipelineSpec  # noqa: E402
from planner.traces import gamma  # noqa: E402
from profiler.schema import ProfileRow, ProfileTable  # noqa: E402

BATCHES = (1, 2, 4, 8, 16, 32)
HARDWARE = [("cpu", 0.1, 1.0, 1.0), ("fast-cpu", 0.35, 0.3, 1.0), ("gpu", 0.55, 0.05, 0.55)]


def instance(rng: np.random.Generator) -> PlanRequest:
    n_hw = int(rng.integers(1, 4))
    hw = HARDWARE[:n_hw]
    catalog = HardwareCatalog.model_validate({"schema_version": 1, "hardware": [
        {"name": n, "kind": "cpu", "cores": 2, "usd_per_hour": p} for n, p, _, _ in hw]})
    n_stages = int(rng.integers(2, 5))
    shape = rng.choice(["chain", "fork", "join"])
    rows, stages = [], []
    for s in range(n_stages):
        parents = {"chain": [f"s{s - 1}"], "fork": ["s0"], "join": [f"s{p}" for p in range(s)]}[str(shape)]
        stages.append({"name": f"s{s}", "model": f"m{s}", "after": parents if s else [],
                       "fanout": float(rng.choice([1.0, 1.0, 1.0, 3.0, 0.5]))})
        for v in range(int(rng.integers(1, 4))):
            gflops, accuracy = float(rng.uniform(0.2, 8.0)), float(rng.uniform(0.7, 0.99))
            for name, _, ms_per_gflop, exponent in hw:
                spread = float(rng.uniform(1.05, 1.6))
                for b in BATCHES:
                    p50 = 0.5 + ms_per_gflop * 10 * gflops * b**exponent
                    rows.append(ProfileRow(f"m{s}", f"v{v}", name, b, p50, p50 * spread, 1000.0 * b / p50, accuracy))
    spec = PipelineSpec.model_validate({
        "schema_version": 1, "name": "fidelity", "stages": stages,
        "slo_ms": float(rng.uniform(60, 600)), "arrival_rps": float(rng.uniform(5, 200)),
        "arrival_cv": float(rng.choice([0.5, 1.0, 1.5, 2.0])), "batch_sizes": list(BATCHES), "max_replicas": 64,
    })
    return PlanRequest(spec=spec, catalog=catalog, profiles=ProfileTable(tuple(rows)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    stage_ratios, e2e_ratios, rows = [], [], []
    tried = 0
    while len(e2e_ratios) < args.instances:
        tried += 1
        request = instance(rng)
        try:
            plan = make_plan(request)
        except InfeasibleError:
            continue
        duration_s = max(120.0, 2000 * 100 / plan.arrival_rps)
        trace = gamma(plan.arrival_rps, request.spec.arrival_cv, duration_s, np.random.default_rng(len(e2e_ratios)))
        result = simulate(plan, trace, SimConfig(seed=1))
        e2e = result.summary.p99_ms / plan.predicted_p99_ms
        e2e_ratios.append(e2e)
        for st in result.stages:
            stage_ratios.append(st.p99_latency_ms / st.predicted_latency_ms)
        rows.append((len(e2e_ratios), len(plan.stages), request.spec.arrival_cv, plan.arrival_rps,
                     plan.predicted_p99_ms, result.summary.p99_ms, e2e,
                     max(s.utilization for s in plan.stages)))
    print(f"# {args.instances} feasible random instances ({tried} drawn), seed {args.seed}")
    print("| instance | stages | arrival CV | rps | predicted p99 (ms) | simulated p99 (ms) | simulated / predicted | max utilisation |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:g} | {r[3]:.1f} | {r[4]:.1f} | {r[5]:.1f} | {r[6]:.2f} | {r[7]:.2f} |")
    by_cv: dict[float, list[float]] = {}
    for r in rows:
        by_cv.setdefault(r[2], []).append(r[6])
    print("# end to end by arrival CV (the safety target: <= 1.05 at CV <= 1.5): " + "; ".join(
        f"CV {cv:g} max {max(v):.2f}, median {statistics.median(v):.2f} ({len(v)} plans)" for cv, v in sorted(by_cv.items())))
    for name, ratios in (("end to end", e2e_ratios), ("per stage", stage_ratios)):
        q = np.quantile(ratios, [0.0, 0.1, 0.5, 0.9, 1.0])
        over = sum(r > 1.0 for r in ratios)
        print(f"# {name}: simulated/predicted min {q[0]:.2f}, p10 {q[1]:.2f}, median {q[2]:.2f}, p90 {q[3]:.2f}, "
              f"max {q[4]:.2f}; optimistic (> 1) in {over} of {len(ratios)}; mean {statistics.fmean(ratios):.2f}")


if __name__ == "__main__":
    main()
