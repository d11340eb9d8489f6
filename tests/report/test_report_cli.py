"""`pipeplan report` and `pipeplan explain` through typer's test runner, on real inputs made by the
other commands: files written, the page self-contained, same inputs same bytes, errors exit 2."""

from __future__ import annotations

import re
import shutil

import pytest
from typer.testing import CliRunner

from planner.cli import app
from tests.fixtures import CONFIGS, SYNTHETIC

runner = CliRunner()
FIGURES = ["frontier", "breakdown", "whatif-slo", "whatif-load", "whatif-accuracy-floor", "latency-cdf",
           "tuner-timeline", "profiles"]


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Plan, frontier, simulated requests and a tuner comparison of the measured OCR example."""
    d = tmp_path_factory.mktemp("inputs")
    steps = [
        ("plan", CONFIGS / "ocr.yaml", "--out", d / "p.json", "--pareto", d / "f.csv"),
        ("trace", "generate", "--kind", "step", "--rate-rps", "6", "--rate-after-rps", "10", "--duration-s", "60",
         "--seed", "1", "--out", d / "t.csv"),
        ("simulate", d / "p.json", "--trace", d / "t.csv", "--requests", d / "req.csv"),
        ("tune", CONFIGS / "ocr.yaml", "--trace", d / "t.csv", "--compare", "--out", d / "tune"),
    ]
    for step in steps:
        result = invoke(*step)
        assert result.exit_code == 0, result.output
    return d


def test_report_writes_every_figure_and_one_self_contained_page(inputs, tmp_path):
    out = tmp_path / "report"
    result = invoke("report", inputs / "p.json", "--spec", CONFIGS / "ocr.yaml", "--pareto", inputs / "f.csv",
                    "--sim", inputs / "req.csv", "--measured", inputs / "req.csv", "--tune", inputs / "tune",
                    "--out", out)
    assert result.exit_code == 0, result.output
    for name in FIGURES:
        assert (out / "figures" / f"{name}.svg").read_bytes().startswith(b"<?xml")
        assert (out / "figures" / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("<img ") == len(FIGURES)
    assert "<script" not in page and not re.search(r"(src|href)=['\"]https?:", page)
    assert "Cheapest change that improves the plan" in page and "binds" in page


def test_same_inputs_give_the_same_bytes(inputs, tmp_path):
    pages = []
    for name in ("a", "b"):
        result = invoke("report", inputs / "p.json", "--spec", CONFIGS / "ocr.yaml", "--sim", inputs / "req.csv",
                        "--out", tmp_path / name)
        assert result.exit_code == 0, result.output
        pages.append((tmp_path / name / "report.html").read_bytes())
        assert (tmp_path / name / "figures" / "frontier.png").exists()  # frontier computed from the spec
    assert pages[0] == pages[1]
    a, b = (sorted((tmp_path / n / "figures").iterdir()) for n in ("a", "b"))
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_the_spec_is_found_through_the_plans_provenance(inputs, tmp_path, monkeypatch):
    # The plan records only the spec's name and hash; beside the plan, the right file is found.
    shutil.copy(inputs / "p.json", tmp_path / "p.json")
    shutil.copy(SYNTHETIC / "ocr.yaml", tmp_path / "ocr.yaml")  # same name, other content: not taken
    monkeypatch.chdir(CONFIGS.parent)
    result = invoke("explain", tmp_path / "p.json")
    assert result.exit_code == 0, result.output
    assert "latency SLO" in result.output and "cheapest change" in result.output
    assert "Why each stage" in result.output


def test_explain_without_a_findable_spec_says_pass_spec(inputs, tmp_path, monkeypatch):
    shutil.copy(inputs / "p.json", tmp_path / "p.json")
    monkeypatch.chdir(tmp_path)
    result = invoke("explain", tmp_path / "p.json")
    assert result.exit_code == 2
    assert "pass --spec" in result.output and "Traceback" not in result.output
    # The report still works without it, and says what is missing.
    result = invoke("report", tmp_path / "p.json", "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert "No what-ifs or explanation" in (tmp_path / "r" / "report.html").read_text(encoding="utf-8")


def test_bad_inputs_exit_2_naming_the_file_row_and_column(inputs, tmp_path):
    bad = tmp_path / "req.csv"
    bad.write_text("request,arrival_ms,latency_ms,dropped\n0,1.0,12.5,0\n1,2.0,fast,0\n", encoding="utf-8")
    result = invoke("report", inputs / "p.json", "--spec", CONFIGS / "ocr.yaml", "--sim", bad, "--out", tmp_path / "r")
    assert result.exit_code == 2
    assert "req.csv: row 2, column 'latency_ms'" in result.output and "'fast'" in result.output
    assert not (tmp_path / "r").exists()  # nothing half-written
    result = invoke("report", inputs / "p.json", "--tune", tmp_path, "--out", tmp_path / "r")
    assert result.exit_code == 2 and "no timeline.csv" in result.output
    result = invoke("report", inputs / "p.json", "--spec", SYNTHETIC / "ocr.yaml", "--out", tmp_path / "r2")
    assert result.exit_code == 2 and "are not the plan's" in result.output and "--spec" in result.output
    # The right pipeline with another SLO: used, with a note that it changed since planning.
    changed = tmp_path / "ocr.yaml"
    changed.write_text((CONFIGS / "ocr.yaml").read_text(encoding="utf-8").replace("slo_ms: 700", "slo_ms: 800")
                       .replace("profiles: profiles/", f"profiles: {CONFIGS}/profiles/")
                       .replace("hardware_catalog: ", f"hardware_catalog: {CONFIGS}/"), encoding="utf-8")
    result = invoke("explain", inputs / "p.json", "--spec", changed)
    assert result.exit_code == 0, result.output
    assert "differs from the spec the plan was made from" in result.output
