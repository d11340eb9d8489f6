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


# ---- resource classes: plan's risk line, simulate's preemptions and cold starts ----------------------------


def _classes_workdir(tmp_path: Path, offers: dict) -> Path:
    """The synthetic video example planned on ``offers`` of its machines only (name -> extra catalog keys)."""
    import shutil

    import yaml

    from tests.fixtures import SYNTHETIC

    catalog = yaml.safe_load((SYNTHETIC / "hardware.yaml").read_text())
    base = {h["name"]: h for h in catalog["hardware"]}
    extra = []
    for source, terms in offers.items():
        entry = {k: v for k, v in base[source].items() if k != "spot_usd_per_hour"}
        extra.append({**entry, "name": f"{source}-{terms['class']}", "profile_as": source, **terms})
    catalog["hardware"] += extra
    (tmp_path / "hardware.yaml").write_text(yaml.safe_dump(catalog))
    shutil.copy(SYNTHETIC / "profiles.csv", tmp_path / "profiles.csv")
    spec = yaml.safe_load((SYNTHETIC / "video.yaml").read_text())
    spec["profiles"], spec["hardware_catalog"] = "profiles.csv", "hardware.yaml"
    spec["hardware"] = [e["name"] for e in extra]
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path


_SPOT = {"class": "spot", "preemptions_per_hour": 1.0, "replacement_s": 90}
_SPOT_OFFERS = {"cpu-2": _SPOT, "cpu-8": _SPOT, "gpu-t4": _SPOT, "gpu-a10g": _SPOT}


def _trace(tmp_path: Path, rate: float, duration_s: float) -> Path:
    trace = tmp_path / "t.csv"
    result = runner.invoke(app, ["trace", "generate", "--kind", "poisson", "--rate-rps", str(rate), "--duration-s",
                                 str(duration_s), "--seed", "1", "--out", str(trace)])
    assert result.exit_code == 0, result.output
    return trace


def test_a_spot_plan_reports_its_risk_and_simulates_preemptions(tmp_path):
    work = _classes_workdir(tmp_path, _SPOT_OFFERS)
    plan = work / "plan.json"
    result = runner.invoke(app, ["plan", str(work / "spec.yaml"), "--out", str(plan)])
    assert result.exit_code == 0, result.output
    assert "risk: expected" in result.output and "preemptions/h" in result.output
    data = json.loads(plan.read_text())
    assert {s["resource"]["resource_class"] for s in data["stages"]} == {"spot"}
    assert 0 < data["risk"]["expected_slo_attainment"] < 0.99
    # the same plan under a much harsher market (--hardware) than it was planned for
    harsh = yaml_catalog_with(work, preemptions_per_hour=30.0, replacement_s=300)
    trace = _trace(tmp_path, 40, 1800)
    out, calm_out = tmp_path / "r.json", tmp_path / "calm.json"
    args = ["simulate", str(plan), "--trace", str(trace), "--seed", "4", "--hardware", str(harsh)]
    result = runner.invoke(app, args + ["--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "resource classes:" in result.output and "preemptions" in result.output
    hit = json.loads(out.read_text())
    assert hit["resources"]["preemptions"] > 0 and hit["resources"]["cold_starts"] == 0
    first = out.read_bytes()
    assert runner.invoke(app, args + ["--out", str(out)]).exit_code == 0
    assert out.read_bytes() == first  # same seed, same bytes
    result = runner.invoke(app, args + ["--out", str(calm_out), "--no-resource-classes"])
    assert result.exit_code == 0, result.output
    calm = json.loads(calm_out.read_text())
    assert "resources" not in calm and "resource classes:" not in result.output
    assert hit["summary"]["slo_attainment"] < calm["summary"]["slo_attainment"]


def yaml_catalog_with(work: Path, **terms) -> Path:
    import yaml

    catalog = yaml.safe_load((work / "hardware.yaml").read_text())
    for h in catalog["hardware"]:
        if h.get("class") == "spot":
            h.update(terms)
    path = work / "harsh.yaml"
    path.write_text(yaml.safe_dump(catalog))
    return path


def test_a_serverless_plan_simulates_cold_starts(tmp_path):
    fn = {"class": "serverless", "usd_per_second": 0.0002, "cold_start_ms": 800, "max_concurrency": 64,
          "keep_warm_s": 5}
    work = _classes_workdir(tmp_path, {"cpu-8": fn, "gpu-t4": fn})
    plan = work / "plan.json"
    result = runner.invoke(app, ["plan", str(work / "spec.yaml"), "--out", str(plan)])
    assert result.exit_code == 0, result.output
    assert "cold starts/h" in result.output
    trace = _trace(tmp_path, 40, 120)
    result = runner.invoke(app, ["simulate", str(plan), "--trace", str(trace), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["cold_starts"] > 0 and summary["preemptions"] == 0


def test_a_catalog_without_the_plans_hardware_is_refused_naming_both_files(tmp_path):
    plan = _plan_file(tmp_path)  # its stages run on 'cpu'
    other = tmp_path / "other.yaml"
    other.write_text("schema_version: 1\nhardware:\n  - {name: gpu, kind: gpu, cores: 4, gpus: 1, usd_per_hour: 1}\n")
    trace = _trace(tmp_path, 10, 10)
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["simulate", str(plan), "--trace", str(trace), "--hardware", str(other),
                                 "--out", str(out)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "Traceback" not in text and str(plan.name) in text and str(other.name) in text
    assert "'a' on 'cpu'" in text and not out.exists()


def test_a_hand_edited_plan_with_bad_class_terms_is_refused(tmp_path):
    plan = _plan_file(tmp_path)
    trace = _trace(tmp_path, 10, 10)
    data = json.loads(plan.read_text())
    for resource, needle in (({"resource_class": "spot", "replacement_s": 60}, "preemptions_per_hour"),
                             ({"resource_class": "spot", "preemptions_per_hour": -1, "replacement_s": 60},
                              "expected a number >= 0"),
                             ({"resource_class": "preemptible"}, "preemptible")):
        data["stages"][0]["resource"] = resource
        plan.write_text(json.dumps(data))
        result = runner.invoke(app, ["simulate", str(plan), "--trace", str(trace)])
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.split())
        assert "Traceback" not in text and needle in text and plan.name in text, text
