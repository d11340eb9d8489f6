"""`pipeplan simulate` loads only what it uses: no ILP solvers, scipy's heavy subpackages, the tuner,
emitters, reports, plotting, the deep-learning runtimes, nor PyYAML and the spec models (a plan file
is JSON): each costs start-up time on every run.

Each check runs in a fresh interpreter, so what earlier tests imported does not count.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from planner import io
from planner.io.traces import trace_to_csv_text
from planner.traces import poisson
from tests.fixtures import plan_of, stage

# Top-level packages `pipeplan simulate` must never load, and planner modules it has no use for.
# (numba, which runs the kernel, itself imports the top-level scipy package and scipy.linalg's BLAS
# bindings when it loads; scipy's other subpackages are ours to avoid. typer >= 0.29 imports pydantic
# to coerce option values, so pydantic itself is not ours to avoid; its file models are.)
_HEAVY_PACKAGES = ("pulp", "highspy", "ortools", "matplotlib", "torch", "ray", "pandas", "pyarrow", "onnxruntime",
                   "yaml")
_HEAVY_MODULES = ("scipy.stats", "scipy.special", "scipy.optimize", "scipy.sparse", "planner.spec", "pipeplan_files.read",
                  "planner.optimize", "planner.solve", "planner.estimate.candidates", "planner.ilp.formulation", "planner.tuner.policies",
                  "planner.tuner.replay", "planner.emit.registry", "planner.emit.base", "planner.report.build",
                  "planner.deploy.ray_serve", "planner.loadgen")

_LOADED = """
import json, sys
{action}
heavy_packages, heavy_modules = {packages!r}, {modules!r}
loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy_packages or m in heavy_modules)
print(json.dumps(loaded))
"""


def _loaded_after(action: str, cwd: Path) -> list[str]:
    script = _LOADED.format(action=action, packages=_HEAVY_PACKAGES, modules=_HEAVY_MODULES)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_the_cli_loads_nothing_heavy(tmp_path):
    assert _loaded_after("import planner.cli", tmp_path) == []


def test_a_whole_simulate_run_loads_nothing_heavy(tmp_path):
    plan_path, trace_path = tmp_path / "plan.json", tmp_path / "trace.csv"
    io.write_plan(plan_of(stage("a", batch=4, timeout_ms=5.0, replicas=2, p50_ms=8.0),
                          stage("b", after=("a",), replicas=2, p50_ms=5.0), slo_ms=200.0), plan_path)
    trace_path.write_text(trace_to_csv_text(poisson(20.0, 30.0, np.random.default_rng(0))))
    run = (f"import sys\nsys.argv = ['pipeplan', 'simulate', {str(plan_path)!r}, '--trace', {str(trace_path)!r}, "
           f"'--out', {str(tmp_path / 'result.json')!r}]\nimport planner.cli\n"
           "try:\n    planner.cli.main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code")
    assert _loaded_after(run, tmp_path) == []
    assert json.loads((tmp_path / "result.json").read_text())["summary"]["requests"] > 0
