"""Tuner on real traces: every policy against the hindsight oracle (issue 5's targets).

Runs ``compare`` (oracle, reactive, predictive, static-peak, static-mean) on IPA's four Twitter
windows, on windows of the Azure LLM code and conversation traces and on the NASA trace's first day
played 72x faster, each rescaled so that the peak needs several replicas, for
configs/synthetic/video.yaml (synthetic profiles) restricted to CPU hardware (cpu-2, cpu-8: 60 s
start-up plus the variant's load time; the GPU entries' economies of scale would make one replica
carry every load). Prints a markdown table: cost relative to the oracle, SLO attainment over all
requests, accuracy, reconfigurations, and whether the targets (>= 99% within the SLO, <= 1.15x the
oracle's cost) are met.

    python benchmarks/bench_tuner.py [--data ../shared/data/traces] [--seed 0] [--interval-s 10]

Skips (with a message) any trace whose file is absent. Not a test: a few minutes on one core.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from planner import io
from planner.optimize import PlanRequest
from planner.io.traces import read_trace
from planner.traces import TraceFormat, compress_time, describe, rescale, window
from planner.tuner import PlanBook, PolicyKind, PolicySettings, TuneSettings, compare, compare_rows

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "traces"
# (label, file under the data folder, counts column ("" for a whole counts file, None for Azure CSV),
#  window start s, window length s, rate scale, time compression)
TRACES = [
    ("twitter bursty x4", "twitter/ipa_segments_damped8.csv", "bursty", 0, 1200, 4.0, 1.0),
    ("twitter steady_low x4", "twitter/ipa_segments_damped8.csv", "steady_low", 0, 1200, 4.0, 1.0),
    ("twitter steady_high x4", "twitter/ipa_segments_damped8.csv", "steady_high", 0, 1200, 4.0, 1.0),
    ("twitter fluctuating x4", "twitter/ipa_segments_damped8.csv", "fluctuating", 0, 1200, 4.0, 1.0),
    ("azure code 0-1200 s x4", "azure_llm_2023/AzureLLMInferenceTrace_code.csv", None, 0, 1200, 4.0, 1.0),
    ("azure conv 0-1200 s x10", "azure_llm_2023/AzureLLMInferenceTrace_conv.csv", None, 0, 1200, 10.0, 1.0),
    # Jul 1 1995, the whole day played 72x faster (1,200 s; rate x72): the daily cycle in 20 minutes.
    ("nasa day 1 in 1200 s", "nasa_http_1995/workload.tbz2", "", 0, 86400, 1.0, 72.0),
]


def request(startup_s: float | None = None) -> PlanRequest:
    """configs/synthetic/video.yaml on CPU hardware; ``startup_s`` overrides every machine's start-up time."""
    base = io.load_request(REPO / "configs" / "synthetic" / "video.yaml")
    spec = base.spec.model_copy(update={"hardware": ("cpu-2", "cpu-8")})
    catalog = base.catalog
    if startup_s is not None:
        catalog = catalog.model_copy(update={"hardware": tuple(h.model_copy(update={"startup_s": startup_s})
                                                               for h in catalog.hardware)})
    return replace(base, spec=spec, catalog=catalog)


def load(data: Path, name: str, column: str | None, start_s: int, duration_s: int, scale: float, seed: int,
         compress: float = 1.0):
    path = data / name
    rng = np.random.default_rng(seed)
    if column is not None:
        trace = read_trace(path, TraceFormat.COUNTS, rng=rng, column=column or None, start_s=start_s,
                           duration_s=duration_s, scale=scale)
    else:
        trace = rescale(window(read_trace(path, TraceFormat.AZURE), start_s, duration_s), scale, rng)
    return compress_time(trace, compress) if compress != 1.0 else trace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--interval-s", type=int, default=10)
    parser.add_argument("--only", default=None, help="run only traces whose label contains this")
    parser.add_argument("--startup-s", type=float, default=None,
                        help="override every machine's start-up time (default: the catalog's 60 s)")
    parser.add_argument("--peak-window-s", type=int, default=5, help="window of the interval peak rate")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    req = request(args.startup_s)
    settings = TuneSettings(policy=PolicySettings(interval_s=args.interval_s, peak_window_s=args.peak_window_s),
                            seed=args.seed)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
          f"Python {platform.python_version()}; spec synthetic/video.yaml on cpu-2/cpu-8; start-up "
          f"{'catalog (60 s)' if args.startup_s is None else f'{args.startup_s:g} s'}; interval {args.interval_s} s; "
          f"peak window {args.peak_window_s} s; seed {args.seed}\n")
    print("| trace | mean / peak rps | policy | cost (USD) | x oracle | within SLO | accuracy | reconfig. | targets |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, name, column, start_s, duration_s, scale, compress in TRACES:
        if args.only and args.only not in label:
            continue
        if not (args.data / name).exists():
            print(f"| {label} | skipped: {args.data / name} not found | | | | | | | |")
            continue
        trace = load(args.data, name, column, start_s, duration_s, scale, args.seed, compress)
        d = describe(trace)
        started = time.perf_counter()
        book = PlanBook(req)
        results = compare(book, trace, tuple(PolicyKind), settings)
        wall = time.perf_counter() - started
        for row in compare_rows(results):
            print(f"| {label} | {d.mean_rps:.1f} / {d.peak_rps:.0f} | {row.policy} | {row.total_cost_usd:.4f} | "
                  f"{row.cost_vs_oracle:.3f} | {100 * row.slo_attainment:.2f}% | {row.mean_accuracy:.4f} | "
                  f"{row.reconfigurations} | {'yes' if row.meets_targets else 'no'} |", flush=True)
        print(f"| {label} | {trace.requests} requests, {book.solves} ILPs, {wall:.1f} s | | | | | | | |", flush=True)


if __name__ == "__main__":
    main()
