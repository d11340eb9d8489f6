"""Splits and mirrors: planned with their capacity, recorded in the plan, emitted in each engine's
own construct (and said plainly where an engine has none), and accepted by the validators."""

from __future__ import annotations

import math

import pytest
import yaml

from planner import io
from planner.estimate.candidates import Sources
from planner.emit import EMITTERS, EmitTarget, emit
from planner.emit.artifacts import resolve
from planner.emit.base import EmitInputs
from planner.emit.validate.run import check_output
from planner.io.emit import write_results
from planner.errors import InfeasibleError
from planner.ilp.backends import SolverName
from planner.plan import plan_from_dict, plan_to_dict, plan_to_json
from planner.optimize import PlanRequest, make_plan
from tests.emit.helpers import SETTINGS, SHARED_SCHEMAS, stand_in_inputs
from tests.emit.test_validators import needs_deploy, needs_schemas
from tests.fixtures import CONFIGS


def routed_request(tmp_path, angle: dict | None = None, recognise: dict | None = None) -> PlanRequest:
    spec = yaml.safe_load((CONFIGS / "ocr.yaml").read_text())
    spec["profiles"] = str(CONFIGS / "profiles" / "ocr.csv")
    spec["hardware_catalog"] = str(CONFIGS / "hardware_local.yaml")
    stages = {s["name"]: s for s in spec["stages"]}
    stages["angle"].update(angle if angle is not None else {"challenger": {"variant": "cls-int8d", "percent": 20}})
    stages["recognise"].update(recognise if recognise is not None else {"mirror": {"variant": "rec-int8d"}})
    path = tmp_path / "routed.yaml"
    path.write_text(yaml.safe_dump(spec))
    loaded = io.load_spec(path)
    profiles, catalog = io.resolve_inputs(path, loaded, None, None)
    table = io.load_profiles(profiles)
    return PlanRequest(spec=loaded, catalog=io.load_catalog(catalog), profiles=table, solver=SolverName.CBC,
                       sources=Sources(str(path), str(profiles), str(catalog)),
                       provenance=io.provenance(path, profiles, catalog, table))


@pytest.fixture(scope="module")
def routed_plan(tmp_path_factory):
    return make_plan(routed_request(tmp_path_factory.mktemp("spec")))


def test_split_and_mirror_are_planned_with_their_capacity(routed_plan):
    angle, recognise = routed_plan.stage("angle"), routed_plan.stage("recognise")
    full_load = routed_plan.arrival_rps * angle.fanout
    assert math.isclose(angle.load_items_per_s, 0.8 * full_load)  # the champion plans for its share
    (challenger,) = angle.routes
    assert (challenger.role, challenger.variant, challenger.percent) == ("challenger", "cls-int8d", 20)
    assert math.isclose(challenger.load_items_per_s, 0.2 * full_load)
    assert challenger.predicted_latency_ms <= angle.predicted_latency_ms  # the SLO's paths still hold
    assert challenger.utilization <= 0.9 + 1e-9
    (mirror,) = recognise.routes
    assert (mirror.role, mirror.variant, mirror.percent) == ("mirror", "rec-int8d", 100)
    assert math.isclose(mirror.load_items_per_s, routed_plan.arrival_rps * recognise.fanout)  # a full copy
    assert math.isclose(recognise.load_items_per_s, mirror.load_items_per_s)  # the champion keeps all of it
    assert mirror.capacity_items_per_s * 0.9 >= mirror.load_items_per_s * (1 - 1e-9)
    assert routed_plan.predicted_p99_ms <= routed_plan.slo_ms


def test_routes_survive_the_plan_file(routed_plan):
    again = plan_from_dict(plan_to_dict(routed_plan))
    assert plan_to_json(again) == plan_to_json(routed_plan)
    assert [r.variant for r in again.stage("angle").routes] == ["cls-int8d"]
    assert '"routes"' in plan_to_json(routed_plan)


def test_a_challenger_slower_than_the_champion_is_refused(tmp_path):
    request = routed_request(tmp_path, angle={"challenger": {"variant": "cls-int8s", "percent": 99},
                                              "max_replicas": 1}, recognise={})
    try:
        plan = make_plan(request)
    except InfeasibleError as exc:
        assert "challenger variant 'cls-int8s'" in str(exc)
    else:  # when it fits, it was sized within the champion's latency
        (route,) = plan.stage("angle").routes
        assert route.predicted_latency_ms <= plan.stage("angle").predicted_latency_ms


def test_each_engine_writes_the_routing_natively_or_says_it_cannot(routed_plan):
    inputs = stand_in_inputs(routed_plan)
    seldon = list(yaml.safe_load_all(EMITTERS[EmitTarget.SELDON](inputs).files[0].content))
    experiments = {d["metadata"]["name"]: d["spec"] for d in seldon if d["kind"] == "Experiment"}
    assert experiments["ocr-angle-experiment"] == {
        "default": "ocr-angle", "resourceType": "model",
        "candidates": [{"name": "ocr-angle", "weight": 80}, {"name": "ocr-angle-challenger", "weight": 20}]}
    assert experiments["ocr-recognise-experiment"]["mirror"] == {"name": "ocr-recognise-mirror", "percent": 100}
    kserve = EMITTERS[EmitTarget.KSERVE](inputs)
    graph = next(d for d in yaml.safe_load_all(kserve.files[0].content) if d["kind"] == "InferenceGraph")
    split = graph["spec"]["nodes"]["angle-split"]
    assert split["routerType"] == "Splitter" and [s["weight"] for s in split["steps"]] == [80, 20]
    assert any("no mirror" in n and "ocr-recognise-mirror" in n for n in kserve.notes)
    ray = EMITTERS[EmitTarget.RAY_SERVE](inputs)
    pipeline = yaml.safe_load(next(f.content for f in ray.files if f.path.name == "pipeline.json"))
    angle = next(s for s in pipeline["stages"] if s["name"] == "angle")
    assert angle["units"] == [{"deployment": "angle", "role": "champion", "percent": 80},
                              {"deployment": "angle__challenger", "role": "challenger", "percent": 20}]
    triton = EMITTERS[EmitTarget.TRITON](inputs)
    assert {"triton/model_repository/angle__challenger/config.pbtxt",
            "triton/model_repository/recognise__mirror/config.pbtxt"} <= {str(f.path) for f in triton.files}
    k8s = EMITTERS[EmitTarget.K8S](inputs)
    assert any("cannot split traffic" in n for n in k8s.notes) and any("mirror traffic" in n for n in k8s.notes)


@needs_deploy
@needs_schemas
@pytest.mark.slow
def test_routed_output_passes_every_offline_validator(routed_plan, tmp_path):
    pytest.importorskip("rapidocr_onnxruntime")
    artifacts, placements = resolve(routed_plan, CONFIGS / "ocr.manifest.yaml", tmp_path / "cache")
    write_results(emit(EmitInputs(routed_plan, artifacts, placements, SETTINGS), EmitTarget.ALL), tmp_path / "out")
    outcomes = check_output(tmp_path / "out", SHARED_SCHEMAS)
    for outcome in outcomes:
        assert outcome.passed, f"{outcome.name}: {outcome.skipped or outcome.problems}"
