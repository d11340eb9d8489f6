"""`pipeplan profile` through typer's test runner: exit codes, messages, the table written."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

pytest.importorskip("onnxruntime", reason="the onnxruntime backend needs onnxruntime (the 'profile' extra)")
pytest.importorskip("onnx", reason="building test models needs onnx (the 'profile' extra)")

from planner.cli import app  # noqa: E402
from profiler.table_io import read_profile_table  # noqa: E402
from tests.fixtures import tiny_setup, write_manifest  # noqa: E402

runner = CliRunner()


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_profile_writes_a_valid_table_and_resumes(tmp_path, suffix):
    tiny_setup(tmp_path)
    manifest = write_manifest(tmp_path, [{"name": "a", "source": {"kind": "onnx", "path": "tiny.onnx"}},
                                         {"name": "bad", "source": {"kind": "onnx", "path": "broken.onnx"}}])
    out = tmp_path / f"profiles.{suffix}"
    args = ["profile", str(manifest), "--out", str(out), "--quick", "--cache-dir", str(tmp_path / "cache")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 rows written" in result.output and "1 failed" in result.output
    table = read_profile_table(out)
    assert {r.variant for r in table.rows} == {"a"}
    assert table.metadata["manifest"] == "tiny"
    assert (tmp_path / f"profiles.{suffix}.checkpoint.jsonl").exists()
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "2 resumed" in again.output


def test_bad_manifest_exits_2_with_the_field(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("schema_version: 1\nname: x\nhardwares: []\n", encoding="utf-8")
    result = runner.invoke(app, ["profile", str(path), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 2
    assert "hardwares" in result.output


def test_nothing_measurable_exits_2(tmp_path):
    tiny_setup(tmp_path)
    manifest = write_manifest(tmp_path, [{"name": "bad", "source": {"kind": "onnx", "path": "broken.onnx"}}])
    result = runner.invoke(app, ["profile", str(manifest), "--out", str(tmp_path / "o.csv"), "--quick",
                                 "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 2
    assert "no point could be measured" in result.output


def test_ctrl_c_keeps_finished_points_and_says_how_to_continue(tmp_path, monkeypatch):
    import profiler.runner as runner_module

    tiny_setup(tmp_path)
    manifest = write_manifest(tmp_path, [{"name": "a", "source": {"kind": "onnx", "path": "tiny.onnx"}}],
                              batch_sizes=(1, 2, 4))
    out = tmp_path / "profiles.csv"
    args = ["profile", str(manifest), "--out", str(out), "--quick", "--in-process", "--cache-dir", str(tmp_path / "c")]
    real = runner_module.measure_point
    calls = []

    def interrupted_on_the_third(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(runner_module, "measure_point", interrupted_on_the_third)
    result = runner.invoke(app, args)
    assert result.exit_code == 130
    assert "interrupted" in result.output and "run the same command again" in result.output
    assert not out.exists()
    monkeypatch.setattr(runner_module, "measure_point", real)
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "2 resumed" in again.output and "1 point-rounds measured now" in again.output
