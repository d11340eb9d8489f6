"""Builders for emitter tests: plans of the bundled examples and stand-in artifacts (fixed digests).

Golden files must not depend on the machine: the digits zoo is trained with torch (bit-for-bit
only up to float non-determinism), so golden emits use :func:`stand_in_artifacts`, the variants'
real signatures with the sha256 of a fixed text. Tests of real files resolve them through the manifest.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from planner import io
from planner.candidates import Sources
from planner.emit.base import EmitInputs, HardwarePlacement, VariantArtifact, units
from planner.emit.settings import DeploySettings
from planner.ilp.backends import SolverName
from planner.plan import Plan
from planner.planning import PlanRequest, make_plan
from tests.fixtures import CONFIGS, REPO

SHARED_SCHEMAS = REPO / ".." / "shared" / "schemas"
EXAMPLES = ("digits", "ocr")
SETTINGS = DeploySettings(image="registry.example/pipeplan/onnx-stage:0.1",
                          storage_uri="s3://models.example/pipeplan")

# One item's input and the output of each model of the bundled manifests (from their ONNX files).
SIGNATURES = {
    "digits": ("input", (1, 8, 8), "float32", "logits", (10,), "float32"),
    "textdet": ("x", None, "float32", "sigmoid_0.tmp_0", (1, -1, -1), "float32"),
    "anglecls": ("x", (3, 48, 192), "float32", "save_infer_model/scale_0.tmp_1", (2,), "float32"),
    "textrec": ("x", (3, 48, 320), "float32", "softmax_11.tmp_0", (-1, 6625), "float32"),
}
DET_INPUT = {"det-256": (3, 192, 256), "det-320": (3, 256, 320), "det-480": (3, 352, 480),
             "det-640": (3, 480, 640), "det-480-int8s": (3, 352, 480)}
PLACEMENTS = {"cpu-1": HardwarePlacement("cpu", 1), "cpu-2": HardwarePlacement("cpu", 2),
              "gpu-1": HardwarePlacement("cuda", 4)}


def example_plan(name: str) -> Plan:
    """The plan of configs/NAME.yaml (measured profiles), as ``pipeplan plan`` makes it."""
    spec_path = CONFIGS / f"{name}.yaml"
    spec = io.load_spec(spec_path)
    profiles_path, catalog_path = io.resolve_inputs(spec_path, spec, None, None)
    table = io.load_profiles(profiles_path)
    return make_plan(PlanRequest(spec=spec, catalog=io.load_catalog(catalog_path), profiles=table,
                                 solver=SolverName.CBC,
                                 sources=Sources(str(spec_path), str(profiles_path), str(catalog_path)),
                                 provenance=io.provenance(spec_path, profiles_path, catalog_path, table)))


def stand_in_artifacts(plan: Plan) -> dict[tuple[str, str], VariantArtifact]:
    out = {}
    for u in units(plan):
        in_name, in_shape, in_dtype, out_name, out_shape, out_dtype = SIGNATURES[u.model]
        out[(u.model, u.variant)] = VariantArtifact(
            model=u.model, variant=u.variant, path=Path(f"/stand-in/{u.variant}.onnx"),
            sha256=hashlib.sha256(f"stand-in {u.model}/{u.variant}".encode()).hexdigest(), size_bytes=0,
            input_name=in_name, input_shape=in_shape or DET_INPUT[u.variant], input_dtype=in_dtype,
            output_name=out_name, output_shape=out_shape, output_dtype=out_dtype)
    return out


def stand_in_inputs(plan: Plan, settings: DeploySettings = SETTINGS) -> EmitInputs:
    return EmitInputs(plan=plan, artifacts=stand_in_artifacts(plan), placements=PLACEMENTS, settings=settings)


def with_stage(plan: Plan, stage: str, **changes) -> Plan:
    """The plan with one stage's fields changed (a broken or GPU plan for a test)."""
    return dataclasses.replace(plan, stages=tuple(dataclasses.replace(s, **changes) if s.stage == stage else s
                                                  for s in plan.stages))
