"""A real tritonserver (from the nvidia-pytriton wheel in .venv-triton): deploy, serve a short trace,
apply a new plan under load, stop; and cleanup after a bad model file and after SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from planner import io
from planner.cli import app
from planner.deploy.process import group_alive
from planner.deploy.state import STATE_FILE, load_state
from planner.io.traces import trace_to_csv_text
from planner.traces import Trace
from tests.deploy.triton_repo import body, write_repo
from tests.fixtures import plan_of, stage

REPO = Path(__file__).resolve().parents[2]
TRITON_PYTHON = Path(os.environ.get("PIPEPLAN_TRITON_PYTHON", REPO / ".venv-triton" / "bin" / "python"))

pytestmark = pytest.mark.skipif(not TRITON_PYTHON.exists(), reason=f"no Triton environment at {TRITON_PYTHON} "
                                "(python3 -m venv .venv-triton && .venv-triton/bin/pip install nvidia-pytriton==0.7.0)")


def _processes_under(folder: Path) -> list[int]:
    """Pids whose command line names ``folder`` (the server binary is copied inside it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(folder) in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _deploy_args(tmp: Path, emitted: Path, plan: Path) -> list[str]:
    return ["deploy", str(plan), "--engine", "triton", "--emitted", str(emitted), "--out", str(tmp / "run"),
            "--triton-python", str(TRITON_PYTHON), "--ready-timeout-s", "60"]


def test_deploy_loadtest_apply_undeploy(tmp_path):
    runner = CliRunner()
    write_repo(tmp_path / "emitted")
    plan = tmp_path / "plan.json"
    io.write_plan(plan_of(stage("pre", batch=4, timeout_ms=1.0), stage("cls", after=("pre",), batch=4, timeout_ms=1.0)),
                  plan)
    result = runner.invoke(app, _deploy_args(tmp_path, tmp_path / "emitted", plan))
    assert result.exit_code == 0, result.output
    running = load_state(tmp_path / "run")
    assert running.infer_url.endswith("/v2/models/pipeline/infer") and set(running.models) == {"pre", "cls"}
    try:
        (tmp_path / "run" / "request.json").write_text(json.dumps({"bodies": [body(1)]}))
        io.write_text_atomic(tmp_path / "t.csv", trace_to_csv_text(Trace(np.arange(100) * 10.0, 1000.0, name="t")))
        result = runner.invoke(app, ["loadtest", running.infer_url, "--trace", str(tmp_path / "t.csv"), "--body",
                                     str(tmp_path / "run" / "request.json"), "--max-requests", "60",
                                     "--requests", str(tmp_path / "req.csv"), "--out", str(tmp_path / "res.json")])
        assert result.exit_code == 0, result.output
        rows = (tmp_path / "req.csv").read_text().splitlines()
        assert len(rows) == 61 and all(r.endswith(",200,ok") for r in rows[1:])
        summary = json.loads((tmp_path / "res.json").read_text())["summary"]
        assert summary["requests"] == 60 and summary["dropped"] == 0

        new = tmp_path / "new.json"
        io.write_plan(plan_of(stage("pre", batch=2, timeout_ms=0.5, replicas=2),
                              stage("cls", after=("pre",), batch=4, timeout_ms=2.0)), new)
        result = runner.invoke(app, ["apply", str(new), "--deployment", str(tmp_path / "run"), "--settle-s", "0.5",
                                     "--probe-rps", "40", "--out", str(tmp_path / "switch.json")])
        assert result.exit_code == 0, result.output
        report = json.loads((tmp_path / "switch.json").read_text())
        assert report["switch_s"] > 0 and report["requests"] > 20 and report["failed"] == 0
        from planner.deploy.http import call

        config = call("GET", f"{running.admin_url}/v2/models/pre/config").json()
        assert config["instance_group"][0]["count"] == 2
        assert config["max_batch_size"] == 2
        assert int(config["dynamic_batching"]["max_queue_delay_microseconds"]) == 500
    finally:
        result = runner.invoke(app, ["undeploy", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert not group_alive(running.process)
    assert not (tmp_path / "run" / STATE_FILE).exists()
    assert _processes_under(tmp_path) == []


def test_a_bad_model_file_stops_everything_and_says_why(tmp_path):
    write_repo(tmp_path / "emitted", init="raise RuntimeError('broken model file')")
    plan = tmp_path / "plan.json"
    io.write_plan(plan_of(stage("pre"), stage("cls", after=("pre",))), plan)
    result = CliRunner().invoke(app, _deploy_args(tmp_path, tmp_path / "emitted", plan))
    assert result.exit_code == 2
    assert "broken model file" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run" / STATE_FILE).exists()
    assert _processes_under(tmp_path) == []


def test_sigint_while_waiting_stops_the_server(tmp_path):
    write_repo(tmp_path / "emitted", init="time.sleep(120)")
    plan = tmp_path / "plan.json"
    io.write_plan(plan_of(stage("pre"), stage("cls", after=("pre",))), plan)
    cli = subprocess.Popen([sys.executable, "-m", "planner.cli", *_deploy_args(tmp_path, tmp_path / "emitted", plan)],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not any("tritonserver" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")
                      for p in _processes_under(tmp_path) if Path(f"/proc/{p}").exists()):
            assert time.monotonic() < deadline and cli.poll() is None, cli.stdout.read().decode()
            time.sleep(0.2)
        time.sleep(1.0)  # the server is loading (the stub sleeps in initialize)
        cli.send_signal(signal.SIGINT)
        assert cli.wait(timeout=60) == 130
    finally:
        if cli.poll() is None:
            cli.kill()
    deadline = time.monotonic() + 10
    while _processes_under(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_under(tmp_path) == []
    assert not (tmp_path / "run" / STATE_FILE).exists()
