"""Every emitter: golden files for the bundled examples, determinism, and refusals of broken plans.

Regenerate the golden files after an intended change with:
    PIPEPLAN_UPDATE_GOLDEN=1 python -m pytest tests/emit/test_emitters.py
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import yaml

from planner.emit import EMITTERS, EmitTarget, emit
from planner.emit.settings import DeploySettings
from planner.errors import EmitError
from tests.emit.helpers import EXAMPLES, SETTINGS, example_plan, stand_in_inputs, with_stage

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "emit"
ENGINES = [t for t in EmitTarget if t is not EmitTarget.ALL]


@pytest.fixture(scope="module")
def plans():
    return {name: example_plan(name) for name in EXAMPLES}


def _text_files(result):
    return {str(f.path): f.content for f in result.files if not str(f.path).endswith(".py")}


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("target", ENGINES, ids=lambda t: t.value)
def test_emitted_files_match_golden(plans, name, target):
    result = EMITTERS[target](stand_in_inputs(plans[name]))
    folder = GOLDEN / name
    for path, content in _text_files(result).items():
        golden = folder / path
        if os.environ.get("PIPEPLAN_UPDATE_GOLDEN"):
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_bytes(content)
        assert golden.is_file(), f"no golden file {golden}; regenerate (see module docstring)"
        assert content == golden.read_bytes(), f"{path} for {name} changed; review and regenerate"


@pytest.mark.parametrize("target", ENGINES, ids=lambda t: t.value)
def test_same_plan_gives_the_same_bytes(plans, target):
    first = EMITTERS[target](stand_in_inputs(plans["ocr"]))
    second = EMITTERS[target](stand_in_inputs(plans["ocr"]))
    assert first == second


def test_all_is_every_engine_once(plans):
    results = emit(stand_in_inputs(plans["ocr"]), EmitTarget.ALL)
    assert [r.target for r in results] == [t.value for t in ENGINES]


@pytest.mark.parametrize("target", ENGINES, ids=lambda t: t.value)
def test_batch_size_zero_is_refused(plans, target):
    broken = with_stage(plans["ocr"], "angle", batch_size=0)
    with pytest.raises(EmitError, match=r"stage 'angle', field 'batch_size': found 0"):
        EMITTERS[target](stand_in_inputs(broken))


@pytest.mark.parametrize("target", ENGINES, ids=lambda t: t.value)
def test_missing_stage_is_refused(plans, target):
    plan = plans["ocr"]
    broken = dataclasses.replace(plan, stages=tuple(s for s in plan.stages if s.stage != "angle"))
    with pytest.raises(EmitError, match=r"stage 'recognise', field 'after': stage 'angle' is not in the plan"):
        EMITTERS[target](stand_in_inputs(broken))


@pytest.mark.parametrize("target", [EmitTarget.KSERVE, EmitTarget.SELDON, EmitTarget.K8S], ids=lambda t: t.value)
def test_cluster_targets_need_a_storage_uri(plans, target):
    settings = DeploySettings(image=SETTINGS.image)
    with pytest.raises(EmitError, match="--storage-uri"):
        EMITTERS[target](stand_in_inputs(plans["ocr"], settings))


def test_k8s_needs_an_image(plans):
    with pytest.raises(EmitError, match="--image"):
        EMITTERS[EmitTarget.K8S](stand_in_inputs(plans["ocr"], DeploySettings(storage_uri="s3://x/y")))


def test_ray_serve_carries_the_plan(plans):
    plan = plans["ocr"]
    result = EMITTERS[EmitTarget.RAY_SERVE](stand_in_inputs(plan))
    config = yaml.safe_load(next(f.content for f in result.files if f.path.name == "serve_config.yaml"))
    assert config["http_options"]["host"] == "127.0.0.1"
    deployments = {d["name"]: d for d in config["applications"][0]["deployments"]}
    for s in plan.stages:
        d = deployments[s.stage]
        assert d["num_replicas"] == s.replicas
        assert d["max_ongoing_requests"] >= s.batch_size
        assert d["user_config"] == {"max_batch_size": s.batch_size, "batch_wait_timeout_s": s.batch_timeout_ms / 1000}
        threads = 2 if s.hardware == "cpu-2" else 1
        assert d["ray_actor_options"] == {"num_cpus": threads, "num_gpus": 0}


def test_ray_serve_autoscales_where_the_settings_give_a_range(plans):
    settings = DeploySettings.model_validate({**SETTINGS.model_dump(), "stage_settings": {
        "recognise": {"max_replicas": 8, "target_cpu_utilization": 70}}})
    result = EMITTERS[EmitTarget.RAY_SERVE](stand_in_inputs(plans["ocr"], settings))
    config = yaml.safe_load(next(f.content for f in result.files if f.path.name == "serve_config.yaml"))
    d = next(d for d in config["applications"][0]["deployments"] if d["name"] == "recognise")
    assert "num_replicas" not in d
    assert d["autoscaling_config"]["min_replicas"] == plans["ocr"].stage("recognise").replicas
    assert d["autoscaling_config"]["max_replicas"] == 8


def test_triton_carries_batching_and_instances(plans):
    plan = plans["digits"]
    result = EMITTERS[EmitTarget.TRITON](stand_in_inputs(plan))
    files = {str(f.path): f.content.decode() for f in result.files if f.path.suffix == ".pbtxt"}
    read = files["triton/model_repository/read/config.pbtxt"]
    s = plan.stage("read")
    assert f"max_batch_size: {s.batch_size}" in read
    assert f"max_queue_delay_microseconds: {round(s.batch_timeout_ms * 1000)}" in read
    assert f"count: {s.replicas} kind: KIND_CPU" in read
    assert any("no ensemble" in n for n in result.notes)


def test_triton_gpu_plan_gets_a_local_cpu_repository(plans):
    gpu = with_stage(plans["digits"], "verify", hardware="gpu-1")
    result = EMITTERS[EmitTarget.TRITON](stand_in_inputs(gpu))
    files = {str(f.path): f.content.decode() for f in result.files}
    assert "kind: KIND_GPU" in files["triton/model_repository/verify/config.pbtxt"]
    assert "kind: KIND_CPU" in files["triton/model_repository_local/verify/config.pbtxt"]
    assert '"device": "cpu"' in files["triton/model_repository_local/verify/1/stage.json"]
    assert any("model_repository_local" in n for n in result.notes)


def test_kserve_rounds_the_batcher_latency_up_and_says_so(plans):
    result = EMITTERS[EmitTarget.KSERVE](stand_in_inputs(plans["digits"]))
    docs = list(yaml.safe_load_all(result.files[0].content))
    read = next(d for d in docs if d["kind"] == "InferenceService" and d["metadata"]["name"] == "digits-read")
    assert read["spec"]["predictor"]["batcher"] == {"maxBatchSize": 8, "maxLatency": 1}
    assert any("maxLatency 1" in n for n in result.notes)


def test_k8s_hpa_only_with_a_range(plans):
    plain = EMITTERS[EmitTarget.K8S](stand_in_inputs(plans["ocr"]))
    assert "HorizontalPodAutoscaler" not in plain.files[0].content.decode()
    settings = DeploySettings.model_validate({**SETTINGS.model_dump(), "stage_settings": {
        "recognise": {"max_replicas": 8, "target_cpu_utilization": 70, "memory_mb": 512}}})
    ranged = EMITTERS[EmitTarget.K8S](stand_in_inputs(plans["ocr"], settings))
    docs = list(yaml.safe_load_all(ranged.files[0].content))
    hpa = next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (plans["ocr"].stage("recognise").replicas, 8)
    deployment = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "ocr-recognise")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "1", "memory": "512Mi"}
