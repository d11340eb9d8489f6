"""A real Ray Serve run (slow group; .ci/run runs it): a digits plan on a local Ray head pipeplan
starts (deploy, load test, apply, undeploy, nothing left by pid), and on an existing cluster with
token auth (``--address``: nothing local is started, undeploy removes only the application).

The plan is the digits spec planned at 40 rps with a 50 ms SLO; its variant is swapped for the
zoo's 'linear' model, which trains in a second (the lifecycle, not the model, is under test).
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from planner import io
from planner.cli import app
from planner.deploy.http import call
from planner.deploy.process import group_alive, spawn, stop_group
from planner.deploy.state import STATE_FILE, load_state
from planner.deploy.triton_local import free_port
from planner.io.traces import trace_to_csv_text
from planner.traces import Trace
from tests.fixtures import CONFIGS, REPO

pytestmark = pytest.mark.slow
pytest.importorskip("ray.serve", reason="Ray Serve runs need `pip install '.[deploy]'` (ray[serve]==2.60.0)")


def _plan(rate_rps: float, slo_ms: float, **changes):
    from planner.ilp.backends import SolverName
    from planner.optimize import make_plan

    request = io.load_request(CONFIGS / "digits.yaml", None, None, SolverName.CBC)
    request = dataclasses.replace(request, spec=request.spec.model_copy(update={"arrival_rps": rate_rps,
                                                                                "slo_ms": slo_ms}))
    plan = make_plan(request)
    return dataclasses.replace(plan, stages=tuple(dataclasses.replace(s, variant="linear", **changes)
                                                  for s in plan.stages))


@pytest.fixture(scope="module")
def plans(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("ray-plans")
    first, second = root / "plan.json", root / "new.json"
    base = _plan(40.0, 50.0)
    io.write_plan(base, first)
    batch = max(b for b in base.stages[0].service_ms_by_batch.batch_sizes if b <= 4)
    io.write_plan(dataclasses.replace(base, stages=tuple(dataclasses.replace(s, batch_size=batch, batch_timeout_ms=1.0,
                                                                               replicas=2) for s in base.stages)),
                  second)
    trace = root / "t.csv"
    io.write_text_atomic(trace, trace_to_csv_text(Trace(np.arange(40) * 50.0, 2000.0, name="even-20rps")))
    return first, second, trace


def _ray_processes(marker: str) -> list[int]:
    """Pids whose command line names ``marker`` (Ray's temp dir is in every Ray process's arguments)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _loadtest(runner: CliRunner, url: str, folder: Path, trace: Path) -> dict:
    result = runner.invoke(app, ["loadtest", url, "--trace", str(trace), "--body", str(folder / "request.json"),
                                 "--out", str(folder / "res.json")])
    assert result.exit_code == 0, result.output
    return json.loads((folder / "res.json").read_text())["summary"]


def test_local_head_deploy_loadtest_apply_undeploy(tmp_path, plans):
    first, second, trace = plans
    runner = CliRunner()
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home)}  # nothing of Ray's may land in the real home (auth token, sessions)
    run = tmp_path / "run"
    result = runner.invoke(app, ["deploy", str(first), "--engine", "ray-serve", "--manifest",
                                 str(CONFIGS / "digits.manifest.yaml"), "--out", str(run), "--port",
                                 str(free_port()), "--num-cpus", "4", "--cache-dir", str(tmp_path / "cache"),
                                 "--ready-timeout-s", "120"], env=env)
    assert result.exit_code == 0, result.output
    running = load_state(run)
    assert running.process is not None and group_alive(running.process)
    try:
        summary = _loadtest(runner, running.infer_url, run, trace)
        assert summary["requests"] == 40 and summary["dropped"] == 0
        result = runner.invoke(app, ["apply", str(second), "--deployment", str(run), "--settle-s", "0.5",
                                     "--probe-rps", "10", "--out", str(tmp_path / "switch.json")], env=env)
        assert result.exit_code == 0, result.output
        report = json.loads((tmp_path / "switch.json").read_text())
        assert report["switch_s"] > 0 and report["failed"] == 0 and report["requests"] > 5
        apps = call("GET", f"{running.admin_url}/api/serve/applications/").json()["applications"]
        deployments = apps["digits"]["deployments"]
        assert deployments["read"]["target_num_replicas"] == 2
        config = apps["digits"]["deployed_app_config"]["deployments"]
        read = next(d for d in config if d["name"] == "read")
        assert read["user_config"]["batch_wait_timeout_s"] == pytest.approx(0.001)
    finally:
        result = runner.invoke(app, ["undeploy", str(run)], env=env)
    assert result.exit_code == 0, result.output
    assert not group_alive(running.process)
    assert _ray_processes(running.scratch) == []
    assert not Path(running.scratch).exists() and not (run / STATE_FILE).exists()
    assert not (home / ".ray" / "auth_token").exists()


def test_existing_cluster_is_used_and_left_running(tmp_path, plans):
    first, _, trace = plans
    home = tmp_path / "home"
    home.mkdir()
    token = secrets.token_hex(16)
    env = {**os.environ, "HOME": str(home), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
           "RAY_USAGE_STATS_ENABLED": "0"}
    scratch = Path(f"/tmp/pp-ray-test-{secrets.token_hex(3)}")
    dashboard_port = free_port()
    command = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
               "--node-ip-address=127.0.0.1", f"--port={free_port()}", f"--dashboard-port={dashboard_port}",
               "--dashboard-host=127.0.0.1", "--min-worker-port=31000", "--max-worker-port=31999",
               f"--temp-dir={scratch}", "--num-cpus=4", "--disable-usage-stats"]
    _, cluster = spawn(command, env, tmp_path / "cluster.log")
    address = f"http://127.0.0.1:{dashboard_port}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        deadline = time.monotonic() + 90
        while call("GET", f"{address}/api/version", timeout_s=1.0, headers=headers).status != 200:
            assert group_alive(cluster) and time.monotonic() < deadline, (tmp_path / "cluster.log").read_text()
            time.sleep(0.5)
        heads_before = set(_ray_processes("/tmp/pp-ray-"))  # a local head of pipeplan's has its temp dir there
        runner = CliRunner()
        run = tmp_path / "run"
        # A process of its own: Ray reads RAY_AUTH_MODE when it is first imported, as in a real shell.
        cli = [sys.executable, "-m", "planner.cli"]
        done = subprocess.run([*cli, "deploy", str(first), "--engine", "ray-serve", "--manifest",
                               str(CONFIGS / "digits.manifest.yaml"), "--out", str(run), "--address", address,
                               "--port", str(free_port()), "--cache-dir", str(tmp_path / "cache"),
                               "--ready-timeout-s", "120"], env=env, cwd=REPO, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        running = load_state(run)
        assert running.process is None and running.scratch is None
        # Nothing local started: every Ray process belongs to the cluster's own process group.
        assert all(os.getpgid(p) == cluster.pid for p in _ray_processes(str(scratch)) if Path(f"/proc/{p}").exists())
        assert set(_ray_processes("/tmp/pp-ray-")) - heads_before - set(_ray_processes(str(scratch))) == set()
        summary = _loadtest(runner, running.infer_url, run, trace)
        assert summary["requests"] == 40 and summary["dropped"] == 0
        done = subprocess.run([*cli, "undeploy", str(run)], env=env, cwd=REPO, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert call("GET", f"{address}/api/serve/applications/", headers=headers).status == 200
        assert "digits" not in (call("GET", f"{address}/api/serve/applications/", headers=headers).json()
                                .get("applications") or {})
        assert group_alive(cluster)  # the cluster was not pipeplan's to stop
    finally:
        assert stop_group(cluster, timeout_s=30.0)
        shutil.rmtree(scratch, ignore_errors=True)
    assert _ray_processes(str(scratch)) == []
