"""The engines' own validators on what `pipeplan emit --target all` writes for the bundled examples
(real model files through the manifests), and each validator catching a broken file."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
import yaml

from planner.emit import EmitTarget, emit
from planner.emit.artifacts import resolve
from planner.emit.base import EmitInputs
from planner.emit.validate import manifests, ray, triton
from planner.emit.validate.run import check_output
from planner.io.emit import write_results
from tests.emit.helpers import SETTINGS, SHARED_SCHEMAS, example_plan
from tests.fixtures import CONFIGS


def _have(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


needs_deploy = pytest.mark.skipif(not _have("ray", "tritonclient", "google.protobuf", "kubernetes_validate", "jsonschema"),
                                  reason="the engines' validators are not installed: pip install '.[deploy]'")
needs_schemas = pytest.mark.skipif(not SHARED_SCHEMAS.is_dir(), reason=f"no CRD folder at {SHARED_SCHEMAS}")
needs_torch = pytest.mark.skipif(not _have("torch"), reason="the digits zoo trains with torch: pip install '.[torch]'")


def emit_example(name: str, out: Path, cache: Path) -> Path:
    plan = example_plan(name)
    artifacts, placements = resolve(plan, CONFIGS / f"{name}.manifest.yaml", cache)
    write_results(emit(EmitInputs(plan, artifacts, placements, SETTINGS), EmitTarget.ALL), out)
    return out


@pytest.fixture(scope="module")
def ocr_out(tmp_path_factory) -> Path:
    pytest.importorskip("rapidocr_onnxruntime", reason="the ocr zoo's models ship in rapidocr-onnxruntime")
    root = tmp_path_factory.mktemp("ocr")
    return emit_example("ocr", root / "out", root / "cache")


def test_real_model_files_are_copied_with_their_digest(ocr_out):
    import hashlib

    sums = (ocr_out / "storage" / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == 3
    for line in sums:
        digest, path = line.split("  ")
        assert hashlib.sha256((ocr_out / "storage" / path).read_bytes()).hexdigest() == digest
        assert digest in (ocr_out / "kserve" / "pipeline.yaml").read_text()
    for model in ("detect", "angle", "recognise"):
        assert (ocr_out / "triton" / "model_repository" / model / "1" / "model.onnx").is_file()


@needs_deploy
@needs_schemas
@pytest.mark.slow
def test_ocr_output_passes_every_offline_validator(ocr_out):
    outcomes = check_output(ocr_out, SHARED_SCHEMAS)
    assert len(outcomes) == 8
    for outcome in outcomes:
        assert outcome.passed, f"{outcome.name}: {outcome.skipped or outcome.problems}"


@needs_deploy
@needs_schemas
@needs_torch
@pytest.mark.slow
def test_digits_output_passes_every_offline_validator(tmp_path):
    out = emit_example("digits", tmp_path / "out", tmp_path / "cache")
    outcomes = check_output(out, SHARED_SCHEMAS)
    assert len(outcomes) == 8
    for outcome in outcomes:
        assert outcome.passed, f"{outcome.name}: {outcome.skipped or outcome.problems}"


@needs_deploy
def test_ray_check_catches_typos_and_bad_ranges(ocr_out):
    config = yaml.safe_load((ocr_out / "ray-serve" / "serve_config.yaml").read_text())
    deployment = config["applications"][0]["deployments"][1]
    deployment["ray_actor_options"]["num_cpu"] = 1  # typo: Ray's schema accepts it
    problems = ray.check_config(yaml.safe_dump(config))
    assert any("num_cpu: unknown key" in p for p in problems)
    del deployment["ray_actor_options"]["num_cpu"]
    del deployment["num_replicas"]
    deployment["autoscaling_config"] = {"min_replicas": 3, "max_replicas": 2}
    assert any("AutoscalingConfig" in p for p in ray.check_config(yaml.safe_dump(config)))
    deployment["autoscaling_config"] = {"min_replicas": 1, "max_replicas": 2}
    deployment["num_replicas"] = 2
    assert any("ServeDeploySchema" in p for p in ray.check_config(yaml.safe_dump(config)))


@needs_deploy
def test_triton_check_catches_a_broken_config(ocr_out, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(ocr_out / "triton" / "model_repository", repo)
    assert triton.check_repository(repo) == []
    config = repo / "angle" / "config.pbtxt"
    config.write_text(config.read_text().replace("instance_group", "instance_groups"))
    assert any("instance_groups" in p for p in triton.check_repository(repo))
    config.write_text(config.read_text().replace("instance_groups", "instance_group").replace("KIND_CPU", "KIND_GPU"))
    assert any("KIND_GPU" in p for p in triton.check_repository(repo))


@needs_deploy
@needs_schemas
def test_crd_and_admission_checks_catch_broken_manifests(ocr_out):
    kserve = manifests.load_documents((ocr_out / "kserve" / "pipeline.yaml").read_text())
    kserve[0]["spec"]["predictor"]["minReplica"] = 1  # typo
    assert any("minReplica" in p for p in manifests.check_crd_objects(kserve, SHARED_SCHEMAS))
    graph = kserve[-1]
    graph["spec"]["nodes"]["split"] = {"routerType": "Splitter", "steps": [
        {"name": "a", "serviceName": "ocr-angle", "weight": 70}, {"name": "b", "serviceName": "ocr-detect", "weight": 20}]}
    assert any("sum 100" in p for p in manifests.check_kserve_rules(kserve))
    seldon = manifests.load_documents((ocr_out / "seldon" / "pipeline.yaml").read_text())
    seldon.append({"apiVersion": "mlops.seldon.io/v1alpha1", "kind": "Experiment", "metadata": {"name": "x"},
                   "spec": {"default": "ocr-angle", "candidate": [{"name": "ocr-angle", "weight": 1}]}})
    assert any("candidates" in p for p in manifests.check_crd_objects(seldon, SHARED_SCHEMAS))
    assert any("needs candidates or a mirror" in p for p in manifests.check_seldon_rules(seldon))


@needs_deploy
def test_k8s_check_catches_typos_and_quantities(ocr_out):
    docs = manifests.load_documents((ocr_out / "k8s" / "pipeline.yaml").read_text())
    assert manifests.check_k8s_objects(docs) == []
    docs[0]["spec"]["replica"] = 2
    docs[0]["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "500 m"
    problems = manifests.check_k8s_objects(docs)
    assert any("replica" in p for p in problems) and any("500 m" in p for p in problems)
