"""`pipeplan tune` through typer's test runner: files, schema, determinism, errors; a real trace if present."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.io.traces import read_trace
from planner.traces import TraceFormat
from planner.tuner import PlanBook, PolicyKind, TuneSettings, compare, compare_rows
from tests.fixtures import SYNTHETIC
from tests.fixtures import video_request

runner = CliRunner()
TWITTER = Path(__file__).resolve().parents[3] / "shared" / "data" / "traces" / "twitter" / "ipa_segments_damped8.csv"
SUMMARY_KEYS = {"schema_version", "policy", "trace", "requests", "duration_s", "interval_s", "seed", "slo_ms",
                "total_cost_usd", "mean_cost_usd_per_hour", "slo_attainment", "p99_ms", "mean_accuracy",
                "reconfigurations", "config_switches", "replicas_launched", "trace_file", "scale",
                "time_mean_accuracy", "objective_value", "objective_unit", "preemptions", "serverless_cost_usd",
                "serverless_share"}


def _trace(tmp_path: Path) -> Path:
    path = tmp_path / "step.csv"
    result = runner.invoke(app, ["trace", "generate", "--kind", "step", "--rate-rps", "10", "--rate-after-rps", "40",
                                 "--duration-s", "120", "--seed", "2", "--out", str(path)])
    assert result.exit_code == 0, result.output
    return path


def test_tune_writes_a_timeline_row_per_interval_and_a_summary(tmp_path):
    trace = _trace(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["tune", str(SYNTHETIC / "video.yaml"), "--trace", str(trace), "--policy", "reactive",
                                 "--out", str(out), "--seed", "4"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((out / "timeline.csv").open()))
    assert len(rows) == 12 and [float(r["time_s"]) for r in rows] == [10.0 * k for k in range(12)]
    header = set(rows[0])
    for column in ("time_s", "arrival_rps", "cost_usd", "p99_ms", "slo_attainment", "detect_variant",
                   "detect_batch", "detect_replicas", "classify_variant", "classify_batch", "classify_replicas"):
        assert column in header
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == SUMMARY_KEYS and summary["policy"] == "reactive"
    assert abs(summary["total_cost_usd"] - sum(float(r["cost_usd"]) for r in rows)) < 1e-6
    first = (out / "summary.json").read_bytes(), (out / "timeline.csv").read_bytes()
    again = runner.invoke(app, ["tune", str(SYNTHETIC / "video.yaml"), "--trace", str(trace), "--policy", "reactive",
                                "--out", str(out), "--seed", "4"])
    assert again.exit_code == 0
    assert ((out / "summary.json").read_bytes(), (out / "timeline.csv").read_bytes()) == first  # deterministic


def test_tune_compare_writes_every_policy_and_prints_the_table(tmp_path):
    trace = _trace(tmp_path)
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["tune", str(SYNTHETIC / "video.yaml"), "--trace", str(trace), "--compare",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    for kind in (k for k in PolicyKind if k is not PolicyKind.BURST):  # no serverless entry
        assert (out / kind.value / "timeline.csv").exists() and (out / kind.value / "summary.json").exists()
        assert kind.value in result.output
    rows = list(csv.DictReader((out / "compare.csv").open()))
    assert {r["policy"] for r in rows} == {k.value for k in PolicyKind if k is not PolicyKind.BURST}
    assert float(next(r for r in rows if r["policy"] == "oracle")["cost_vs_oracle"]) == 1.0
    assert "cost vs oracle" in result.output


def test_tune_reports_a_missing_trace_and_exits_2(tmp_path):
    result = runner.invoke(app, ["tune", str(SYNTHETIC / "video.yaml"), "--trace", str(tmp_path / "none.csv"),
                                 "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "none.csv" in result.output and not (tmp_path / "o").exists()


@pytest.mark.skipif(not TWITTER.exists(), reason=f"real traces not present at {TWITTER.parent}")
def test_the_oracle_and_the_peak_plan_meet_the_slo_on_a_twitter_window():
    trace = read_trace(TWITTER, TraceFormat.COUNTS, rng=np.random.default_rng(0), column="bursty", duration_s=300)
    results = compare(PlanBook(video_request()), trace, (PolicyKind.ORACLE, PolicyKind.STATIC_PEAK),
                      TuneSettings(seed=1))
    rows = {r.policy: r for r in compare_rows(video_request().spec, results)}
    assert rows["oracle"].slo_attainment >= 0.99 and rows["static-peak"].slo_attainment >= 0.99
    assert rows["static-peak"].cost_vs_oracle >= 0.99  # the oracle may plan for a calmer-than-Poisson interval


def test_a_failure_midway_keeps_the_policies_already_finished(tmp_path, monkeypatch):
    from planner.errors import SolverError
    from planner.tuner import replay

    real = replay.tune

    def failing(book, trace, kind, settings=replay.TuneSettings()):
        if kind is PolicyKind.PREDICTIVE:
            raise SolverError("solver crashed (test)")
        return real(book, trace, kind, settings)

    monkeypatch.setattr(replay, "tune", failing)
    trace = _trace(tmp_path)
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["tune", str(SYNTHETIC / "video.yaml"), "--trace", str(trace), "--compare",
                                 "--out", str(out)])
    assert result.exit_code == 2 and "solver crashed" in result.output
    for done in ("oracle", "reactive"):  # run before the failure, written as each finished
        assert json.loads((out / done / "summary.json").read_text())["policy"] == done
    assert not (out / "predictive").exists() and not (out / "compare.csv").exists()


def _spec_with_tuner(tmp_path: Path, tuner: str) -> Path:
    text = (SYNTHETIC / "video.yaml").read_text()
    text = text.replace("profiles: profiles.csv", f"profiles: {SYNTHETIC / 'profiles.csv'}")
    text = text.replace("hardware_catalog: hardware.yaml", f"hardware_catalog: {SYNTHETIC / 'hardware.yaml'}")
    path = tmp_path / "video.yaml"
    path.write_text(text + tuner)
    return path


def test_tune_reads_the_specs_tuner_section_and_its_options_override_it(tmp_path):
    trace = _trace(tmp_path)
    spec = _spec_with_tuner(tmp_path, "tuner: {interval_s: 20, margin: 0.05, max_utilization: 0.95}\n")
    result = runner.invoke(app, ["tune", str(spec), "--trace", str(trace), "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["interval_s"] == 20
    assert len(list(csv.DictReader((tmp_path / "a" / "timeline.csv").open()))) == 6
    result = runner.invoke(app, ["tune", str(spec), "--trace", str(trace), "--out", str(tmp_path / "b"),
                                 "--interval-s", "30"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["interval_s"] == 30


@pytest.mark.parametrize("tuner, words", [("tuner: {peak_window_s: 0}\n", "peak_window_s"),
                                          ("tuner: {max_utilization: 1.2}\n", "max_utilization"),
                                          ("tuner: {margn: 0.1}\n", "margn")])
def test_a_bad_tuner_section_names_the_field_and_exits_2(tmp_path, tuner, words):
    trace = _trace(tmp_path)
    spec = _spec_with_tuner(tmp_path, tuner)
    result = runner.invoke(app, ["tune", str(spec), "--trace", str(trace), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert words in result.output and "tuner" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_tune_refuses_a_utilization_cap_of_one(tmp_path):
    trace = _trace(tmp_path)
    result = runner.invoke(app, ["tune", str(SYNTHETIC / "video.yaml"), "--trace", str(trace), "--out",
                                 str(tmp_path / "o"), "--max-utilization", "1"])
    assert result.exit_code == 2 and "(0, 1)" in result.output


def test_targets_met_is_the_same_in_a_single_run_and_a_comparison(tmp_path):
    trace = _trace(tmp_path)
    args = ["tune", str(SYNTHETIC / "video.yaml"), "--trace", str(trace), "--json", "--seed", "3"]
    single = runner.invoke(app, args + ["--policy", "predictive", "--out", str(tmp_path / "s")])
    both = runner.invoke(app, args + ["--compare", "--out", str(tmp_path / "c")])
    assert single.exit_code == 0 and both.exit_code == 0, single.output + both.output
    one = {p["policy"]: p for p in json.loads(single.output)["policies"]}
    every = {p["policy"]: p for p in json.loads(both.output)["policies"]}
    assert set(one) == {"oracle", "predictive"}
    for name in one:
        assert one[name] == every[name]  # cost, attainment, targets met (accuracy floor included)
