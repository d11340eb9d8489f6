"""Plain Kubernetes: a Deployment and a Service per stage (and per challenger or mirror), an HPA where
the deploy settings give a stage a replica range, and CPU / memory / GPU requests.

Kubernetes has no batching and no traffic split of its own: the stage container (the deploy settings'
``image``) reads its batch size, timeout, threads, model file and downstream services from env
variables (documented in docs/emit.md).
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
    placement_for,
    storage_artifacts,
    storage_files,
    storage_uri,
    units,
)
from planner.errors import EmitError

ROOT = PurePosixPath("k8s")


def resources(inputs: EmitInputs, unit) -> dict:
    """requests = limits (a replica owns its planned cores; extended resources need request == limit)."""
    placement = placement_for(inputs, unit)
    amounts = {"cpu": str(placement.threads)}
    memory_mb = inputs.settings.stage(unit.stage).memory_mb
    if memory_mb is not None:
        amounts["memory"] = f"{memory_mb}Mi"
    if placement.device == "cuda":
        amounts["nvidia.com/gpu"] = "1"
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _metadata(inputs: EmitInputs, name: str, labels: dict | None = None) -> dict:
    out: dict = {"name": name}
    if labels:
        out["labels"] = labels
    if inputs.settings.namespace:
        out["namespace"] = inputs.settings.namespace
    return out


def emit(inputs: EmitInputs) -> EmitResult:
    """Deployments, Services and HPAs for every deployment unit of the plan."""
    plan = inputs.plan
    check_plan(plan)
    if not inputs.settings.image:
        raise EmitError("target k8s: no container image for the stages; pass --image (an image that serves one "
                        "ONNX model as docs/emit.md describes) or set 'image' in the deploy-settings file.")
    names = {u.name: dns_name(plan.pipeline, u.name) for u in units(plan)}
    children = {s.stage: [c.stage for c in plan.stages if s.stage in c.after] for s in plan.stages}
    port = inputs.settings.container_port
    documents = []
    for u in units(plan):
        name, a, p = names[u.name], artifact_for(inputs, u), placement_for(inputs, u)
        labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": dns_name(plan.pipeline),
                  "pipeplan/stage": dns_name(u.stage), "pipeplan/role": u.role.value}
        downstream = ",".join(f"http://{names[c]}:{port}" for c in children[u.stage]) if u.role is not Role.MIRROR else ""
        env = {"MODEL_URI": f"{storage_uri(inputs.settings, u, 'k8s')}/model.onnx", "MODEL_SHA256": a.sha256,
               "MODEL_INPUT_NAME": a.input_name, "MAX_BATCH_SIZE": str(u.batch_size),
               "BATCH_TIMEOUT_MS": repr(u.batch_timeout_ms), "INTRA_OP_THREADS": str(p.threads),
               "DEVICE": p.device, "DOWNSTREAM_URLS": downstream, "PORT": str(port)}
        documents.append({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(inputs, name, labels),
            "spec": {"replicas": u.replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                         "name": "stage", "image": inputs.settings.image,
                         "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
                         "ports": [{"containerPort": port, "name": "http"}],
                         "resources": resources(inputs, u)}]}}}})
        documents.append({
            "apiVersion": "v1", "kind": "Service", "metadata": _metadata(inputs, name, labels),
            "spec": {"selector": {"app.kubernetes.io/name": name},
                     "ports": [{"name": "http", "port": port, "targetPort": "http"}]}})
        stage_settings = inputs.settings.stage(u.stage)
        if stage_settings.max_replicas is not None and u.role is Role.CHAMPION:
            documents.append({
                "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": _metadata(inputs, name, labels),
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                         "minReplicas": u.replicas, "maxReplicas": max(u.replicas, stage_settings.max_replicas),
                         "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                             "type": "Utilization", "averageUtilization": stage_settings.target_cpu_utilization}}}]}})
    notes = ["k8s: no batching in Kubernetes itself; each stage's batch size and timeout are env variables "
             "(MAX_BATCH_SIZE, BATCH_TIMEOUT_MS) for the stage container to honour."]
    for u in units(plan):
        if u.role is not Role.CHAMPION:
            notes.append(f"k8s: stage '{u.stage}': the {u.role.value} '{u.variant}' gets its own Deployment and "
                         "Service, but plain Kubernetes cannot "
                         + ("split traffic by share" if u.role is Role.CHALLENGER else "mirror traffic")
                         + " (a service mesh such as Istio can); use the kserve or seldon target for that.")
    body = header_comment(plan, "Kubernetes objects").encode() + dump_yaml(documents)
    return EmitResult("k8s", (EmittedFile(ROOT / "pipeline.yaml", body),) + storage_files(inputs), storage_artifacts(inputs), tuple(notes))
