"""`pipeplan emit` end to end: files written, exit 2 with one clear paragraph and nothing written on error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.plan import plan_to_json
from tests.emit.helpers import example_plan
from tests.fixtures import CONFIGS

runner = CliRunner()


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "ocr.plan.json"
    path.write_text(plan_to_json(example_plan("ocr")))
    return path


def run(*args: str):
    return runner.invoke(app, list(map(str, args)))


def assert_clean_error(result, out: Path, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not out.exists(), "output written despite the error"
    assert not list(out.parent.glob(f".{out.name}.*")), "a temporary folder was left behind"
    text = " ".join(result.output.split())
    for needle in needles:
        assert needle in text, f"{needle!r} not in: {text}"


def test_emit_writes_the_target(plan_file, tmp_path):
    pytest.importorskip("rapidocr_onnxruntime")
    out = tmp_path / "out"
    result = run("emit", plan_file, "--target", "ray-serve", "--out", out, "--manifest", CONFIGS / "ocr.manifest.yaml",
                 "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "ray-serve").iterdir()) == [
        "models", "pipeline.json", "pipeline_app.py", "routing.py", "serve_config.yaml"]
    assert "ray-serve: 4 files, 3 model files" in result.output


def test_a_missing_manifest_is_named(plan_file, tmp_path):
    out = tmp_path / "out"
    assert_clean_error(run("emit", plan_file, "--out", out), out, "pass --manifest", "manifest 'ocr'")


def test_a_missing_storage_uri_writes_nothing(plan_file, tmp_path):
    pytest.importorskip("rapidocr_onnxruntime")
    out = tmp_path / "out"
    result = run("emit", plan_file, "--target", "all", "--out", out, "--manifest", CONFIGS / "ocr.manifest.yaml",
                 "--cache-dir", tmp_path / "cache")
    assert_clean_error(result, out, "target kserve", "--storage-uri")


def test_a_broken_plan_is_refused(plan_file, tmp_path):
    data = json.loads(plan_file.read_text())
    data["stages"][1]["batch_size"] = 0
    broken = tmp_path / "broken.plan.json"
    broken.write_text(json.dumps(data))
    out = tmp_path / "out"
    assert_clean_error(run("emit", broken, "--out", out, "--manifest", CONFIGS / "ocr.manifest.yaml"), out,
                       "('angle').batch_size': found 0")


def test_a_typo_in_the_settings_names_the_field(plan_file, tmp_path):
    settings = tmp_path / "deploy.yaml"
    settings.write_text("schema_version: 1\nimage: x\nstorage_url: s3://x\n")
    out = tmp_path / "out"
    assert_clean_error(run("emit", plan_file, "--out", out, "--manifest", CONFIGS / "ocr.manifest.yaml",
                           "--settings", settings), out, "storage_url")


def test_an_unknown_stage_in_the_settings_is_named(plan_file, tmp_path):
    pytest.importorskip("rapidocr_onnxruntime")
    settings = tmp_path / "deploy.yaml"
    settings.write_text("schema_version: 1\nstage_settings: {recognize: {memory_mb: 512}}\n")
    out = tmp_path / "out"
    assert_clean_error(run("emit", plan_file, "--out", out, "--manifest", CONFIGS / "ocr.manifest.yaml",
                           "--settings", settings, "--cache-dir", tmp_path / "cache"), out, "['recognize']")


def test_an_existing_output_is_replaced_whole_but_never_a_folder_of_the_users(plan_file, tmp_path):
    pytest.importorskip("rapidocr_onnxruntime")
    out = tmp_path / "out"
    (out / "stale").mkdir(parents=True)
    args = ("--target", "triton", "--out", out, "--manifest", CONFIGS / "ocr.manifest.yaml",
            "--cache-dir", tmp_path / "cache")
    refused = run("emit", plan_file, *args)
    assert refused.exit_code == 2 and "pipeplan did not write" in " ".join(refused.output.split())
    assert (out / "stale").is_dir()  # the user's folder is untouched
    (out / "stale").rmdir()
    assert run("emit", plan_file, *args).exit_code == 0
    (out / "triton" / "stale.txt").write_text("left from an earlier emit\n")
    result = run("emit", plan_file, *args)  # a folder pipeplan wrote is replaced as a whole
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [".pipeplan-output", "triton"]
    assert not (out / "triton" / "stale.txt").exists()