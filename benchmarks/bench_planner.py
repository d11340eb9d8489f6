"""Planner solve time against problem size, per solver (median of repeats). Not a test.

Instances: S stages, V variants per stage, 6 batch sizes (1..32), H hardware kinds, seeded random
profiles with latency(b) = overhead + per_item * b**e (e < 1 on accelerators), accuracy rising
with compute, a binding p99 SLO and an accuracy floor (objective min_cost). Below 32 stages the
pipeline is a chain; from 32 stages it is a DAG: a source, three parallel chains, a join and a
tail, the SLO scaled to the longest path (about a third of the stages).

Reported per size and solver, each the median of repeats after a warm-up:

- *options*: the first round's candidate set after pruning (the program keeps those of them no
  other beats or ties on cost, path term and accuracy: planner.ilp.formulation._ilp_pareto);
- *whole plan*: ``make_plan`` as ``pipeplan plan`` runs it (estimation, the min-cost solve, the
  tie-break solves, building the plan and the re-check), wall and CPU time (CPU time counts this
  process and its finished children, i.e. CBC);
- its split in CPU time: *candidates* (``build_candidates``, every call of the plan), *ILP build*
  (the formulation, and its translation into a pulp problem for CBC and HiGHS; CP-SAT's
  translation sits inside its solve), *solve* (the backend call less that translation; CBC's CPU
  time is its child process's; and the reduced-cost fixing's LP, planner.ilp.fixing), *re-check* (``recheck``) and *other* (the rest: building the
  Plan, the flow consistency check, routes).

The split is taken by wrapping those functions in this process (a benchmark's business, not the
library's); each part is the median over the repeats of its total within one plan. On a shared
machine CPU time is the figure to read: wall time grows with the load average.

    python benchmarks/bench_planner.py [--repeats 5] [--solvers cbc highs cpsat] [--sizes 16x10x4 64x10x4]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import planner.optimize as optimize_mod  # noqa: E402
import planner.solve as solve_mod  # noqa: E402
from planner.ilp import backends  # noqa: E402
from planner.ilp import formulation as formulation_mod  # noqa: E402
from planner.estimate.candidates import build_candidates  # noqa: E402
from planner.ilp.backends import SolverName  # noqa: E402
from planner.optimize import PlanRequest, make_plan  # noqa: E402
from planner.spec import HardwareCatalog, PipelineSpec  # noqa: E402
from profiler.schema import ProfileRow, ProfileTable  # noqa: E402

BATCHES = (1, 2, 4, 8, 16, 32)
SIZES = [(2, 3, 1), (2, 5, 2), (5, 5, 2), (9, 9, 2), (9, 9, 4), (12, 7, 3), (16, 3, 2), (16, 10, 4), (64, 10, 4)]
# Sizes of at least this many stages are DAGs: a source, three parallel chains, a join and a tail.
_DAG_FROM = 32
HARDWARE = [("cpu-2", 0.085, 1.0, 1.0), ("cpu-8", 0.34, 0.3, 1.0), ("gpu-t4", 0.526, 0.04, 0.55),
            ("gpu-a10g", 1.006, 0.02, 0.55)]
PARTS = ("candidates", "ilp_build", "solve", "recheck")


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
        spec_stages.append({"name": f"s{s}", "model": f"m{s}", "after": _parents(s, stages)})
    if stages >= _DAG_FROM:
        base_ms *= 3 / stages * (stages // 3 + 3) / 3  # the longest path has about a third of the stages
    spec = PipelineSpec.model_validate({
        "schema_version": 1, "name": f"bench-{stages}x{variants}x{hardware}", "stages": spec_stages,
        "slo_ms": base_ms * 1.5, "arrival_rps": 50.0, "batch_sizes": list(BATCHES), "max_replicas": 64,
        "objective": {"kind": "min_cost", "min_accuracy": round(0.9 ** stages, 6)},
    })
    return PlanRequest(spec=spec, catalog=catalog, profiles=ProfileTable(tuple(rows)), record_timing=True)


def _parents(s: int, stages: int) -> list[str]:
    """A chain, or for large sizes s0 -> three chains of (stages - 4) / 3 -> a join -> the tail."""
    if s == 0:
        return []
    if stages < _DAG_FROM:
        return [f"s{s - 1}"]
    width = (stages - 4) // 3
    body_end = 1 + 3 * width  # stages 1..body_end-1 are the three chains
    if s < body_end:
        return ["s0"] if (s - 1) % width == 0 else [f"s{s - 1}"]
    if s == body_end:
        return [f"s{width * k}" for k in (1, 2, 3)]
    return [f"s{s - 1}"]


class _Split:
    """CPU time (ms, this process and its finished children) of the wrapped functions during one plan."""

    def __init__(self) -> None:
        self.ms = dict.fromkeys(PARTS, 0.0)

    def wrap(self, part: str, fn, minus: str | None = None):
        """``fn`` timed as ``part``; time already booked to ``minus`` inside it is taken off again."""
        def timed(*args, **kwargs):
            start, inner = _cpu_s(), self.ms[minus] if minus else 0.0
            try:
                return fn(*args, **kwargs)
            finally:
                spent = (_cpu_s() - start) * 1000.0
                self.ms[part] += spent - ((self.ms[minus] - inner) if minus else 0.0)
        return timed


def _cpu_s() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def measure(request: PlanRequest, solver: SolverName, repeats: int) -> dict:
    """Median wall and CPU time of make_plan, and the median CPU time of each part of the split."""
    request = replace(request, solver=solver)
    targets = {"build_candidates": optimize_mod, "recheck": optimize_mod, "formulate": solve_mod,
               "solve": solve_mod, "_pulp_problem": backends}
    saved = {name: getattr(module, name) for name, module in targets.items()}
    # the first solve's presolve formulates in planner.optimize; the fixing LP (planner.ilp.fixing) is solving
    extra = {("formulate", optimize_mod): "ilp_build", ("relax", formulation_mod): "solve"}
    extra_saved = {key: getattr(key[1], key[0]) for key in extra}
    make_plan(request)  # warm-up: first-call costs (imports, CP-SAT start-up) are not part of the figure
    walls, cpus, parts, plan = [], [], {p: [] for p in PARTS + ("other",)}, None
    try:
        for _ in range(repeats):
            split = _Split()
            optimize_mod.build_candidates = split.wrap("candidates", saved["build_candidates"])
            optimize_mod.recheck = split.wrap("recheck", saved["recheck"])
            solve_mod.formulate = split.wrap("ilp_build", saved["formulate"])
            # the translation for pulp's solvers counts as building; CP-SAT's sits inside its solve
            backends._pulp_problem = split.wrap("ilp_build", saved["_pulp_problem"])
            solve_mod.solve = split.wrap("solve", saved["solve"], minus="ilp_build")
            for (name, module), part in extra.items():
                setattr(module, name, split.wrap(part, extra_saved[(name, module)]))
            cpu0, wall0 = _cpu_s(), time.perf_counter()
            plan = make_plan(request)
            walls.append((time.perf_counter() - wall0) * 1000.0)
            cpus.append((_cpu_s() - cpu0) * 1000.0)
            for p in PARTS:
                parts[p].append(split.ms[p])
            parts["other"].append(cpus[-1] - sum(split.ms.values()))
    finally:
        for name, module in targets.items():
            setattr(module, name, saved[name])
        for (name, module), fn in extra_saved.items():
            setattr(module, name, fn)
    cands = build_candidates(request.spec, request.catalog, request.profiles)
    return {"plan_ms": statistics.median(walls), "plan_cpu_ms": statistics.median(cpus),
            **{p: statistics.median(v) for p, v in parts.items()},
            "options": sum(len(s.options) for s in cands.stages), "status": plan.solver.status.value,
            "cost": plan.cost_usd_per_hour}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def _versions() -> str:
    import ortools
    import pulp
    import scipy
    from importlib.metadata import version
    return (f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
            f"pulp {pulp.__version__}, highspy {version('highspy')}, ortools {ortools.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--solvers", nargs="+", default=[s.value for s in SolverName])
    parser.add_argument("--sizes", nargs="+", default=None,
                        help="only these sizes, as SxVxH (e.g. 16x10x4 64x10x4); default: all")
    args = parser.parse_args()
    print(f"# machine: {platform.machine()}, {_cpu_model()}, {os.cpu_count()} cores; {_versions()}")
    print(f"# median of {args.repeats} repeats after one warm-up; load average at start: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| stages x variants x batches x hardware | shape | options | solver | whole plan, wall (ms) | whole plan, CPU (ms) "
          "| candidates, CPU (ms) | ILP build, CPU (ms) | solve, CPU (ms) | re-check, CPU (ms) | other, CPU (ms) | status | cost USD/h |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    sizes = SIZES if not args.sizes else [tuple(int(n) for n in a.split("x")) for a in args.sizes]
    for stages, variants, hardware in sizes:
        request = instance(stages, variants, hardware)
        shape = "DAG" if stages >= _DAG_FROM else "chain"
        costs = set()
        for solver in args.solvers:
            r = measure(request, SolverName(solver), args.repeats)
            costs.add(round(r["cost"], 6))
            print(f"| {stages} x {variants} x {len(BATCHES)} x {hardware} | {shape} | {r['options']} | {solver} | "
                  f"{r['plan_ms']:.1f} | {r['plan_cpu_ms']:.1f} | {r['candidates']:.1f} | {r['ilp_build']:.1f} | "
                  f"{r['solve']:.1f} | {r['recheck']:.1f} | {r['other']:.1f} | {r['status']} | {r['cost']:.4f} |",
                  flush=True)
        if len(costs) > 1:
            print(f"WARNING: solvers disagree on the optimum: {sorted(costs)}")
    print(f"# load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
