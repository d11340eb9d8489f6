"""Kubernetes-side manifests: plain objects through ``kubernetes-validate --strict``; KServe and Seldon
objects against their CRDs' openAPIV3Schema made strict (unknown fields rejected, as kubectl's
``--validate=strict``), plus the admission rules the engines apply on top (docs/emit.md lists them)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from planner.emit.validate import ValidatorUnavailable

K8S_VERSION = "1.33"
_DNS = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
CRD_FILES = {
    ("serving.kserve.io", "InferenceService"): "kserve/serving.kserve.io_inferenceservices.yaml",
    ("serving.kserve.io", "InferenceGraph"): "kserve/serving.kserve.io_inferencegraphs.yaml",
    ("mlops.seldon.io", "Model"): "seldon/mlops.seldon.io_models.yaml",
    ("mlops.seldon.io", "Pipeline"): "seldon/mlops.seldon.io_pipelines.yaml",
    ("mlops.seldon.io", "Experiment"): "seldon/mlops.seldon.io_experiments.yaml",
}


def load_documents(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def to_json_schema(node: Any, strict: bool = True) -> Any:
    """openAPIV3Schema -> JSON Schema: int-or-string and nullable spelled out; strict closes objects."""
    if isinstance(node, list):
        return [to_json_schema(n, strict) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v, strict) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    out.pop("nullable", None)
    if strict and "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields") \
            and "additionalProperties" not in node:
        out["additionalProperties"] = False
    return out


@lru_cache(maxsize=8)
def _validator(schema_dir: str, group: str, kind: str, version: str):
    try:
        import jsonschema
    except ImportError:
        raise ValidatorUnavailable("CRD checks need jsonschema; `pip install '.[deploy]'`.") from None
    crd = yaml.load((Path(schema_dir) / CRD_FILES[(group, kind)]).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    entry = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    schema = to_json_schema(entry["schema"]["openAPIV3Schema"])
    schema.setdefault("properties", {})["metadata"] = {"type": "object"}  # ObjectMeta is checked below
    return jsonschema.Draft7Validator(schema)


def check_crd_objects(documents: list[dict], schema_dir: Path) -> list[str]:
    """CRD schema (strict) problems of KServe / Seldon objects, and their metadata names."""
    problems = []
    for doc in documents:
        group, _, version = doc.get("apiVersion", "").partition("/")
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        if (group, doc.get("kind")) not in CRD_FILES:
            problems.append(f"{where}: no CRD known for {doc.get('apiVersion')} {doc.get('kind')}")
            continue
        validator = _validator(str(schema_dir), group, doc["kind"], version)
        for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
            problems.append(f"{where}: {'/'.join(map(str, error.path))}: {error.message}")
        problems += _metadata(doc, where)
    return problems


def _metadata(doc: dict, where: str) -> list[str]:
    name = doc.get("metadata", {}).get("name", "")
    if not _DNS.match(name) or len(name) > 63:
        return [f"{where}: metadata.name '{name}' is not a DNS-1123 label"]
    return []


def check_k8s_objects(documents: list[dict]) -> list[str]:
    """kubernetes-validate --strict, then quantities, HPA ranges and targets, extended resources."""
    try:
        import kubernetes_validate
    except ImportError:
        raise ValidatorUnavailable("Kubernetes checks need kubernetes-validate; `pip install '.[deploy]'`.") from None
    problems = []
    deployments = {d["metadata"]["name"] for d in documents if d.get("kind") == "Deployment"}
    for doc in documents:
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{where}: no Kubernetes {K8S_VERSION} schema for {doc.get('apiVersion')} {doc.get('kind')}")
        problems += _metadata(doc, where)
        if doc.get("kind") == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                res = container.get("resources", {})
                for part in ("requests", "limits"):
                    for key, value in res.get(part, {}).items():
                        if not _QUANTITY.match(str(value)):
                            problems.append(f"{where}: {part}.{key} '{value}' is not a quantity")
                for key, value in res.get("requests", {}).items():
                    if "/" in key and res.get("limits", {}).get(key) != value:
                        problems.append(f"{where}: extended resource {key}: request must equal limit")
        if doc.get("kind") == "HorizontalPodAutoscaler":
            spec = doc["spec"]
            if spec.get("minReplicas", 1) > spec["maxReplicas"]:
                problems.append(f"{where}: minReplicas > maxReplicas")
            if spec["scaleTargetRef"]["name"] not in deployments:
                problems.append(f"{where}: scaleTargetRef names no Deployment of the bundle")
    return problems


def check_kserve_rules(documents: list[dict]) -> list[str]:
    """The KServe admission webhook's rules (pkg/apis/serving/v1beta1, v1alpha1 validation)."""
    problems = []
    services = {d["metadata"]["name"] for d in documents if d.get("kind") == "InferenceService"}
    for doc in documents:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "InferenceService":
            p = doc["spec"]["predictor"]
            low, high = p.get("minReplicas", 1), p.get("maxReplicas", 0)
            if low < 0 or high < 0 or (high != 0 and low > high):
                problems.append(f"{where}: minReplicas {low} / maxReplicas {high}")
            if p.get("containerConcurrency", 0) < 0:
                problems.append(f"{where}: containerConcurrency < 0")
            implementations = [k for k in ("model", "containers") if k in p]
            if len(implementations) != 1:
                problems.append(f"{where}: exactly one predictor implementation, found {implementations}")
            mode = doc["metadata"].get("annotations", {}).get("serving.kserve.io/deploymentMode", "Standard")
            if mode in ("Standard", "RawDeployment") and p.get("scaleMetric") not in (None, "cpu", "memory"):
                problems.append(f"{where}: HPA takes scaleMetric cpu or memory, found {p['scaleMetric']}")
            if p.get("scaleMetric") == "cpu" and not 1 <= p.get("scaleTarget", 1) <= 100:
                problems.append(f"{where}: cpu scaleTarget must be 1..100")
        if doc["kind"] == "InferenceGraph":
            nodes = doc["spec"]["nodes"]
            if "root" not in nodes:
                problems.append(f"{where}: no 'root' node")
            for node_name, node in nodes.items():
                steps = node.get("steps", [])
                names = [s.get("name") for s in steps]
                if len(set(names)) != len(names):
                    problems.append(f"{where}: node {node_name}: step names repeat")
                for s in steps:
                    targets = [k for k in ("serviceName", "nodeName", "serviceUrl") if k in s]
                    if len(targets) != 1:
                        problems.append(f"{where}: step {s.get('name')}: exactly one target, found {targets}")
                    if "serviceName" in s and s["serviceName"] not in services:
                        problems.append(f"{where}: step {s.get('name')}: no InferenceService {s['serviceName']}")
                    if "nodeName" in s and s["nodeName"] not in nodes:
                        problems.append(f"{where}: step {s.get('name')}: no node {s['nodeName']}")
                if node.get("routerType") == "Splitter":
                    weights = [s.get("weight") for s in steps]
                    if None in weights or sum(weights) != 100:
                        problems.append(f"{where}: node {node_name}: Splitter weights {weights} must all be set, sum 100")
    return problems


def check_seldon_rules(documents: list[dict]) -> list[str]:
    """The Seldon scheduler's pipeline and experiment checks (scheduler/pkg/store/*/validate.go)."""
    problems = []
    models = {d["metadata"]["name"] for d in documents if d["kind"] == "Model"}
    for doc in documents:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "Pipeline":
            steps = doc["spec"]["steps"]
            names = [s["name"] for s in steps]
            if len(set(names)) != len(names):
                problems.append(f"{where}: steps repeat")
            pipeline_prefix = f"{doc['metadata']['name']}.inputs"
            for s in steps:
                if s["name"] not in models:
                    problems.append(f"{where}: step {s['name']} names no Model of the bundle")
                refs = s.get("inputs", []) + s.get("triggers", [])
                if set(s.get("inputs", [])) & set(s.get("triggers", [])):
                    problems.append(f"{where}: step {s['name']}: an input is also a trigger")
                for ref in refs:
                    if not ref.startswith(pipeline_prefix) and ref.split(".")[0] not in names:
                        problems.append(f"{where}: step {s['name']}: {ref} names no step")
                    if ref.split(".")[0] == s["name"]:
                        problems.append(f"{where}: step {s['name']} refers to itself")
            if len(steps) > 1 and not doc["spec"].get("output", {}).get("steps"):
                problems.append(f"{where}: a multi-step pipeline needs an output")
            problems += [f"{where}: {c}" for c in _cycles(steps)]
        if doc["kind"] == "Experiment":
            spec = doc["spec"]
            candidates = [c["name"] for c in spec.get("candidates", [])]
            if not candidates and "mirror" not in spec:
                problems.append(f"{where}: needs candidates or a mirror")
            if spec.get("default") and spec["default"] not in candidates:
                problems.append(f"{where}: default {spec['default']} is not a candidate")
            if len(set(candidates)) != len(candidates):
                problems.append(f"{where}: candidates repeat")
            for name in candidates + ([spec["mirror"]["name"]] if "mirror" in spec else []):
                if name not in models:
                    problems.append(f"{where}: {name} names no Model of the bundle")
    return problems


def _cycles(steps: list[dict]) -> list[str]:
    parents = {s["name"]: {r.split(".")[0] for r in s.get("inputs", []) + s.get("triggers", [])} for s in steps}
    placed: set[str] = set()
    for _ in steps:
        placed |= {n for n, ps in parents.items() if all(p in placed or p not in parents for p in ps)}
    left = sorted(set(parents) - placed)
    return [f"steps {left} form a cycle"] if left else []
