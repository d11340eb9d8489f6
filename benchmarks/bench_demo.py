"""How long the README's first command takes: ``pipeplan demo`` as a whole process, in a fresh folder.

Issue 15's target: the demo (profile live, plan, verify, tune, emit, report) finishes in at most
5 minutes on a 2-core CPU machine. Each run uses a new output folder and, with ``--cold``, a new
``--cache-dir`` (so the OCR variants are built again), and is timed as a process with wall-clock
time and peak RSS from ``/usr/bin/time -v``. Run it from the repository root, in the environment of
the README's first command (``pip install '.[profile]'``):

    python benchmarks/bench_demo.py [--repeats 3] [--cold]
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

TARGET_S = 300.0


def run_once(work: Path, cold: bool) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one ``pipeplan demo``."""
    out = work / "demo"
    cache = ["--cache-dir", str(work / "cache")] if cold else []
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "planner.cli", "demo", "--out", str(out), *cache]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"pipeplan demo failed (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    if not (out / "report" / "report.html").is_file():
        raise SystemExit("pipeplan demo exited 0 but wrote no report")
    return 3600 * hours + 60 * minutes + seconds, int(rss.group(1)) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="a new --cache-dir per run (variants rebuilt)")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()} {platform.release()}, "
          f"Python {platform.python_version()}")
    walls, peaks = [], []
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="bench-demo-", dir=".") as tmp:
            wall, peak = run_once(Path(tmp), args.cold)
        walls.append(wall)
        peaks.append(peak)
        print(f"run {i + 1}: {wall:.1f} s wall, peak RSS {peak:.0f} MB")
    median = statistics.median(walls)
    print(f"median {median:.1f} s (min {min(walls):.1f}, max {max(walls):.1f}); target <= {TARGET_S:.0f} s: "
          f"{'met' if median <= TARGET_S else 'NOT met'}")


if __name__ == "__main__":
    main()
