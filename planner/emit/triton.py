"""NVIDIA Triton: a model repository for the python backend (the backend bundled in nvidia-pytriton).

``triton/model_repository/``: one model per stage (and per challenger or mirror) with the planned
``max_batch_size``, ``dynamic_batching { max_queue_delay_microseconds }`` (the planned timeout) and
``instance_group [{count: replicas, kind}]``; its ``1/model.py`` runs the variant (``1/model.onnx``,
sha256 in ``1/stage.json``) with onnxruntime and the manifest's threads. The ``pipeline`` model (BLS,
python backend) runs the DAG: fan-out items as single-item requests, joins, splits and mirrors.

A plan with a stage on a cuda setting gets ``KIND_GPU`` there and a second repository,
``triton/model_repository_local/``, with every stage on ``KIND_CPU``, that runs on a machine with no GPU.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import PurePosixPath

from planner.emit.base import (
    CopiedArtifact,
    EmitInputs,
    EmitResult,
    EmittedFile,
    Role,
    artifact_for,
    check_plan,
    dump_json,
    placement_for,
    sinks,
    stage_units,
    topological,
    units,
)
from planner.errors import EmitError

ROOT = PurePosixPath("triton")
PIPELINE_MODEL = "pipeline"
TRITON_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "float64": "TYPE_FP64", "int64": "TYPE_INT64",
                "int32": "TYPE_INT32", "int8": "TYPE_INT8", "uint8": "TYPE_UINT8", "bool": "TYPE_BOOL"}


def _type(dtype: str, what: str) -> str:
    try:
        return TRITON_TYPES[dtype]
    except KeyError:
        raise EmitError(f"{what}: dtype {dtype} has no Triton type here (supported: {sorted(TRITON_TYPES)}).") from None


def _dims(dims) -> str:
    return "[ " + ", ".join(str(d) for d in dims) + " ]"


def _tensor(name: str, dtype: str, dims, optional: bool = False) -> str:
    extra = " optional: true" if optional else ""
    return f'  {{ name: "{name}" data_type: {dtype} dims: {_dims(dims)}{extra} }}'


def stage_config(name: str, unit, artifact, kind: str) -> str:
    """config.pbtxt of one stage model (protobuf text format of inference.ModelConfig)."""
    lines = [f'name: "{name}"', 'backend: "python"', f"max_batch_size: {unit.batch_size}",
             "input [", _tensor("INPUT", _type(artifact.input_dtype, name), artifact.input_shape), "]",
             "output [", _tensor("OUTPUT", _type(artifact.output_dtype, name), artifact.output_shape), "]"]
    if unit.batch_size > 1:
        lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {unit.batch_timeout_us} }}")
    lines.append(f"instance_group [ {{ count: {unit.replicas} kind: {kind} }} ]")
    return "\n".join(lines) + "\n"


def pipeline_instances(inputs: EmitInputs) -> int:
    """Requests in flight the plan allows: Little's law at the planned load within the SLO."""
    plan = inputs.plan
    if inputs.settings.triton_pipeline_instances is not None:
        return inputs.settings.triton_pipeline_instances
    return max(1, math.ceil(plan.arrival_rps * plan.slo_ms / 1000.0))


def _repository(inputs: EmitInputs, root: PurePosixPath, local: bool) -> tuple[list[EmittedFile], list[CopiedArtifact]]:
    plan = inputs.plan
    runtime = resources.files("planner.emit.runtime")
    files, artifacts = [], []
    for u in units(plan):
        a, p = artifact_for(inputs, u), placement_for(inputs, u)
        gpu = p.device == "cuda" and not local
        kind = "KIND_GPU" if gpu else "KIND_CPU"
        model = root / u.name
        stage = {"stage": u.stage, "role": u.role.value, "model": u.model, "variant": u.variant,
                 "model_file": "model.onnx", "sha256": a.sha256, "input_name": a.input_name,
                 "output_dtype": a.output_dtype, "threads": p.threads, "device": "cuda" if gpu else "cpu"}
        files += [EmittedFile(model / "config.pbtxt", stage_config(u.name, u, a, kind).encode()),
                  EmittedFile(model / "1" / "model.py", runtime.joinpath("triton_stage.py").read_bytes()),
                  EmittedFile(model / "1" / "stage.json", dump_json(stage))]
        artifacts.append(CopiedArtifact(model / "1" / "model.onnx", a.path, a.sha256))
    order = topological(plan)
    champion = {s.stage: artifact_for(inputs, stage_units(plan, s.stage)[0]) for s in order}
    lines = [f'name: "{PIPELINE_MODEL}"', 'backend: "python"', "max_batch_size: 0", "input ["]
    lines.append(",\n".join(_tensor(f"{s.stage}__INPUT", _type(champion[s.stage].input_dtype, s.stage),
                                    (-1,) + champion[s.stage].input_shape, optional=s.fanout < 1) for s in order))
    lines += ["]", "output ["]
    lines.append(",\n".join(_tensor(f"{name}__OUTPUT", _type(champion[name].output_dtype, name),
                                    (-1,) + champion[name].output_shape) for name in sinks(plan)))
    lines += ["]", f"instance_group [ {{ count: {pipeline_instances(inputs)} kind: KIND_CPU }} ]"]
    pipeline = {
        "pipeline": plan.pipeline, "sinks": list(sinks(plan)),
        "outputs": {n: {"dtype": champion[n].output_dtype, "shape": list(champion[n].output_shape)} for n in sinks(plan)},
        "stages": [{"name": s.stage, "after": list(s.after), "fanout": s.fanout,
                    "units": [{"deployment": u.name, "role": u.role.value, "percent": u.percent}
                              for u in stage_units(plan, s.stage)]} for s in order],
    }
    model = root / PIPELINE_MODEL
    files += [EmittedFile(model / "config.pbtxt", ("\n".join(lines) + "\n").encode()),
              EmittedFile(model / "1" / "model.py", runtime.joinpath("triton_pipeline.py").read_bytes()),
              EmittedFile(model / "1" / "routing.py", runtime.joinpath("routing.py").read_bytes()),
              EmittedFile(model / "1" / "pipeline.json", dump_json(pipeline))]
    return files, artifacts


def emit(inputs: EmitInputs) -> EmitResult:
    """The Triton model repository (and its CPU-only twin when a stage is planned on a GPU)."""
    plan = inputs.plan
    check_plan(plan)
    if any(u.name == PIPELINE_MODEL for u in units(plan)):
        raise EmitError(f"the plan: stage name '{PIPELINE_MODEL}' is the Triton pipeline model's; rename the stage.")
    files, artifacts = _repository(inputs, ROOT / "model_repository", local=False)
    notes = [
        "triton: no ensemble: an ensemble step gets one request per pipeline request and its inputs only from "
        "other steps' outputs, so it cannot send a stage its fan-out items one by one; the 'pipeline' model "
        "(python backend, BLS) runs the DAG instead.",
        f"triton: the 'pipeline' model runs one request per instance at a time; it has "
        f"{pipeline_instances(inputs)} instances (arrival_rps x slo_ms, the requests in flight within the SLO; "
        "'triton_pipeline_instances' in the deploy settings overrides it).",
        "triton: no autoscaling (instance counts are fixed); splits and mirrors are routed by the BLS pipeline "
        "model (Triton has no traffic split of its own).",
    ]
    gpu_units = [u for u in units(plan) if placement_for(inputs, u).device == "cuda"]
    if gpu_units:
        local_files, local_artifacts = _repository(inputs, ROOT / "model_repository_local", local=True)
        files += local_files
        artifacts += local_artifacts
        notes.append("triton: stages " + ", ".join(sorted({u.stage for u in gpu_units})) + " are KIND_GPU; "
                     "model_repository_local/ is the same repository with KIND_CPU, to run on a machine without a GPU.")
    if any(u.role is Role.MIRROR for u in units(plan)):
        notes.append("triton: a mirror's requests are started by the pipeline model and not awaited; they finish "
                     "while the pipeline model serves later requests.")
    return EmitResult("triton", tuple(files), tuple(artifacts), tuple(notes))
