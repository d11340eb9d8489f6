"""Seldon Core v2: a Model per stage (and per challenger or mirror) with its replicas, a Pipeline wired
by the DAG, and an Experiment per stage with a split or a mirror (default = the champion, candidates
weighted by share, mirror at 100 percent).

Each step reads its own items from the pipeline's input tensor ``STAGE__INPUT`` and is triggered by its
'after' stages. Seldon's CRDs hold no batch size or timeout: batching is the inference server's
(MLServer or Triton) and lives beside the model file, which the output says.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from planner.emit.base import (
    EmitInputs,
    EmitResult,
    EmittedFile,
    Role,
    artifact_for,
    check_plan,
    dns_name,
    dump_yaml,
    header_comment,
    sinks,
    stage_units,
    storage_artifacts,
    storage_files,
    storage_uri,
    topological,
    units,
)

ROOT = PurePosixPath("seldon")


def _metadata(inputs: EmitInputs, name: str) -> dict:
    out: dict = {"name": name}
    if inputs.settings.namespace:
        out["namespace"] = inputs.settings.namespace
    return out


def emit(inputs: EmitInputs) -> EmitResult:
    """Models, the Pipeline and the Experiments of the plan."""
    plan = inputs.plan
    check_plan(plan)
    names = {u.name: dns_name(plan.pipeline, u.name) for u in units(plan)}
    pipeline = dns_name(plan.pipeline)
    documents = []
    for u in units(plan):
        spec: dict = {"storageUri": storage_uri(inputs.settings, u, "seldon"), "requirements": ["onnx"]}
        stage_settings = inputs.settings.stage(u.stage)
        if stage_settings.max_replicas is not None and u.role is Role.CHAMPION:
            spec["minReplicas"] = u.replicas
            spec["maxReplicas"] = max(u.replicas, stage_settings.max_replicas)
        spec["replicas"] = u.replicas
        if stage_settings.memory_mb is not None:
            spec["memory"] = f"{stage_settings.memory_mb}Mi"
        metadata = _metadata(inputs, names[u.name])
        metadata["annotations"] = {"pipeplan/model-sha256": artifact_for(inputs, u).sha256}
        documents.append({"apiVersion": "mlops.seldon.io/v1alpha1", "kind": "Model", "metadata": metadata, "spec": spec})
    steps = []
    for s in topological(plan):
        champion = names[s.stage]
        tensor = f"{pipeline}.inputs.{s.stage}__INPUT"
        step: dict = {"name": champion, "inputs": [tensor], "tensorMap": {tensor: "INPUT"}}
        if s.after:
            step["triggers"] = [f"{names[p]}.outputs" for p in s.after]
        steps.append(step)
    documents.append({"apiVersion": "mlops.seldon.io/v1alpha1", "kind": "Pipeline",
                      "metadata": _metadata(inputs, pipeline),
                      "spec": {"steps": steps, "output": {"steps": [names[n] for n in sinks(plan)]}}})
    for s in plan.stages:
        stage = stage_units(plan, s.stage)
        if len(stage) == 1:
            continue
        answering = [u for u in stage if u.role is not Role.MIRROR]
        spec = {"default": names[s.stage], "resourceType": "model",
                "candidates": [{"name": names[u.name], "weight": u.percent} for u in answering]}
        mirror = next((u for u in stage if u.role is Role.MIRROR), None)
        if mirror is not None:
            spec["mirror"] = {"name": names[mirror.name], "percent": 100}
        documents.append({"apiVersion": "mlops.seldon.io/v1alpha1", "kind": "Experiment",
                          "metadata": _metadata(inputs, dns_name(plan.pipeline, s.stage, "experiment")), "spec": spec})
    notes = ["seldon: Model and Pipeline hold no batch size or timeout; set them in the inference server's "
             "settings beside each model file (MLServer model-settings.json max_batch_size / max_batch_time, "
             "or Triton's config.pbtxt): "
             + "; ".join(f"{u.name}: batch {u.batch_size}, timeout {u.batch_timeout_ms:g} ms" for u in units(plan)) + ".",
             "seldon: replicas are Model replicas; CPU and GPU requests belong to the Server's podSpec, which "
             "this target does not emit (one Server serves many Models)."]
    body = header_comment(plan, "Seldon Core v2 resources").encode() + dump_yaml(documents)
    return EmitResult("seldon", (EmittedFile(ROOT / "pipeline.yaml", body),) + storage_files(inputs), storage_artifacts(inputs), tuple(notes))
