"""KServe: an InferenceService per stage (and per challenger or mirror) with replicas, resources and the
``batcher``; an InferenceGraph that runs the DAG (Sequence of topological layers, Ensemble for a layer
of parallel stages, Splitter for a traffic split).

Every graph step gets the original request (``data: $request``): each stage reads its own items from
it, as in the other targets. KServe has no mirror (shadow) router: a mirror's InferenceService is
emitted but not wired, and the output says so.
"""

from __future__ import annotations

import math
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
    stage_units,
    storage_artifacts,
    storage_files,
    storage_uri,
    topological,
    units,
)
from planner.emit.k8s import resources

ROOT = PurePosixPath("kserve")


def _service(inputs: EmitInputs, unit, name: str, notes: list[str]) -> dict:
    stage_settings = inputs.settings.stage(unit.stage)
    ranged = stage_settings.max_replicas is not None and unit.role is Role.CHAMPION
    predictor: dict = {
        "minReplicas": unit.replicas,
        "maxReplicas": max(unit.replicas, stage_settings.max_replicas) if ranged else unit.replicas,
        "model": {"modelFormat": {"name": "onnx"}, "storageUri": storage_uri(inputs.settings, unit, "kserve"),
                  "resources": resources(inputs, unit)},
    }
    annotations = {"serving.kserve.io/deploymentMode": "Standard"}
    if ranged:
        annotations["serving.kserve.io/autoscalerClass"] = "hpa"
        predictor["scaleMetric"] = "cpu"
        predictor["scaleTarget"] = stage_settings.target_cpu_utilization
    if unit.batch_size > 1:
        latency_ms = max(1, math.ceil(unit.batch_timeout_ms))
        if not math.isclose(latency_ms, unit.batch_timeout_ms):
            notes.append(f"kserve: stage '{unit.stage}' ({unit.role.value}): the batcher takes whole milliseconds; "
                         f"the planned timeout {unit.batch_timeout_ms:g} ms is emitted as maxLatency {latency_ms}.")
        predictor["batcher"] = {"maxBatchSize": unit.batch_size, "maxLatency": latency_ms}
    annotations["pipeplan/model-sha256"] = artifact_for(inputs, unit).sha256
    metadata: dict = {"name": name, "annotations": annotations}
    if inputs.settings.namespace:
        metadata["namespace"] = inputs.settings.namespace
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": metadata,
            "spec": {"predictor": predictor}}


def _layers(plan) -> list[list]:
    """Topological layers: a stage sits one layer below its deepest parent."""
    depth: dict[str, int] = {}
    for s in topological(plan):
        depth[s.stage] = 1 + max((depth[p] for p in s.after), default=-1)
    return [[s for s in plan.stages if depth[s.stage] == d] for d in range(max(depth.values()) + 1)]


def emit(inputs: EmitInputs) -> EmitResult:
    """InferenceServices and the InferenceGraph of the plan."""
    plan = inputs.plan
    check_plan(plan)
    notes: list[str] = []
    names = {u.name: dns_name(plan.pipeline, u.name) for u in units(plan)}
    documents = [_service(inputs, u, names[u.name], notes) for u in units(plan)]
    nodes: dict = {}

    def step(stage) -> dict:
        answering = [u for u in stage_units(plan, stage.stage) if u.role is not Role.MIRROR]
        for mirror in (u for u in stage_units(plan, stage.stage) if u.role is Role.MIRROR):
            notes.append(f"kserve: stage '{stage.stage}': KServe has no mirror (shadow) router; InferenceService "
                         f"'{names[mirror.name]}' is emitted but the graph does not send it traffic.")
        if len(answering) == 1:
            return {"name": dns_name(stage.stage), "serviceName": names[answering[0].name], "data": "$request"}
        node = dns_name(stage.stage, "split")
        nodes[node] = {"routerType": "Splitter",
                       "steps": [{"name": dns_name(u.name), "serviceName": names[u.name], "weight": u.percent,
                                  "data": "$request"} for u in answering]}
        return {"name": dns_name(stage.stage), "nodeName": node, "data": "$request"}

    root_steps = []
    for i, layer in enumerate(_layers(plan)):
        if len(layer) == 1:
            root_steps.append(step(layer[0]))
        else:
            node = f"layer-{i}"
            nodes[node] = {"routerType": "Ensemble", "steps": [step(s) for s in layer]}
            root_steps.append({"name": node, "nodeName": node, "data": "$request"})
    if any(len(layer) > 1 for layer in _layers(plan)):
        notes.append("kserve: the graph runs the DAG as a Sequence of layers (an Ensemble for parallel stages), "
                     "so a stage also waits for the other stages of its parents' layer.")
    notes.append("kserve: a graph step sends one request per pipeline request; a stage's fan-out items travel "
                 "in that request and the batcher batches across requests (maxBatchSize counts instances).")
    graph_meta: dict = {"name": dns_name(plan.pipeline)}
    if inputs.settings.namespace:
        graph_meta["namespace"] = inputs.settings.namespace
    documents.append({"apiVersion": "serving.kserve.io/v1alpha1", "kind": "InferenceGraph", "metadata": graph_meta,
                      "spec": {"nodes": {"root": {"routerType": "Sequence", "steps": root_steps}, **nodes}}})
    body = header_comment(plan, "KServe resources").encode() + dump_yaml(documents)
    return EmitResult("kserve", (EmittedFile(ROOT / "pipeline.yaml", body),) + storage_files(inputs), storage_artifacts(inputs),
                      tuple(dict.fromkeys(notes)))
