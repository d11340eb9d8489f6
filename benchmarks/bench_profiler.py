"""Profiler benchmark (not a timed test): harness overhead and repeatability.

1. Overhead: the harness's throughput (measure_point on OrtModel.timed_run) against a bare
   ``session.run`` loop on the same model, batch and thread count, interleaved A/B/A/B so that
   drift of the machine hits both alike. Target: <= 5%.
2. Repeatability: two full runs of the digits zoo (or two given tables): the p50 of every row that
   is stable in both runs and above 0.1 ms must agree within 5%. Also reported: the same over all
   rows above 0.1 ms, and how often the rows' own error bar (latency_p50_spread_frac, the spread of
   a point's rounds) covers the change between the runs.

3. Drift: is the variation between runs the machine's or the sessions'? One onnxruntime session
   timed in 1 s windows, interleaved with fresh sessions timed the same way, so both see the same
   moments. If the kept session swings as much as the fresh ones, the machine itself changes speed
   and no method can make two runs agree more closely than that.

    python benchmarks/bench_profiler.py overhead
    python benchmarks/bench_profiler.py repeat [--tables A.csv B.csv | --out-dir DIR] [--hardware cpu-1]
    python benchmarks/bench_profiler.py drift [--rounds 12]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from profiler.backends.onnxruntime_backend import OrtModel  # noqa: E402
from profiler.manifest import HardwareSetting  # noqa: E402
from profiler.measure import FULL_METHOD, measure_point  # noqa: E402
from profiler.table_io import read_profile_table  # noqa: E402
from profiler.zoo import digits  # noqa: E402


def bare_loop(model: OrtModel, batch: np.ndarray, seconds: float) -> tuple[float, float]:
    """Items/s and p50 (ms) of back-to-back session.run calls, each timed, no windows."""
    session, feed = model._session, {model.input_name: batch}
    for _ in range(20):
        session.run(None, feed)
    latencies = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        session.run(None, feed)
        latencies.append((time.perf_counter() - t0) * 1000.0)
    wall = time.perf_counter() - start
    return len(latencies) * len(batch) / wall, float(np.median(latencies))


def overhead(cache: Path, rounds: int) -> None:
    cases = [("mlp16", 1), ("cnn32", 8), ("cnn64", 32)]
    setting = HardwareSetting(name="cpu-1", threads=1)
    print("| model | batch | bare items/s | harness items/s | throughput overhead | bare p50 ms | harness p50 ms |")
    print("|---|---|---|---|---|---|---|")
    for name, batch_size in cases:
        model = OrtModel(digits.build(name, cache), setting, "input")
        batch = np.random.default_rng(0).random((batch_size, 1, 8, 8), dtype=np.float32)
        bare, harness, bare_p50, harness_p50 = [], [], [], []
        for _ in range(rounds):
            rps, p50 = bare_loop(model, batch, 1.5)
            bare.append(rps)
            bare_p50.append(p50)
            result = measure_point(lambda: model.timed_run(batch), batch_size, FULL_METHOD)
            harness.append(result.throughput_rps)
            harness_p50.append(result.latency_p50_ms)
        ratios = [b / h - 1.0 for b, h in zip(bare, harness)]
        print(f"| {name} | {batch_size} | {statistics.median(bare):,.0f} | {statistics.median(harness):,.0f} | "
              f"{statistics.median(ratios):+.1%} (runs: {', '.join(f'{r:+.1%}' for r in ratios)}) | "
              f"{statistics.median(bare_p50):.4f} | {statistics.median(harness_p50):.4f} |")


def drift(cache: Path, rounds: int) -> None:
    setting = HardwareSetting(name="cpu-1", threads=1)
    path = digits.build("cnn64", cache)
    batch = np.random.default_rng(0).random((16, 1, 8, 8), dtype=np.float32)
    kept = OrtModel(path, setting, "input")
    same, fresh = [], []
    for _ in range(rounds):
        same.append(bare_loop(kept, batch, 1.0)[1])
        model = OrtModel(path, setting, "input")
        fresh.append(bare_loop(model, batch, 1.0)[1])
        model.close()
    kept.close()
    print("digits cnn64, batch 16, 1 thread; p50 of each 1 s window, in time order (ms):")
    for name, values in (("one kept session", same), ("a fresh session each", fresh)):
        print(f"  {name}: {' '.join(f'{v:.3f}' for v in values)}  (max/min {max(values) / min(values):.2f})")


def run_digits(out: Path, cache: Path, hardware: list[str]) -> float:
    args = [sys.executable, "-m", "planner.cli", "profile", str(ROOT / "configs/digits.manifest.yaml"),
            "--out", str(out), "--cache-dir", str(cache), "--fresh"]
    for name in hardware:
        args += ["--hardware", name]
    start = time.perf_counter()
    subprocess.run(args, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def repeat(tables: list[Path] | None, cache: Path, hardware: list[str], out_dir: Path | None) -> None:
    if not tables:
        folder = out_dir or Path(tempfile.mkdtemp(prefix="bench-profiler-"))
        folder.mkdir(parents=True, exist_ok=True)
        tables = [folder / "run1.csv", folder / "run2.csv"]
        for table in tables:
            print(f"{table.name}: {run_digits(table, cache, hardware):.0f} s")
    first, second = (read_profile_table(t).index() for t in tables)
    compared, failed, unstable = 0, [], 0
    worst = 0.0
    all_rows, all_within, covered = 0, 0, 0
    for key, a in first.items():
        b = second.get(key)
        if b is None or min(a.latency_p50_ms, b.latency_p50_ms) <= 0.1:
            continue
        change = abs(b.latency_p50_ms / a.latency_p50_ms - 1.0)
        all_rows += 1
        all_within += change <= 0.05
        error_bar = max(a.latency_p50_spread_frac or 0.0, b.latency_p50_spread_frac or 0.0)
        covered += change <= error_bar
        if not (a.stable and b.stable):
            unstable += 1
            continue
        compared += 1
        worst = max(worst, change)
        if change > 0.05:
            failed.append((key, a.latency_p50_ms, b.latency_p50_ms))
    print(f"rows in both: {len(set(first) & set(second))}; above 0.1 ms: {all_rows}, of which unstable in "
          f"either run: {unstable}")
    print(f"stable in both: {compared}; p50 within 5%: {compared - len(failed)}; worst change {worst:.1%}")
    print(f"all rows above 0.1 ms: p50 within 5%: {all_within} of {all_rows}; change within the rows' own "
          f"round spread: {covered} of {all_rows}")
    for key, a, b in failed:
        print(f"  {'/'.join(map(str, key))}: {a:.4f} -> {b:.4f} ms ({b / a - 1:+.1%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["overhead", "repeat", "drift"])
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".pipeplan-cache")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tables", type=Path, nargs=2)
    parser.add_argument("--hardware", action="append", default=[])
    parser.add_argument("--out-dir", type=Path, help="Keep the two runs' tables here (default: a temporary folder).")
    args = parser.parse_args()
    print(f"# {os.uname().machine}, {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.2f} at start")
    if args.what == "overhead":
        overhead(args.cache_dir, args.rounds)
    elif args.what == "drift":
        drift(args.cache_dir, max(args.rounds, 3))
    else:
        repeat(args.tables, args.cache_dir, args.hardware, args.out_dir)
    print(f"# load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
