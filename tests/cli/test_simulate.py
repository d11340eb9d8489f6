"""`pipeplan simulate` and `pipeplan trace ...` through typer's test runner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from planner import io
from planner.cli import app
from tests.fixtures import plan_of, stage

runner = CliRunner()


def _plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    io.write_plan(plan_of(stage("a", batch=4, timeout_ms=5.0, replicas=2, p50_ms=8.0),
                          stage("b", after=("a",), replicas=2, p50_ms=5.0), slo_ms=200.0), path)
    return path


def test_generate_simulate_and_describe(tmp_path):
    trace = tmp_path / "t.csv"
    result = runner.invoke(app, ["trace", "generate", "--kind", "gamma", "--rate-rps", "50", "--cv", "2",
                                 "--duration-s", "60", "--seed", "3", "--out", str(trace)])
    assert result.exit_code == 0, result.output
    first = trace.read_bytes()
    runner.invoke(app, ["trace", "generate", "--kind", "gamma", "--rate-rps", "50", "--cv", "2",
                        "--duration-s", "60", "--seed", "3", "--out", str(trace)])
    assert trace.read_bytes() == first  # same seed, same bytes
    out, requests = tmp_path / "r.json", tmp_path / "req.csv"
    args = ["simulate", str(_plan_file(tmp_path)), "--trace", str(trace), "--out", str(out), "--seed", "2",
            "--requests", str(requests)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "SLO 200 ms met by" in result.output
    data = json.loads(out.read_text())
    assert data["schema_version"] == 1 and data["summary"]["requests"] == data["trace"]["requests"]
    assert [s["stage"] for s in data["stages"]] == ["a", "b"]
    assert len(requests.read_text().splitlines()) == data["summary"]["requests"] + 1
    before = out.read_bytes()
    runner.invoke(app, args)
    assert out.read_bytes() == before
    result = runner.invoke(app, ["trace", "describe", str(trace)])
    assert result.exit_code == 0 and "CV of per-second counts" in result.output


def test_convert_counts_with_window_scale_and_compression(tmp_path):
    counts = tmp_path / "w.txt"
    counts.write_text(" ".join(["10"] * 100))
    out = tmp_path / "c.csv"
    result = runner.invoke(app, ["trace", "convert", str(counts), "--trace-format", "counts", "--start-s", "10",
                                 "--duration-s", "50", "--scale", "0.5", "--compress", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    trace = io_read(out)
    assert trace.duration_s == 25.0 and trace.requests == 250


def io_read(path: Path):
    from planner.io.traces import read_trace

    return read_trace(path)


def test_bad_inputs_exit_2_with_a_message(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("# pipeplan-trace schema_version=1\narrival_ms\n5\n1\n")
    result = runner.invoke(app, ["simulate", str(_plan_file(tmp_path)), "--trace", str(bad)])
    assert result.exit_code == 2
    assert "line 4, field 'arrival_ms'" in result.output
    result = runner.invoke(app, ["simulate", str(tmp_path / "missing.json"), "--trace", str(bad)])
    assert result.exit_code == 2 and "no such plan file" in result.output
    result = runner.invoke(app, ["trace", "generate", "--kind", "gamma", "--cv", "-1", "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 2 and "--cv" in result.output
    assert not (tmp_path / "x.csv").exists()
