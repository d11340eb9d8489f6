"""`pipeplan demo`: the whole job on the bundled examples (profile live, plan, verify, tune, emit, report)."""

from __future__ import annotations

import csv

import pytest
from typer.testing import CliRunner

from planner.cli import app
from tests.fixtures import CONFIGS

runner = CliRunner()
TARGETS = {"ray-serve", "triton", "kserve", "seldon", "k8s"}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    pytest.importorskip("rapidocr_onnxruntime", reason="the demo's live profile and emit use the OCR zoo")
    out = tmp_path_factory.mktemp("demo") / "out"
    result = runner.invoke(app, ["demo", "--configs", str(CONFIGS), "--out", str(out)])
    return result, out


def test_demo_runs_every_step_and_says_where_everything_is(demo_run):
    result, out = demo_run
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for step in ("1/6 profile", "2/6 plan", "3/6 verify", "4/6 tune", "5/6 emit", "6/6 write the report"):
        assert step in text
    assert f"everything is in {out}" in text and str(out / "report" / "report.html") in text
    assert ".tmp" not in text  # paths are shown where the files end up, not where they were staged


def test_demo_plans_measured_examples_then_labelled_synthetic_ones(demo_run):
    result, out = demo_run
    text = " ".join(result.output.split())
    assert {p.name for p in (out / "plans").glob("*.plan.json")} == {"digits.plan.json", "ocr.plan.json"}
    assert {p.name for p in (out / "plans" / "synthetic").glob("*.plan.json")} == {"ocr.plan.json", "video.plan.json"}
    assert text.index("digits.yaml: measured profiles") < text.index("SYNTHETIC examples")
    assert text.count("SYNTHETIC profiles, not measured") == 2


def test_demo_writes_the_live_profile_the_trace_the_tuner_runs_emitted_configs_and_the_report(demo_run):
    _, out = demo_run
    rows = [r for r in csv.reader(l for l in (out / "profile" / "anglecls.quick.csv").read_text().splitlines()
                                   if not l.startswith("#"))]
    assert rows[0][:4] == ["model", "variant", "hardware", "batch_size"] and len(rows) == 1 + 2 * 3
    assert (out / "trace" / "bursty.csv").read_text().startswith("# pipeplan-trace")
    policies = {p.name for p in (out / "tune").iterdir() if p.is_dir()}
    assert {"oracle", "predictive"} <= policies and (out / "tune" / "compare.csv").is_file()
    assert TARGETS <= {p.name for p in (out / "emit" / "ocr").iterdir()}
    page = (out / "report" / "report.html").read_text()
    for figure in ("frontier", "latency-cdf", "tuner-timeline", "whatif-slo", "breakdown", "profiles"):
        assert (out / "report" / "figures" / f"{figure}.svg").is_file()
    assert "<script" not in page and "ocr" in page


def test_the_demo_never_replaces_a_users_folder(tmp_path):
    users = tmp_path / "mine"
    users.mkdir()
    (users / "notes.txt").write_text("mine\n")
    result = runner.invoke(app, ["demo", "--configs", str(CONFIGS), "--out", str(users), "--no-profile"])
    assert result.exit_code == 2 and "pipeplan did not write" in " ".join(result.output.split())
    assert (users / "notes.txt").read_text() == "mine\n"
