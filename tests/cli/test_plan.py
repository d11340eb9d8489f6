"""`pipeplan plan` end to end: plans, frontiers, and a clear exit-2 error for each kind of bad input."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from planner.cli import app
from planner.plan import PLAN_SCHEMA_VERSION
from tests.fixtures import CONFIGS, SYNTHETIC, synthetic_workdir

runner = CliRunner()


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    return synthetic_workdir(tmp_path)


def run(*args: str):
    return runner.invoke(app, list(args))


def edit_spec(workdir: Path, change) -> Path:
    path = workdir / "spec.yaml"
    spec = yaml.safe_load(path.read_text())
    change(spec)
    path.write_text(yaml.safe_dump(spec))
    return path


def assert_clean_error(result, out: Path, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not out.exists(), "an output file was written despite the error"
    assert not list(out.parent.glob(".*.tmp")), "a temporary file was left behind"
    text = " ".join(result.output.split())
    for needle in needles:
        assert needle in text, f"{needle!r} not in: {text}"


@pytest.mark.parametrize("spec", [CONFIGS / "digits.yaml", CONFIGS / "ocr.yaml", SYNTHETIC / "video.yaml",
                                  SYNTHETIC / "ocr.yaml"], ids=["digits", "ocr", "synthetic-video", "synthetic-ocr"])
def test_bundled_examples_plan_and_write_a_frontier(tmp_path: Path, spec: Path):
    out, pareto = tmp_path / "plan.json", tmp_path / "pareto.csv"
    result = run("plan", str(spec), "--out", str(out), "--pareto", str(pareto))
    assert result.exit_code == 0, result.output
    assert "proven optimal" in result.output
    plan = json.loads(out.read_text())
    assert plan["schema_version"] == PLAN_SCHEMA_VERSION and plan["solver"]["status"] == "optimal"
    assert plan["predicted_p99_ms"] <= plan["slo_ms"]
    for key in ("stage", "model", "variant", "hardware", "batch_size", "batch_timeout_ms", "replicas",
                "capacity_items_per_s", "utilization", "predicted_latency_ms"):
        assert all(key in s for s in plan["stages"])
    rows = list(csv.DictReader(pareto.open()))
    assert len(rows) >= 2
    costs = [float(r["cost_usd_per_hour"]) for r in rows]
    accuracies = [float(r["accuracy"]) for r in rows]
    assert costs == sorted(costs) and accuracies == sorted(accuracies)
    assert len(set(costs)) == len(costs), "a frontier point is dominated"


def test_demo_without_examples_says_where_they_are(tmp_path: Path):
    result = run("demo", "--configs", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "run from the repository root" in " ".join(result.output.split())


def test_same_inputs_give_byte_identical_plans(tmp_path: Path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert run("plan", str(SYNTHETIC / "ocr.yaml"), "--out", str(a)).exit_code == 0
    assert run("plan", str(SYNTHETIC / "ocr.yaml"), "--out", str(b)).exit_code == 0
    assert a.read_bytes() == b.read_bytes()


def test_unknown_key_names_the_field(workdir: Path):
    spec = edit_spec(workdir, lambda s: s["stages"][0].update(fanuot=2))
    assert_clean_error(run("plan", str(spec), "--out", str(workdir / "p.json")), workdir / "p.json",
                       "spec.yaml", "stages[0] ('detect').fanuot", "unknown key", "fanout")


def test_cycle_in_after(workdir: Path):
    spec = edit_spec(workdir, lambda s: s["stages"][0].update(after=["classify"]))
    assert_clean_error(run("plan", str(spec), "--out", str(workdir / "p.json")), workdir / "p.json",
                       "spec.yaml", "cycle", "detect", "classify")


def test_unknown_name_in_after(workdir: Path):
    spec = edit_spec(workdir, lambda s: s["stages"][1].update(after=["detct"]))
    assert_clean_error(run("plan", str(spec), "--out", str(workdir / "p.json")), workdir / "p.json",
                       "spec.yaml", "classify", "unknown stage 'detct'")


def test_empty_variant_set(workdir: Path):
    spec = edit_spec(workdir, lambda s: s["stages"][1].update(variants=[]))
    assert_clean_error(run("plan", str(spec), "--out", str(workdir / "p.json")), workdir / "p.json",
                       "stages[1] ('classify').variants", "empty")


def test_unknown_variant(workdir: Path):
    spec = edit_spec(workdir, lambda s: s["stages"][1].update(variants=["resnet9000"]))
    assert_clean_error(run("plan", str(spec), "--out", str(workdir / "p.json")), workdir / "p.json",
                       "classify", "resnet9000", "profiled variants")


def test_unknown_model(workdir: Path):
    spec = edit_spec(workdir, lambda s: s["stages"][1].update(model="resnett"))
    assert_clean_error(run("plan", str(spec), "--out", str(workdir / "p.json")), workdir / "p.json",
                       "classify", "model 'resnett'", "profiles.csv")


def test_unknown_hardware_in_spec(workdir: Path):
    spec = edit_spec(workdir, lambda s: s.update(hardware=["cpu-2", "tpu-v9"]))
    assert_clean_error(run("plan", str(spec), "--out", str(workdir / "p.json")), workdir / "p.json",
                       "hardware 'tpu-v9'", "hardware.yaml")


@pytest.mark.parametrize("field,value,needle", [
    ("slo_ms", -5, "slo_ms"), ("arrival_rps", 0, "arrival_rps"), ("slo_ms", float("nan"), "slo_ms"),
])
def test_bad_numbers_in_spec(workdir: Path, field, value, needle):
    spec = edit_spec(workdir, lambda s: s.update({field: value}))
    assert_clean_error(run("plan", str(spec), "--out", str(workdir / "p.json")), workdir / "p.json",
                       "spec.yaml", needle)


def _edit_profiles(workdir: Path, transform) -> Path:
    path = workdir / "profiles.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(transform(lines)))
    return path


def test_missing_profile_row_for_an_allowed_batch_size(workdir: Path):
    _edit_profiles(workdir, lambda ls: [l for l in ls if not l.startswith("resnet,resnet152,gpu-t4,4,")])
    assert_clean_error(run("plan", str(workdir / "spec.yaml"), "--out", str(workdir / "p.json")),
                       workdir / "p.json", "profiles.csv", "resnet152", "gpu-t4", "batch_size [4]")


def test_a_sweep_that_stopped_early_is_planned_with_the_batch_sizes_it_has(workdir: Path):
    # --early-stop or --quick leave out the largest batch sizes; those are not options, the rest plan.
    _edit_profiles(workdir, lambda ls: [l for l in ls if not (l.startswith("resnet,resnet152,gpu-t4,")
                                                              and l.split(",")[3] in ("8", "16", "32"))])
    out = workdir / "p.json"
    result = run("plan", str(workdir / "spec.yaml"), "--out", str(out))
    assert result.exit_code == 0, result.output
    for stage in json.loads(out.read_text())["stages"]:
        if (stage["variant"], stage["hardware"]) == ("resnet152", "gpu-t4"):
            assert stage["batch_size"] <= 4


@pytest.mark.parametrize("bad,needle", [("nan", "latency_p50_ms"), ("-3", "latency_p50_ms"), ("0", "latency_p50_ms")])
def test_bad_numbers_in_profiles(workdir: Path, bad: str, needle: str):
    def corrupt(lines):
        out = []
        for line in lines:
            if line.startswith("resnet,resnet152,gpu-t4,4,"):
                cells = line.split(",")
                cells[4] = bad
                line = ",".join(cells)
            out.append(line)
        return out
    _edit_profiles(workdir, corrupt)
    assert_clean_error(run("plan", str(workdir / "spec.yaml"), "--out", str(workdir / "p.json")),
                       workdir / "p.json", "profiles.csv", "row", needle)


def test_unknown_hardware_in_profiles(workdir: Path):
    _edit_profiles(workdir, lambda ls: [l.replace("resnet,resnet152,gpu-t4,", "resnet,resnet152,gpu-t5,") for l in ls])
    assert_clean_error(run("plan", str(workdir / "spec.yaml"), "--out", str(workdir / "p.json")),
                       workdir / "p.json", "profiles.csv", "'gpu-t5'", "hardware.yaml")


def test_unreadable_and_missing_files(workdir: Path):
    out = workdir / "p.json"
    assert_clean_error(run("plan", str(workdir / "nope.yaml"), "--out", str(out)), out, "nope.yaml", "no such")
    assert_clean_error(run("plan", str(workdir / "spec.yaml"), "--profiles", str(workdir / "nope.csv"),
                           "--out", str(out)), out, "nope.csv", "no such file")
    (workdir / "binary.csv").write_bytes(b"\x00\xff\xfe\xfa")
    assert_clean_error(run("plan", str(workdir / "spec.yaml"), "--profiles", str(workdir / "binary.csv"),
                           "--out", str(out)), out, "binary.csv", "cannot read")
    (workdir / "broken.yaml").write_text("stages: [\n")
    assert_clean_error(run("plan", str(workdir / "broken.yaml"), "--out", str(out)), out,
                       "broken.yaml", "not valid YAML", "line")


def test_infeasible_slo_says_what_would_work(workdir: Path):
    spec = edit_spec(workdir, lambda s: s.update(slo_ms=5))
    assert_clean_error(run("plan", str(spec), "--out", str(workdir / "p.json"), "--pareto", str(workdir / "f.csv")),
                       workdir / "p.json", "latency SLO binds", "smallest achievable end-to-end p99", "Raise slo_ms")
    assert not (workdir / "f.csv").exists()


def test_verify_replans_until_the_simulation_meets_the_slo(tmp_path: Path):
    trace, out = tmp_path / "burst.csv", tmp_path / "plan.json"
    made = run("trace", "generate", "--kind", "mmpp", "--rate-rps", "30", "--rate-high-rps", "80",
               "--duration-s", "300", "--seed", "3", "--out", str(trace))
    assert made.exit_code == 0, made.output
    result = run("plan", str(SYNTHETIC / "video.yaml"), "--verify", str(trace), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "verified: simulated p99" in " ".join(result.output.split())
    assert "verification" not in json.loads(out.read_text())["provenance"]
    report = json.loads((tmp_path / "plan.verify.json").read_text())  # beside --out by default
    assert report["verified"] is True
    assert report["simulated_p99_ms"] <= json.loads(out.read_text())["slo_ms"]
    assert report["plan_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()


def test_verify_generated_writes_the_report_where_asked_and_says_what_it_saved(tmp_path: Path):
    out, report_path = tmp_path / "plan.json", tmp_path / "checked.json"
    result = run("plan", str(CONFIGS / "ocr.yaml"), "--verify-generated", "--out", str(out),
                 "--verify-out", str(report_path), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["verification"]["trace_generated"] is True and summary["verification"]["simulations"] >= 1
    assert summary["files"]["verification"] == str(report_path)
    report = json.loads(report_path.read_text())
    assert report["plan_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert report["cost_saved_usd_per_hour"] == pytest.approx(
        report["model_only_cost_usd_per_hour"] - report["cost_usd_per_hour"])
    assert not (tmp_path / "plan.verify.json").exists()


def test_verify_options_that_contradict_are_usage_errors(tmp_path: Path):
    out = tmp_path / "plan.json"
    both = run("plan", str(SYNTHETIC / "video.yaml"), "--verify", str(tmp_path / "t.csv"), "--verify-generated",
               "--out", str(out))
    assert_clean_error(both, out, "either --verify TRACE or --verify-generated")
    alone = run("plan", str(SYNTHETIC / "video.yaml"), "--verify-out", str(tmp_path / "r.json"), "--out", str(out))
    assert_clean_error(alone, out, "--verify-out needs")
    for bad in ("0", "-3", "many"):
        budget = run("plan", str(SYNTHETIC / "video.yaml"), "--verify-generated", "--verify-sims", bad, "--out", str(out))
        assert_clean_error(budget, out, "--verify-sims")


def test_a_collapsed_variant_is_never_chosen_silently(tmp_path: Path):
    spec = yaml.safe_load((CONFIGS / "ocr.yaml").read_text())
    spec["profiles"], spec["hardware_catalog"] = str(CONFIGS / spec["profiles"]), str(CONFIGS / spec["hardware_catalog"])
    spec["arrival_rps"] = 28
    path = tmp_path / "ocr28.yaml"
    path.write_text(yaml.safe_dump(spec))
    # with the example's floor: no plan, and the message says the budget binds under it
    assert_clean_error(run("plan", str(path), "--out", str(tmp_path / "p.json")), tmp_path / "p.json",
                       "budget binds under the accuracy floor", "min_accuracy 0.5")
    # without it: the 0.018 recogniser, with a warning naming its sibling
    spec["objective"].pop("min_accuracy")
    path.write_text(yaml.safe_dump(spec))
    result = run("plan", str(path))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "warning: stage 'recognise': variant rec-int8s measures accuracy 0.01815" in text
    assert "far below its sibling rec (0.996" in text
    assert json.loads(run("plan", str(path), "--json").output)["warnings"][0].startswith("stage 'recognise'")


def test_unknown_key_in_a_budget_objective_lists_that_objectives_keys(workdir: Path):
    spec = edit_spec(workdir, lambda s: s.update(objective={"kind": "max_accuracy", "budget": 2}))
    result = run("plan", str(spec), "--out", str(workdir / "p.json"))
    assert_clean_error(result, workdir / "p.json", "objective.budget", "unknown key", "budget_usd_per_hour")


def test_unknown_key_in_the_catalog(workdir: Path):
    catalog = workdir / "hardware.yaml"
    data = yaml.safe_load(catalog.read_text())
    data["hardware"][0]["price"] = 1
    catalog.write_text(yaml.safe_dump(data))
    result = run("plan", str(workdir / "spec.yaml"), "--out", str(workdir / "p.json"))
    assert_clean_error(result, workdir / "p.json", "hardware.yaml", "hardware[0] ('cpu-2').price", "usd_per_hour")
