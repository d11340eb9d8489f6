"""Simulator speed and memory: request-stage visits per second (in process, against the same model
written with SimPy, and of the whole ``pipeplan simulate`` command), and peak memory of the command.

A 3-stage chain with dynamic batching (central FIFO per stage, lognormal service) at 300 rps Poisson
for one hour (about 1.08 M requests, 3.2 M request-stage visits). Reports the fast engine (median of
--repeats runs), a SimPy model of the same system on the same trace, and the reference event loop
on a shorter window, and checks that they agree on p50/p99.

    python benchmarks/bench_simulator.py [engines] [--duration-s 3600] [--simpy-duration-s S] [--repeats 3]
    python benchmarks/bench_simulator.py cli [--duration-s 3600] [--repeats 3]
    python benchmarks/bench_simulator.py memory [--requests 1000000 10000000]
    python benchmarks/bench_simulator.py breakdown [--duration-s 3600] [--repeats 5]

``cli``: writes the plan and a trace file once (pipeplan trace generate), then times the whole
``pipeplan simulate PLAN --trace FILE`` as a process: cold (an empty numba cache, so the kernel
compiles, unless the kernel was built at install) and warm (the cache from the cold run). ``memory``: peak RSS of that process
(``/usr/bin/time -v``, maximum resident set size) for traces of the given sizes (300 rps Poisson).
``breakdown``: where the command's CPU time goes, phase by phase, in fresh interpreters (median of
--repeats): start-up, importing the CLI, typer's parsing and simulate's imports, reading the trace,
loading the compiled kernel, simulating and summarising, printing the tables (not counted: the
process's exit, which ``cli``'s CPU time includes).

Needs ``simpy`` (benchmark only; not a pipeplan dependency); uses numba's kernels when numba is
installed (the pure-Python kernels are timed too). Timings are wall-clock on one core.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from planner.estimate.latency import Z_99  # noqa: E402
from planner.plan import Plan, ServiceCurve, ServicePoint, SolverReport, SolveStatus, StagePlan  # noqa: E402
from planner.sim import Engine, SimConfig, simulate  # noqa: E402
from planner.traces import Trace, poisson  # noqa: E402

RATE_RPS = 300.0
# (name, batch size, batch timeout ms, replicas, p50 ms at batch 1, extra p50 ms per item, p99/p50)
STAGES = [("detect", 8, 10.0, 3, 20.0, 4.0, 1.75), ("classify", 4, 5.0, 2, 6.0, 1.5, 1.6),
          ("rank", 16, 20.0, 1, 10.0, 0.6, 1.5)]


def bench_plan() -> Plan:
    stages, parent = [], ()
    for name, batch, timeout, replicas, p50, per_item, ratio in STAGES:
        curve = ServiceCurve.from_points({b: ServicePoint(p50 + per_item * (b - 1), (p50 + per_item * (b - 1)) * ratio)
                                          for b in (1, 2, 4, 8, 16) if b <= batch})
        stages.append(StagePlan(
            stage=name, model=name, variant="v", hardware="cpu", batch_size=batch, batch_timeout_ms=timeout,
            replicas=replicas, capacity_items_per_s=0.0, utilization=0.0, predicted_latency_ms=0.0, latency_fill_ms=0.0,
            latency_wait_ms=0.0, latency_service_ms=0.0, accuracy=1.0, usd_per_hour=1.0, load_items_per_s=RATE_RPS,
            fanout=1.0, after=parent, service_ms_by_batch=curve))
        parent = (name,)
    return Plan(pipeline="bench", stages=tuple(stages), cost_usd_per_hour=0.0, accuracy=1.0,
                accuracy_aggregation="product", predicted_p99_ms=0.0, arrival_rps=RATE_RPS, slo_ms=300.0,
                objective={}, solver=SolverReport("none", SolveStatus.OPTIMAL, 0.0, "usd_per_hour", None, None))


def simpy_run(plan: Plan, trace: Trace, seed: int) -> np.ndarray:
    """The same system in SimPy: per stage a dispatcher that waits for a free replica and a ready batch."""
    import simpy

    env = simpy.Environment()
    rng = np.random.default_rng(seed)
    n = trace.requests
    done = np.full(n, np.nan)

    class Stage:
        def __init__(self, sp: StagePlan) -> None:
            self.sp = sp
            self.queue: list[tuple[int, float]] = []
            self.replicas = simpy.Resource(env, capacity=sp.replicas)
            self.arrived = env.event()
            self.next: Stage | None = None
            self.table = {}
            for m in range(1, sp.batch_size + 1):  # the partial-batch rule: ServiceCurve.at
                point = sp.service_ms_by_batch.up_to(sp.batch_size).at(m)
                p50, p99 = point.p50_ms, point.p99_ms
                self.table[m] = (p50, math.log(p99 / p50) / Z_99)
            env.process(self.dispatcher())

        def put(self, request: int) -> None:
            self.queue.append((request, env.now))
            if not self.arrived.triggered:
                self.arrived.succeed()

        def wait_arrival(self):
            if self.arrived.triggered:
                self.arrived = env.event()
            return self.arrived

        def dispatcher(self):
            b, timeout = self.sp.batch_size, self.sp.batch_timeout_ms
            while True:
                if not self.queue:
                    yield self.wait_arrival()
                claim = self.replicas.request()
                yield claim
                while len(self.queue) < b and env.now < self.queue[0][1] + timeout:
                    yield self.wait_arrival() | env.timeout(self.queue[0][1] + timeout - env.now)
                batch, self.queue = self.queue[:b], self.queue[b:]
                env.process(self.serve(batch, claim))

        def serve(self, batch, claim):
            p50, sigma = self.table[len(batch)]
            yield env.timeout(p50 * math.exp(sigma * rng.standard_normal()))
            self.replicas.release(claim)
            for request, _ in batch:
                if self.next is None:
                    done[request] = env.now
                else:
                    self.next.put(request)

    stages = [Stage(sp) for sp in plan.stages]
    for a, b in zip(stages, stages[1:]):
        a.next = b

    def source():
        for request, t in enumerate(trace.arrival_ms.tolist()):
            if t > env.now:
                yield env.timeout(t - env.now)
            stages[0].put(request)

    env.process(source())
    env.run()
    return done - trace.arrival_ms


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _pipeplan() -> list[str]:
    exe = shutil.which("pipeplan", path=str(Path(sys.executable).parent)) or shutil.which("pipeplan")
    return [exe] if exe else [sys.executable, "-m", "planner.cli"]


def _files(workdir: Path, duration_s: float) -> tuple[Path, Path]:
    """The bench plan and a 300 rps Poisson trace file of ``duration_s`` (generated by the CLI)."""
    from planner import io

    plan_path, trace_path = workdir / "plan.json", workdir / f"trace-{duration_s:g}s.csv"
    io.write_plan(bench_plan(), plan_path)
    if not trace_path.exists():
        subprocess.run([*_pipeplan(), "trace", "generate", "--kind", "poisson", "--rate-rps", f"{RATE_RPS:g}",
                        "--duration-s", f"{duration_s:g}", "--seed", "1", "--out", str(trace_path)],
                       check=True, stdout=subprocess.DEVNULL)
    return plan_path, trace_path


def _simulate_process(plan_path: Path, trace_path: Path, cache_dir: Path, measure_memory: bool = False
                      ) -> tuple[float, int | None, str]:
    """Wall seconds, peak RSS (KB, with /usr/bin/time -v) and the summary line of one pipeplan simulate."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    command = [*_pipeplan(), "simulate", str(plan_path), "--trace", str(trace_path)]
    if measure_memory:
        command = ["/usr/bin/time", "-v", *command]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    _CPU.append(_child_cpu_s())
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    summary = next((line for line in done.stdout.splitlines() if "requests (" in line), "")
    return wall, int(peak.group(1)) if peak else None, summary


_CPU: list[float] = []


def _child_cpu_s() -> float:
    """User + system CPU seconds of all finished children so far (differences give one run's)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _versions() -> str:
    import numba

    return (f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs; Python {platform.python_version()}, "
            f"numpy {np.__version__}, numba {numba.__version__}")


def bench_cli(args: argparse.Namespace) -> None:
    """The whole pipeplan simulate command as a process, cold and warm numba cache."""
    print(_versions())
    workdir = Path(tempfile.mkdtemp(prefix="bench-sim-"))
    plan_path, trace_path = _files(workdir, args.duration_s)
    from planner.io.traces import read_trace

    trace = read_trace(trace_path)
    visits = trace.requests * len(STAGES)
    cache = workdir / "numba-cache"
    _CPU.append(_child_cpu_s())
    cold, _, summary = _simulate_process(plan_path, trace_path, cache)
    warm = [_simulate_process(plan_path, trace_path, cache)[0] for _ in range(args.repeats)]
    warm_s = statistics.median(warm)
    cpu = [b - a for a, b in zip(_CPU, _CPU[1:])]
    cold_cpu, warm_cpu = cpu[0], statistics.median(cpu[1:])
    print(f"compiled kernel: {_kernel_kind()}")
    print(f"trace {trace_path.name}: {trace.requests} requests, {visits} request-stage visits "
          f"({trace_path.stat().st_size / 1e6:.1f} MB); {summary}")
    cold_what = "the kernel built at install needs none" if "built at install" in _kernel_kind() else "compiles the kernel"
    print(f"pipeplan simulate, cold (empty numba cache: {cold_what}): {cold:.2f} s wall, {cold_cpu:.2f} s "
          f"CPU -> {visits / cold:,.0f} visits/s wall, {visits / cold_cpu:,.0f} per CPU second")
    print(f"pipeplan simulate, warm (median of {args.repeats}; {', '.join(f'{t:.2f}' for t in warm)} s): "
          f"{warm_s:.2f} s wall, {warm_cpu:.2f} s CPU -> {visits / warm_s:,.0f} visits/s wall, "
          f"{visits / warm_cpu:,.0f} per CPU second; target >= 5,000,000 (wall): "
          f"{'met' if visits / warm_s >= 5e6 else 'NOT met'}; per CPU second: "
          f"{'met' if visits / warm_cpu >= 5e6 else 'NOT met'}; load average {os.getloadavg()[0]:.1f}")
    shutil.rmtree(workdir, ignore_errors=True)


def _kernel_kind() -> str:
    from planner.sim import aot, jit

    if jit.ahead_of_time() is not None:
        return f"built at install ({aot.MODULE}; numba is not imported)"
    return "numba's JIT (cache=True; the kernel built at install is absent or stale)"


# Run in a fresh interpreter: CPU seconds (user + system) at the end of each phase of pipeplan simulate.
_PHASES = """
import contextlib, io as text_io, json, resource, sys
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
marks = [("interpreter start-up", cpu())]
import planner.cli
marks.append(("import planner.cli (every command registers)", cpu()))
with contextlib.redirect_stderr(text_io.StringIO()):  # stops at the absent trace: an error, exit 2
    code = planner.cli.app(["simulate", sys.argv[1], "--trace", sys.argv[2] + ".absent"], standalone_mode=False)
assert code == 2, code
marks.append(("typer parses the options (it imports pydantic to coerce them); simulate's imports; read the plan",
              cpu()))
from pathlib import Path
from planner.cli.common import read_trace_arg
from planner.sim import SimConfig, jit, simulate
from planner.traces import TraceFormat
trace = read_trace_arg(Path(sys.argv[2]), TraceFormat.AUTO, 0)
marks.append(("read the trace", cpu()))
jit.fifo_windows()
marks.append(("load the compiled kernel", cpu()))
from planner import io
result = simulate(io.load_plan(Path(sys.argv[1])), trace, SimConfig(seed=0))
marks.append(("simulate and summarise", cpu()))
from planner.cli.sim import _sim_table
from rich.console import Console
Console(file=open("/dev/null", "w"), width=160).print(_sim_table(result))
marks.append(("print the tables", cpu()))
print(json.dumps(marks))
"""


def bench_breakdown(args: argparse.Namespace) -> None:
    """CPU seconds per phase of pipeplan simulate, each run in a fresh interpreter (median of --repeats)."""
    print(_versions())
    print(f"compiled kernel: {_kernel_kind()}")
    workdir = Path(tempfile.mkdtemp(prefix="bench-sim-phases-"))
    plan_path, trace_path = _files(workdir, args.duration_s)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(workdir / "numba-cache")}
    subprocess.run([sys.executable, "-c", _PHASES, str(plan_path), str(trace_path)], env=env, check=True,
                   capture_output=True)  # fills numba's cache where the JIT is used
    runs = []
    for _ in range(args.repeats):
        done = subprocess.run([sys.executable, "-c", _PHASES, str(plan_path), str(trace_path)], env=env, check=True,
                              capture_output=True, text=True)
        marks = json.loads(done.stdout.splitlines()[-1])
        runs.append([("interpreter start-up", marks[0][1])] +
                    [(name, t - before) for (_, before), (name, t) in zip(marks, marks[1:])])
    for i, (name, _) in enumerate(runs[0]):
        print(f"{name:100s} {statistics.median(r[i][1] for r in runs):.3f} s CPU")
    total = statistics.median(sum(t for _, t in r) for r in runs)
    print(f"{'total (median of the runs)':100s} {total:.3f} s CPU")
    shutil.rmtree(workdir, ignore_errors=True)


def bench_memory(args: argparse.Namespace) -> None:
    """Peak RSS of pipeplan simulate (warm cache) for traces of the given request counts."""
    print(_versions())
    workdir = Path(tempfile.mkdtemp(prefix="bench-sim-mem-"))
    cache = workdir / "numba-cache"
    for requests in args.requests:
        plan_path, trace_path = _files(workdir, requests / RATE_RPS)
        _simulate_process(plan_path, trace_path, cache)  # fills the numba cache
        wall, peak_kb, summary = _simulate_process(plan_path, trace_path, cache, measure_memory=True)
        print(f"{trace_path.name} ({trace_path.stat().st_size / 1e6:.0f} MB): peak RSS {peak_kb / 1024:,.0f} MB "
              f"({peak_kb / 1024 / (requests / 1e6):,.0f} MB per million requests) in {wall:.2f} s; {summary}")
        trace_path.unlink()
    shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=["engines", "cli", "memory", "breakdown"], default="engines")
    parser.add_argument("--duration-s", type=float, default=3600.0)
    parser.add_argument("--simpy-duration-s", type=float, default=None, help="default: --duration-s")
    parser.add_argument("--events-duration-s", type=float, default=300.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, nargs="+", default=[1_000_000, 10_000_000])
    args = parser.parse_args()
    if args.mode == "cli":
        return bench_cli(args)
    if args.mode == "memory":
        return bench_memory(args)
    if args.mode == "breakdown":
        return bench_breakdown(args)
    import simpy

    plan = bench_plan()
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs; Python {platform.python_version()}, "
          f"numpy {np.__version__}, simpy {simpy.__version__}")
    trace = poisson(RATE_RPS, args.duration_s, np.random.default_rng(1))
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = simulate(plan, trace, SimConfig(seed=1))
        times.append(time.perf_counter() - start)
    visits = sum(s.items for s in result.stages)
    fast_s = statistics.median(times)
    fast_rate = visits / fast_s
    print(f"fast engine: {trace.requests} requests, {visits} visits over {args.duration_s:g} s of trace in "
          f"{fast_s:.3f} s (median of {args.repeats}; runs {', '.join(f'{t:.3f}' for t in times)}) -> "
          f"{fast_rate:,.0f} visits/s; p50 {result.summary.p50_ms:.2f} ms, p99 {result.summary.p99_ms:.2f} ms; "
          f"utilisation {', '.join(f'{s.stage} {s.utilization:.2f}' for s in result.stages)}; "
          f"mean batch {', '.join(f'{s.mean_batch_size:.2f}' for s in result.stages)}")

    start = time.perf_counter()
    simulate(plan, trace, SimConfig(seed=1, accelerate=False))
    python_s = time.perf_counter() - start
    print(f"fast engine, pure-Python kernels (numba off): {python_s:.3f} s -> {visits / python_s:,.0f} visits/s")

    simpy_duration_s = args.simpy_duration_s or args.duration_s
    short = Trace(trace.arrival_ms[trace.arrival_ms < simpy_duration_s * 1000.0], simpy_duration_s * 1000.0)
    short_visits = short.requests * len(plan.stages)
    start = time.perf_counter()
    sp_latency = simpy_run(plan, short, seed=1)
    simpy_s = time.perf_counter() - start
    simpy_rate = short_visits / simpy_s
    fast_short = simulate(plan, short, SimConfig(seed=1))
    print(f"simpy model: {short.requests} requests, {short_visits} visits in {simpy_s:.3f} s -> {simpy_rate:,.0f} "
          f"visits/s; p50 {np.quantile(sp_latency, 0.5):.2f} ms, p99 {np.quantile(sp_latency, 0.99):.2f} ms "
          f"(fast engine on the same window: p50 {fast_short.summary.p50_ms:.2f} ms, p99 "
          f"{fast_short.summary.p99_ms:.2f} ms; the service draws differ, so expect agreement within noise)")

    ev_trace = Trace(trace.arrival_ms[trace.arrival_ms < args.events_duration_s * 1000.0],
                     args.events_duration_s * 1000.0)
    start = time.perf_counter()
    ev = simulate(plan, ev_trace, SimConfig(seed=1, engine=Engine.EVENTS))
    events_s = time.perf_counter() - start
    same = simulate(plan, ev_trace, SimConfig(seed=1))
    identical = np.array_equal(ev.latency_ms, same.latency_ms)
    print(f"reference event loop: {ev_trace.requests * len(plan.stages)} visits in {events_s:.3f} s -> "
          f"{ev_trace.requests * len(plan.stages) / events_s:,.0f} visits/s; identical to the fast engine: {identical}")
    print(f"speed-up of the fast engine: {fast_rate / simpy_rate:.1f}x SimPy; target >= 1,000,000 visits/s: "
          f"{'met' if fast_rate >= 1e6 else 'NOT met'}; target >= 20x SimPy: "
          f"{'met' if fast_rate >= 20 * simpy_rate else 'NOT met'}")


if __name__ == "__main__":
    main()
