"""Measured against simulated latency of digits plans on the real tritonserver (issue 13, item 4).

Two parts, each deploying emitted plans on the tritonserver of the nvidia-pytriton wheel
(.venv-triton), replaying open-loop traces with planner.loadgen, and stopping the server by its pid:

``overhead``: the engine's own cost per hop. The planned digits variant (cnn64-int8s, service
about 0.07 ms per item, so what is measured is the engine) in plans of 1 or 2 stages with fan-out
1, 2 or 5 and batch size 1 is sent requests 100 ms apart (nothing queues). The measured latency less the simulated one is
fitted by least squares to ``c + h * visits`` (visits: stage visits of a request) and, to see
whether the cost is per item rather than per visit, to ``c + h * visits + i * items``.

``fidelity``: three digits plans that differ in batch size, timeout and replicas, each at two
Poisson loads, >= 600 requests per point (LoadGen's rule for a p99 is at least 459). Per point the
measured p50/p99 and the simulator's for the same plan and the same arrival times, with
``engine_overhead_ms`` 0 and with the fitted value.

    python benchmarks/bench_engine_fidelity.py overhead [--triton-python .venv-triton/bin/python]
    python benchmarks/bench_engine_fidelity.py fidelity --overhead-ms H
    python benchmarks/bench_engine_fidelity.py all        # both; markdown tables on stdout

Needs the project's environment (pip install -e '.[test,deploy]') and .venv-triton; about 8 minutes
on the 2-core machine. Never run it beside a Ray cluster (memory).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from planner import io  # noqa: E402
from planner.deploy import inputs as bodies  # noqa: E402
from planner.deploy import triton  # noqa: E402
from planner.emit import EmitTarget, emit  # noqa: E402
from planner.io.emit import load_inputs  # noqa: E402
from planner.emit.settings import DeploySettings  # noqa: E402
from planner.io.emit import write_results  # noqa: E402
from planner.ilp.backends import SolverName  # noqa: E402
from planner.loadgen import Bounds, Target, replay  # noqa: E402
from planner.optimize import make_plan  # noqa: E402
from planner.plan import Plan, ServiceCurve, ServicePoint  # noqa: E402
from planner.sim import SimConfig, simulate  # noqa: E402
from planner.sim.run import quantile  # noqa: E402
from planner.traces import Trace, poisson  # noqa: E402

MANIFEST = REPO / "configs" / "digits.manifest.yaml"
SPEC = REPO / "configs" / "digits.yaml"


def digits_plan(rate_rps: float, slo_ms: float) -> Plan:
    """The digits spec planned at ``rate_rps`` with ``slo_ms`` (measured profiles, max accuracy)."""
    request = io.load_request(SPEC, None, None, SolverName.CBC)
    spec = request.spec.model_copy(update={"arrival_rps": rate_rps, "slo_ms": slo_ms})
    return make_plan(dataclasses.replace(request, spec=spec))


def reshape(plan: Plan, stages: int | None = None, **changes) -> Plan:
    """``plan`` with every stage changed (and only its first ``stages`` stages kept)."""
    kept = plan.stages[:stages] if stages else plan.stages
    return dataclasses.replace(plan, stages=tuple(dataclasses.replace(s, **changes) for s in kept))


@dataclass(frozen=True)
class Measured:
    """One replayed trace: latency per request (ms, NaN when it failed) and the trace sent."""

    trace: Trace
    latency_ms: np.ndarray


def run_on_triton(plan: Plan, traces: list[Trace], work: Path, cache: Path, python: Path, name: str) -> list[Measured]:
    """Emit ``plan`` for Triton, deploy it, replay each trace (after a warm-up), stop the server."""
    folder = work / name
    shutil.rmtree(folder, ignore_errors=True)  # this script's own scratch folder from an earlier run
    folder.mkdir(parents=True)
    plan_file = folder / "plan.json"
    io.write_plan(plan, plan_file)
    write_results(emit(load_inputs(plan_file, MANIFEST, DeploySettings(), cache), EmitTarget.TRITON),
                  folder / "emitted")
    running = triton.start(folder / "emitted", folder / "run", python, str(plan_file))
    try:
        items = {s.stage: bodies.real_items(MANIFEST, s.model) for s in plan.stages}
        target = Target(running.infer_url, tuple(json.dumps(b).encode() for b in
                                                 bodies.triton_bodies(triton.entry_config(running), plan, items)))
        replay(target, Trace(np.arange(30) * 20.0, 600.0, name="warm-up"), Bounds())
        out = []
        for trace in traces:
            r = replay(target, trace, Bounds())
            out.append(Measured(trace, r.latency_ms))
        return out
    finally:
        triton.stop(running)


def simulated(plan: Plan, trace: Trace, overhead_ms: float, seed: int = 0) -> np.ndarray:
    config = SimConfig(seed=seed, engine_overhead_ms=overhead_ms, keep_requests=True)
    return simulate(plan, trace, config).latency_ms


def pct(latency_ms: np.ndarray, q: float) -> float:
    return quantile(np.where(np.isnan(latency_ms), np.inf, latency_ms), q)


# --- overhead ------------------------------------------------------------------------------------

SHAPES = ((1, 1), (1, 2), (1, 5), (2, 1), (2, 5))  # (stages, fan-out per stage)


def overhead(work: Path, cache: Path, python: Path, requests: int = 150) -> dict:
    """Measured - simulated p50 per shape, and the least-squares fits (per visit; per visit + per item)."""
    base = digits_plan(40.0, 50.0)
    trace = Trace(np.arange(requests) * 100.0, requests * 100.0, name="even-10rps")
    rows = []
    for stages, fanout in SHAPES:
        plan = reshape(base, stages, fanout=float(fanout), batch_size=1, batch_timeout_ms=0.0,
                       replicas=1)
        (m,) = run_on_triton(plan, [trace], work, cache, python, f"overhead-{stages}x{fanout}")
        sim = simulated(plan, trace, 0.0)
        rows.append({"stages": stages, "fanout": fanout, "items": stages * fanout,
                     "measured_p50_ms": pct(m.latency_ms, 0.5), "measured_p99_ms": pct(m.latency_ms, 0.99),
                     "simulated_p50_ms": pct(sim, 0.5), "failed": int(np.isnan(m.latency_ms).sum())})
    gap = np.array([r["measured_p50_ms"] - r["simulated_p50_ms"] for r in rows])
    visits = np.array([r["stages"] for r in rows], dtype=float)
    items = np.array([r["items"] for r in rows], dtype=float)
    per_visit, *_ = np.linalg.lstsq(np.column_stack([np.ones_like(visits), visits]), gap, rcond=None)
    per_item, *_ = np.linalg.lstsq(np.column_stack([np.ones_like(visits), visits, items]), gap, rcond=None)
    return {"rows": rows, "fit_visit": {"c_ms": per_visit[0], "h_ms": per_visit[1]},
            "fit_item": {"c_ms": per_item[0], "h_ms": per_item[1], "i_ms": per_item[2]}}


# --- fidelity ------------------------------------------------------------------------------------

def batched(plan: Plan, batch_size: int, timeout_ms: float, replicas: int) -> Plan:
    """``plan`` with new batching and replicas, each stage's service curve up to ``batch_size`` taken
    from the measured profile table (the plan carries its curve only up to its own batch size)."""
    rows = io.load_profiles(REPO / "configs" / "profiles" / "digits.csv").index()
    stages = []
    for s in plan.stages:
        curve = ServiceCurve.from_points({b: ServicePoint(r.latency_p50_ms, r.latency_p99_ms)
                                          for b in range(1, batch_size + 1)
                                          if (r := rows.get((s.model, s.variant, s.hardware, b))) is not None})
        stages.append(dataclasses.replace(s, batch_size=batch_size, batch_timeout_ms=timeout_ms, replicas=replicas,
                                          service_ms_by_batch=curve))
    return dataclasses.replace(plan, stages=tuple(stages))


def fidelity_plans() -> list[tuple[str, Plan]]:
    """The planner's plan at 40 rps (SLO 50 ms), and two variations of its batching and replicas."""
    base = digits_plan(40.0, 50.0)
    return [("A planned", base), ("B b4 t2ms r1", batched(base, 4, 2.0, 1)), ("C b8 t5ms r2", batched(base, 8, 5.0, 2))]


LOADS_RPS = (15.0, 40.0)


def fidelity(work: Path, cache: Path, python: Path, overhead_ms: float, requests: int = 600) -> list[dict]:
    rows = []
    for name, plan in fidelity_plans():
        traces = [poisson(rate, requests / rate, np.random.default_rng(int(rate)))
                  for rate in LOADS_RPS]
        measured = run_on_triton(plan, traces, work, cache, python, name.split()[0])
        for m in measured:
            bare, with_h = simulated(plan, m.trace, 0.0), simulated(plan, m.trace, overhead_ms)
            s = plan.stages[0]
            rows.append({"plan": name, "batch": s.batch_size, "timeout_ms": s.batch_timeout_ms,
                         "replicas": s.replicas, "load_rps": m.trace.arrival_ms.size / m.trace.duration_ms * 1000.0,
                         "requests": int(m.trace.arrival_ms.size), "failed": int(np.isnan(m.latency_ms).sum()),
                         "measured_p50_ms": pct(m.latency_ms, 0.5), "measured_p99_ms": pct(m.latency_ms, 0.99),
                         "sim_p50_ms": pct(bare, 0.5), "sim_p99_ms": pct(bare, 0.99),
                         "simh_p50_ms": pct(with_h, 0.5), "simh_p99_ms": pct(with_h, 0.99)})
    return rows


# --- output --------------------------------------------------------------------------------------

def machine() -> str:
    from importlib.metadata import version

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    import os

    return (f"{cpu}, {os.cpu_count()} logical CPUs, Linux {platform.release()}, Python {platform.python_version()}; "
            f"tritonserver 2.51.0 (nvidia-pytriton 0.7.0), onnxruntime {version('onnxruntime')}, "
            f"numpy {np.__version__}")


def print_overhead(o: dict) -> None:
    print("| stages | fan-out | items | measured p50 (ms) | measured p99 (ms) | simulated p50 (ms) | failed |")
    print("|---|---|---|---|---|---|---|")
    for r in o["rows"]:
        print(f"| {r['stages']} | {r['fanout']} | {r['items']} | {r['measured_p50_ms']:.2f} | "
              f"{r['measured_p99_ms']:.2f} | {r['simulated_p50_ms']:.3f} | {r['failed']} |")
    v, i = o["fit_visit"], o["fit_item"]
    print(f"\nfit per visit: gap = {v['c_ms']:.2f} + {v['h_ms']:.2f} x visits (ms)")
    print(f"fit per visit and item: gap = {i['c_ms']:.2f} + {i['h_ms']:.2f} x visits + {i['i_ms']:.2f} x items (ms)")


def print_fidelity(rows: list[dict], overhead_ms: float) -> None:
    print(f"| plan | batch | timeout (ms) | replicas | load (rps) | requests | failed | measured p50 / p99 (ms) | "
          f"simulated p50 / p99, h = 0 (ms) | simulated p50 / p99, h = {overhead_ms:.2f} ms (ms) | "
          "p99 gap with h |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        gap = r["measured_p99_ms"] / r["simh_p99_ms"] - 1.0
        print(f"| {r['plan']} | {r['batch']} | {r['timeout_ms']:g} | {r['replicas']} | {r['load_rps']:.1f} | "
              f"{r['requests']} | {r['failed']} | {r['measured_p50_ms']:.2f} / {r['measured_p99_ms']:.2f} | "
              f"{r['sim_p50_ms']:.2f} / {r['sim_p99_ms']:.2f} | {r['simh_p50_ms']:.2f} / {r['simh_p99_ms']:.2f} | "
              f"{gap:+.0%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("overhead", "fidelity", "all"))
    parser.add_argument("--overhead-ms", type=float, default=None, help="fidelity: the per-visit overhead to add")
    parser.add_argument("--triton-python", type=Path, default=REPO / ".venv-triton" / "bin" / "python")
    parser.add_argument("--work", type=Path, default=Path("/tmp/pp-engine-fidelity"))
    parser.add_argument("--cache-dir", type=Path, default=REPO / ".pipeplan-cache")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args()
    begin = time.monotonic()
    print(f"machine: {machine()}\n")
    out: dict = {}
    h = args.overhead_ms
    if args.part in ("overhead", "all"):
        out["overhead"] = overhead(args.work, args.cache_dir, args.triton_python.absolute())
        print_overhead(out["overhead"])
        h = out["overhead"]["fit_visit"]["h_ms"] if h is None else h
    sys.stdout.flush()
    if args.part in ("fidelity", "all"):
        if h is None:
            parser.error("fidelity needs --overhead-ms (or run 'all')")
        out["fidelity"] = fidelity(args.work, args.cache_dir, args.triton_python.absolute(), h)
        print()
        print_fidelity(out["fidelity"], h)
    print(f"\n{time.monotonic() - begin:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
