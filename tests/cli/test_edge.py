"""The CLI's edge (issue 9 item 5) and the robustness reproducers of issue 10, one test per group.

Every bad input exits 2 with a message naming the file (or option) and leaves nothing behind;
an unexpected exception exits 1 with one line asking for a bug report.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from planner import io
from planner.plan import PLAN_SCHEMA_VERSION
from planner.cli import app
from planner.cli.plan import plan_tables
from tests.fixtures import SYNTHETIC, synthetic_workdir

runner = CliRunner()


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    return synthetic_workdir(tmp_path)


def run(*args) -> object:
    return runner.invoke(app, [str(a) for a in args])


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*tmp*"))


def assert_exit_2(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    for needle in needles:
        assert needle in text, f"{needle!r} not in: {text}"


def spec_with(work: Path, text: str) -> Path:
    path = work / "spec.yaml"
    path.write_text(text)
    return path


BASE = ("schema_version: 1\nname: v\nprofiles: profiles.csv\nhardware_catalog: hardware.yaml\n"
        "stages:\n  - {name: detect, model: yolov5}\n  - {name: classify, model: resnet, after: [detect]}\n")


# --- issue 9 item 5: the edge --------------------------------------------------------------------------

def test_version_json_stdout_lp_and_the_objective_in_the_summary(work):
    assert run("--version").output.strip().startswith("pipeplan ")
    result = run("plan", work / "spec.yaml")
    assert result.exit_code == 0, result.output
    assert "objective min_cost = " in result.output and "USD/h, proven optimal by cbc" in " ".join(result.output.split())
    result = run("plan", work / "spec.yaml", "--out", "-")
    plan = json.loads(result.stdout[:result.stdout.rindex("}") + 1])  # the plan comes first on stdout
    assert plan["schema_version"] == PLAN_SCHEMA_VERSION and not (work / "-").exists()
    result = run("plan", work / "spec.yaml", "--json", "--lp", work / "p.lp")
    summary = json.loads(result.stdout)
    assert summary["objective"]["unit"] == "usd_per_hour" and summary["status"] == "optimal"
    lp = (work / "p.lp").read_text()
    assert "c1_one_" in lp and "Subject To" in lp  # readable constraint names


def test_plan_tables_at_80_columns_never_cut_a_key_column(work):
    request = io.load_request(work / "spec.yaml")
    from planner.optimize import make_plan

    plan = make_plan(request)
    narrow = Console(width=80, record=True)
    for table in plan_tables(plan, narrow.width):
        narrow.print(table)
    text = narrow.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    for s in plan.stages:
        assert s.variant in text and s.hardware in text


def test_an_unexpected_exception_is_one_line_asking_for_a_bug_report(work, monkeypatch):
    from planner import optimize

    def broken(request):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(optimize, "make_plan", broken)
    result = run("plan", work / "spec.yaml")
    assert result.exit_code == 1 and "this is a bug in pipeplan" in result.output and "Traceback" not in result.output
    result = run("--debug", "plan", work / "spec.yaml")
    assert result.exit_code == 1 and "Traceback" in result.output


# --- issue 10 --------------------------------------------------------------------------------------

def test_1_write_targets_are_checked_up_front_and_all_or_nothing(work, tmp_path):
    spec = work / "spec.yaml"
    ok = work / "ok.json"
    (work / "afile").write_text("x")
    for target, says in [(work, "is a folder"), (work / "missing" / "p.json", "does not exist"),
                         (work / "afile" / "p.json", "is a file, not a folder"), (work / ("n" * 300), "255"),
                         ("", "is a folder")]:
        assert_exit_2(run("plan", spec, "--out", target), says)
    assert_exit_2(run("plan", spec, "--out", ok, "--pareto", work), "--pareto", "is a folder")
    assert not ok.exists()
    assert not (work / "missing").exists()
    if os.geteuid() != 0:  # root writes anywhere
        ro = work / "ro"
        ro.mkdir(mode=0o500)
        assert_exit_2(run("plan", spec, "--out", ro / "p.json"), "permission denied")
    trace = work / "t.csv"
    assert run("trace", "generate", "--kind", "poisson", "--duration-s", "5", "--out", trace).exit_code == 0
    assert run("plan", spec, "--out", ok).exit_code == 0
    ok.unlink()
    assert_exit_2(run("plan", spec, "--out", ok, "--pareto", work / "missing" / "x.csv"), "does not exist")
    assert not ok.exists() and leftovers(work) == []


def test_1_demo_failing_on_a_later_spec_writes_nothing_and_names_the_spec(work, tmp_path):
    configs = work / "configs"
    configs.mkdir()
    (configs / "a.yaml").write_text(BASE.replace("profiles.csv", "../profiles.csv").replace(
        "hardware.yaml", "../hardware.yaml") + "slo_ms: 600\narrival_rps: 10\n")
    (configs / "b.yaml").write_text(BASE.replace("profiles.csv", "../profiles.csv").replace(
        "hardware.yaml", "../hardware.yaml") + "slo_ms: 1\narrival_rps: 10\n")
    out = work / "demo"
    assert_exit_2(run("demo", "--configs", configs, "--out", out), str(configs / "b.yaml"), "No plan")
    assert not out.exists()


@pytest.mark.parametrize("field, value", [("arrival_rps", ".inf"), ("arrival_rps", "1e308"), ("slo_ms", ".inf"),
                                          ("arrival_cv", "1e308"), ("arrival_rps", "5e-324"), ("slo_ms", ".nan")])
def test_3_non_finite_and_extreme_numbers_are_refused_with_the_field(work, field, value):
    values = {"slo_ms": "600", "arrival_rps": "10", field: value}
    spec = spec_with(work, BASE + "".join(f"{k}: {v}\n" for k, v in values.items()))
    assert_exit_2(run("plan", spec, "--out", work / "p.json"), str(spec), f"field '{field}'")
    assert not (work / "p.json").exists()


def test_3_infinite_weights_startup_and_profile_latencies_are_refused(work):
    spec = spec_with(work, BASE + "slo_ms: 600\narrival_rps: 10\nobjective: {kind: weighted, accuracy_weight: .inf, "
                     "cost_weight: 1}\n")
    assert_exit_2(run("plan", spec), "accuracy_weight")
    spec_with(work, BASE + "slo_ms: 600\narrival_rps: 10\n")
    catalog = (work / "hardware.yaml").read_text().replace("startup_s: 60}", "startup_s: .inf}", 1)
    (work / "hardware.yaml").write_text(catalog)
    assert_exit_2(run("plan", work / "spec.yaml"), "hardware.yaml", "startup_s")
    shutil.copy(SYNTHETIC / "hardware.yaml", work / "hardware.yaml")
    lines = (work / "profiles.csv").read_text().splitlines()
    header = [i for i, line in enumerate(lines) if not line.startswith("#")][0]
    cells = lines[header + 1].split(",")
    p50 = lines[header].split(",").index("latency_p50_ms")
    for bad in ("1e-300", "1e308"):
        cells[p50] = bad
        (work / "profiles.csv").write_text("\n".join(lines[:header + 1] + [",".join(cells)] + lines[header + 2:]) + "\n")
        assert_exit_2(run("plan", work / "spec.yaml"), "profiles.csv", "latency_p50_ms")


def test_4_huge_prices_and_integers_are_refused(work):
    catalog = (work / "hardware.yaml").read_text() + \
        "  - {name: gold, kind: cpu, cores: 2, gpus: 0, usd_per_hour: 1e20}\n"
    (work / "hardware.yaml").write_text(catalog)
    spec_with(work, BASE + "slo_ms: 600\narrival_rps: 10\n")
    assert_exit_2(run("plan", work / "spec.yaml"), "hardware.yaml", "usd_per_hour")
    shutil.copy(SYNTHETIC / "hardware.yaml", work / "hardware.yaml")
    spec = spec_with(work, BASE + "slo_ms: 600\narrival_rps: " + "9" * 5000 + "\n")
    assert_exit_2(run("plan", spec), str(spec), "5000 digits")


def test_5_trace_and_import_readers_never_leak_library_errors(work, tmp_path):
    cases = {
        "extra.csv": ("# pipeplan-trace schema_version=1\narrival_ms\n1\n2,3\n", "auto"),
        "big.txt": ("1 2 99999999999999999999999\n", "counts"),
        "sq.txt": ("1 2²\n", "counts"),
        "azure.csv": ("TIMESTAMP,ContextTokens,GeneratedTokens\n", "azure"),
        "empty.csv": ("", "azure"),
    }
    for name, (text, fmt) in cases.items():
        (work / name).write_text(text, encoding="utf-8")
        assert_exit_2(run("trace", "describe", work / name, "--trace-format", fmt), name)
    trace = work / "t.csv"
    for option, value in [("--duration-s", "nan"), ("--duration-s", "inf"), ("--seed", "-1")]:
        assert_exit_2(run("trace", "generate", "--kind", "poisson", option, value, "--out", trace), option)
    assert not trace.exists()
    ma = work / "ma.csv"
    ma.write_text("Model,Batch,Concurrency,Throughput (infer/sec),p99 Latency (ms),Avg Latency (ms)\n"
                  "m,inf,1,10,5,4\n")
    assert_exit_2(run("profile-import", "model-analyzer", ma, "--out", work / "o.csv", "--hardware", "cpu-2",
                      "--accuracy", "0.9"), "ma.csv", "Batch")
    pa = work / "pa.csv"
    pa.write_text("Concurrency,Inferences/Second,p50 latency,p99 latency\nnan,10,1000,2000\n")
    assert_exit_2(run("profile-import", "perf-analyzer", pa, "--out", work / "o.csv", "--hardware", "cpu-2",
                      "--accuracy", "0.9", "--model", "m", "--variant", "v", "--batch-size", "1"), "pa.csv", "Concurrency")
    assert not (work / "o.csv").exists()


def test_6_allocations_are_bounded_with_a_limit_message(work):
    huge = work / "huge.csv"
    huge.write_text("# pipeplan-trace schema_version=1\n# duration_ms=1e13\narrival_ms\n1\n")
    assert_exit_2(run("trace", "describe", huge), "huge.csv", "limit")
    far = work / "far.csv"
    far.write_text("# pipeplan-trace schema_version=1\narrival_ms\n0\n1e15\n")
    assert_exit_2(run("trace", "describe", far), "far.csv", "limit")
    ns = work / "ns.txt"
    ns.write_text("1700000000000000000\n1700000001000000000\n")
    assert_exit_2(run("trace", "convert", ns, "--trace-format", "timestamps", "--out", work / "o.csv"), "ns.txt",
                  "time unit")
    assert_exit_2(run("trace", "generate", "--kind", "poisson", "--rate-rps", "1e9", "--out", work / "g.csv"), "limit")
    assert not (work / "o.csv").exists() and not (work / "g.csv").exists()


def test_7_zero_duration_traces_and_huge_intervals_in_tune(work):
    one = work / "one.txt"
    one.write_text("5\n")
    out = work / "tuned"
    assert_exit_2(run("tune", work / "spec.yaml", "--trace", one, "--trace-format", "timestamps", "--out", out),
                  "one.txt", "at least one second")
    assert_exit_2(run("tune", work / "spec.yaml", "--trace", one, "--out", out, "--interval-s", "1e30"), "--interval-s")
    assert not out.exists()


def test_8_silent_acceptance_is_gone(work):
    for text, says in [(BASE + "slo_ms: true\narrival_rps: 10\n", "slo_ms"),
                       (BASE + "slo_ms: 600\narrival_rps: yes\n", "arrival_rps"),
                       (BASE + "slo_ms: 600\nslo_ms: 700\narrival_rps: 10\n", "duplicate key 'slo_ms'"),
                       (BASE + "slo_ms: 600\narrival_rps: 10\nhardware: []\n", "hardware")]:
        spec = spec_with(work, text)
        assert_exit_2(run("plan", spec), str(spec), says)
    spec_with(work, BASE + "slo_ms: 600\narrival_rps: 10\n")
    plan, trace = work / "p.json", work / "t.csv"
    assert run("plan", work / "spec.yaml", "--out", plan).exit_code == 0
    assert run("trace", "generate", "--kind", "poisson", "--duration-s", "5", "--out", trace).exit_code == 0
    for slo in ("0", "-1", "nan"):
        assert_exit_2(run("simulate", plan, "--trace", trace, "--slo-ms", slo), "--slo-ms")
    for option in ("--rate-after-rps", "--rate-end-rps"):
        for value in ("-1", "nan"):
            assert_exit_2(run("trace", "generate", "--kind", "step", option, value, "--out", work / "g.csv"), option)
    empty = work / "empty.csv"
    empty.write_text("# pipeplan-trace schema_version=1\n# duration_ms=1000\narrival_ms\n")
    assert_exit_2(run("simulate", plan, "--trace", empty), "empty.csv", "no requests")
    ma = work / "ma.csv"
    ma.write_text("Model,Batch,Concurrency,Throughput (infer/sec),p99 Latency (ms),Avg Latency (ms)\nm,2.5,1,10,5,4\n")
    assert_exit_2(run("profile-import", "model-analyzer", ma, "--out", work / "o.csv", "--hardware", "cpu-2",
                      "--accuracy", "0.9"), "Batch", "whole number")


def test_9_cycles_hand_edited_plans_and_messages(work):
    stages = "".join(f"  - {{name: s{i}, model: yolov5, after: [s{(i + 1) % 1500}]}}\n" for i in range(1500))
    spec = spec_with(work, BASE.split("stages:")[0] + "slo_ms: 600\narrival_rps: 10\nstages:\n" + stages)
    assert_exit_2(run("plan", spec), str(spec))
    spec_with(work, BASE + "slo_ms: 600\narrival_rps: 10\n")
    plan, trace = work / "p.json", work / "t.csv"
    assert run("plan", work / "spec.yaml", "--out", plan).exit_code == 0
    assert run("trace", "generate", "--kind", "poisson", "--duration-s", "5", "--out", trace).exit_code == 0
    good = json.loads(plan.read_text())
    for edit, says in [(lambda d: d.update(stages=[]), "stages"),
                       (lambda d: d["stages"][0].update(fanout=-1), "fanout"),
                       (lambda d: d.update(slo_ms="500"), "slo_ms")]:
        data = json.loads(json.dumps(good))
        edit(data)
        bad = work / "bad.json"
        bad.write_text(json.dumps(data))
        assert_exit_2(run("simulate", bad, "--trace", trace), "bad.json", says)
    assert_exit_2(run("plan", work / "spec.yaml", "--time-limit", "-1"), "--time-limit")
    bom = work / "bom.csv"
    bom.write_text("\ufeff# pipeplan-trace schema_version=1\n# duration_ms=1000\narrival_ms\n1\n", encoding="utf-8")
    assert run("trace", "describe", bom).exit_code == 0


@pytest.mark.slow
def test_10_sigint_and_sigterm_during_a_solve_leave_no_cbc_and_no_files(work, tmp_path):
    """A real pipeplan process, interrupted while CBC solves: no cbc child survives, no .mps/.sol is left."""
    import signal
    import subprocess
    import sys
    import time

    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    # A large instance so that CBC is still running when the signal comes.
    stages = "".join(f"  - {{name: s{i}, model: {'yolov5' if i % 2 else 'resnet'}}}\n" for i in range(60))
    spec_with(work, BASE.split("stages:")[0] + "slo_ms: 600\narrival_rps: 40\n"
              "objective: {kind: min_cost, min_accuracy: 0.01}\nstages:\n" + stages)
    for sig, group in [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)]:
        env = {**os.environ, "TMPDIR": str(tmp), "TMP": str(tmp)}
        proc = subprocess.Popen([sys.executable, "-c", "from planner.cli import main; main()", "plan",
                                 str(work / "spec.yaml"), "--out", str(work / "p.json"), "--pareto", str(work / "f.csv")],
                                env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline and not list(tmp.rglob("*-pulp.mps")):
            time.sleep(0.05)
        if not list(tmp.rglob("*-pulp.mps")):
            proc.kill()
            pytest.skip("CBC finished before it could be interrupted")
        os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
        output = proc.communicate(timeout=30)[0].decode()
        assert proc.returncode == 130, output
        assert list(tmp.rglob("*")) == [], "CBC's temporary files were left behind"
        ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
        assert str(tmp) not in ps, "a cbc child is still running"
        assert not (work / "p.json").exists() and leftovers(work) == []
