"""Fuzz the CLI's edge (issue 10): hypothesis draws specs, catalogs, profile tables, traces, plan files
and output paths, mostly valid with one field made hostile, and runs the command in-process.

The property, for every case: exit 0 with finite, valid output, or exit 2 with a message naming the
file; never another exit code, never a traceback, and no file (temporary or not) left behind on an
error. Each case is bounded in time (hypothesis ``deadline``) and the group runs in well under a
minute: a few dozen examples per property, no shrinking database.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from planner.cli import app
from tests.fixtures import SYNTHETIC

pytestmark = pytest.mark.fuzz
runner = CliRunner()
CASE = settings(max_examples=30, deadline=10_000, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Values that broke the file models before: non-finite, extreme, boolean, wrong type, empty, huge.
HOSTILE = st.sampled_from([float("inf"), float("-inf"), float("nan"), 1e308, 5e-324, -1, 0, 1e20, True, False,
                           "yes", "", [], {}, None, 10 ** 40, 2.5, -0.0, "1e3"])
SPEC_FIELDS = ["slo_ms", "arrival_rps", "arrival_cv", "max_replicas", "max_utilization", "batch_sizes", "hardware",
               "batch_timeout_quantiles", "name", "objective"]
STAGE_FIELDS = ["fanout", "max_replicas", "batch_sizes", "hardware", "variants", "after", "name", "model"]
HW_FIELDS = ["usd_per_hour", "spot_usd_per_hour", "startup_s", "max_units", "cores", "gpus", "kind", "name"]


def _strict_json(text: str):
    def refuse(constant: str):
        raise AssertionError(f"non-finite {constant} in the output")
    return json.loads(text, parse_constant=refuse)


def _finite(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def _workdir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="pipeplan-fuzz-"))
    shutil.copy(SYNTHETIC / "hardware.yaml", folder / "hardware.yaml")
    shutil.copy(SYNTHETIC / "profiles.csv", folder / "profiles.csv")
    spec = yaml.safe_load((SYNTHETIC / "video.yaml").read_text())
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    return folder


def _check(result, folder: Path, outputs: list[Path], names: list[str]) -> None:
    """The property: exit 0 and valid finite outputs, or exit 2 naming a file and nothing written."""
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    left = [p.name for p in folder.rglob(".*tmp*")]
    assert not left, f"temporary files left: {left}"
    if result.exit_code == 0:
        for out in outputs:
            if out.suffix == ".json":
                assert _finite(_strict_json(out.read_text()))
    else:
        text = " ".join(result.output.split())
        assert any(name in text for name in names), text
        for out in outputs:
            assert not out.exists(), f"{out} written despite the error"


def _plan_after_editing(file: str, edit, names: list[str]) -> None:
    """Edit one input file of a fresh work folder, run `pipeplan plan`, and check the property."""
    folder = _workdir()
    try:
        data = yaml.safe_load((folder / file).read_text())
        edit(data)
        (folder / file).write_text(yaml.safe_dump(data))
        out = folder / "plan.json"
        result = runner.invoke(app, ["plan", str(folder / "spec.yaml"), "--out", str(out)])
        _check(result, folder, [out], names)
    finally:
        shutil.rmtree(folder)


@CASE
@given(field=st.sampled_from(SPEC_FIELDS), value=HOSTILE)
def test_fuzz_spec_fields(field, value):
    _plan_after_editing("spec.yaml", lambda spec: spec.__setitem__(field, value),
                        ["spec.yaml", "profiles.csv", "hardware.yaml"])


@CASE
@given(stage=st.integers(0, 1), field=st.sampled_from(STAGE_FIELDS), value=HOSTILE)
def test_fuzz_stage_fields(stage, field, value):
    _plan_after_editing("spec.yaml", lambda spec: spec["stages"][stage].__setitem__(field, value),
                        ["spec.yaml", "profiles.csv", "hardware.yaml"])


@CASE
@given(entry=st.integers(0, 3), field=st.sampled_from(HW_FIELDS), value=HOSTILE)
def test_fuzz_catalog_fields(entry, field, value):
    _plan_after_editing("hardware.yaml", lambda catalog: catalog["hardware"][entry].__setitem__(field, value),
                        ["hardware.yaml", "spec.yaml"])


PROFILE_VALUES = st.sampled_from(["inf", "nan", "-1", "0", "1e308", "1e-300", "", "abc", "2.5", "1e20", "true",
                                  "99999999999999999999", "0.5"])


@CASE
@given(row=st.integers(0, 20), column=st.integers(0, 9), value=PROFILE_VALUES)
def test_fuzz_profile_cells(row, column, value):
    folder = _workdir()
    try:
        lines = (folder / "profiles.csv").read_text().splitlines()
        first = next(i for i, line in enumerate(lines) if not line.startswith("#"))
        target = first + 1 + row
        cells = lines[target].split(",")
        cells[column % len(cells)] = value
        lines[target] = ",".join(cells)
        (folder / "profiles.csv").write_text("\n".join(lines) + "\n")
        out = folder / "plan.json"
        result = runner.invoke(app, ["plan", str(folder / "spec.yaml"), "--out", str(out)])
        _check(result, folder, [out], ["profiles.csv", "spec.yaml"])
    finally:
        shutil.rmtree(folder)


TRACE_LINE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10, 10 ** 20).map(str),
    st.sampled_from(["", "#", "# duration_ms=1e13", "# duration_ms=abc", "1,2", "²", "\ufeff1", "1e15", "-5", "x,y"]),
)
FORMATS = st.sampled_from(["auto", "canonical", "timestamps", "counts", "azure"])


@CASE
@given(lines=st.lists(TRACE_LINE, max_size=8), canonical=st.booleans(), fmt=FORMATS)
def test_fuzz_traces(lines, canonical, fmt):
    folder = _workdir()
    try:
        head = ["# pipeplan-trace schema_version=1", "arrival_ms"] if canonical else []
        trace = folder / "trace.csv"
        trace.write_text("\n".join(head + lines) + "\n", encoding="utf-8")
        out = folder / "converted.csv"
        result = runner.invoke(app, ["trace", "convert", str(trace), "--trace-format", fmt, "--out", str(out)])
        _check(result, folder, [out], ["trace.csv"])
    finally:
        shutil.rmtree(folder)


PLAN_FIELDS = ["slo_ms", "arrival_rps", "stages", "predicted_p99_ms", "accuracy"]
PLAN_STAGE_FIELDS = ["fanout", "replicas", "batch_size", "batch_timeout_ms", "after", "service_ms_by_batch",
                     "stage", "utilization"]


@pytest.fixture(scope="module")
def good_plan() -> tuple[str, str]:
    folder = _workdir()
    try:
        runner.invoke(app, ["plan", str(folder / "spec.yaml"), "--out", str(folder / "p.json")])
        runner.invoke(app, ["trace", "generate", "--kind", "poisson", "--duration-s", "3", "--rate-rps", "5",
                            "--out", str(folder / "t.csv")])
        return (folder / "p.json").read_text(), (folder / "t.csv").read_text()
    finally:
        shutil.rmtree(folder)


@CASE
@given(top=st.booleans(), field=st.sampled_from(PLAN_FIELDS + PLAN_STAGE_FIELDS), value=HOSTILE)
def test_fuzz_plan_files(good_plan, top, field, value):
    folder = _workdir()
    try:
        data = json.loads(good_plan[0])
        if field in PLAN_FIELDS:
            data[field] = value
        else:
            data["stages"][0][field] = value
        (folder / "plan.json").write_text(json.dumps(data))
        (folder / "t.csv").write_text(good_plan[1])
        out = folder / "result.json"
        result = runner.invoke(app, ["simulate", str(folder / "plan.json"), "--trace", str(folder / "t.csv"),
                                     "--out", str(out)])
        _check(result, folder, [out], ["plan.json"])
    finally:
        shutil.rmtree(folder)


SEGMENT = st.sampled_from(["ok", "afile", "missing", "n" * 300, "-", "", ".", "..", "dir"])


@CASE
@given(parts=st.lists(SEGMENT, min_size=1, max_size=3), second=SEGMENT)
def test_fuzz_output_paths(parts, second):
    folder = _workdir()
    try:
        (folder / "afile").write_text("x")
        (folder / "dir").mkdir()
        target = str(folder.joinpath(*parts)) if parts != ["-"] else "-"
        requests = str(folder / second) if second != "-" else "-"
        before = sorted(p.name for p in folder.rglob("*"))
        trace = folder / "t.csv"
        trace.write_text("# pipeplan-trace schema_version=1\n# duration_ms=2000\narrival_ms\n1\n500\n1500\n")
        runner.invoke(app, ["plan", str(folder / "spec.yaml"), "--out", str(folder / "plan.json")])
        before = sorted(p.name for p in folder.rglob("*"))
        result = runner.invoke(app, ["simulate", str(folder / "plan.json"), "--trace", str(trace), "--out", target,
                                     "--requests", requests])
        assert result.exit_code in (0, 2), result.output
        assert "Traceback" not in result.output and "internal error" not in result.output, result.output
        assert not [p.name for p in folder.rglob(".*tmp*")]
        if result.exit_code == 2:
            assert sorted(p.name for p in folder.rglob("*")) == before, "an output was written despite the error"
    finally:
        shutil.rmtree(folder)
