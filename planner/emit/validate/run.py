"""Run every offline check that applies to an emitted folder; report what passed, failed or could not run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from planner.emit.validate import ValidatorUnavailable


@dataclass(frozen=True)
class CheckOutcome:
    name: str  # e.g. "ray-serve: ServeDeploySchema + AutoscalingConfig + unknown keys"
    problems: tuple[str, ...] = ()
    skipped: str | None = None  # why it did not run

    @property
    def passed(self) -> bool:
        return self.skipped is None and not self.problems


def check_output(out: Path, schema_dir: Path | None = None, serve_build: bool = True) -> list[CheckOutcome]:
    """Check what ``pipeplan emit`` wrote under ``out`` (only the targets present there)."""
    from planner.emit.validate import manifests, ray, triton

    outcomes: list[CheckOutcome] = []

    def attempt(name: str, run) -> None:
        try:
            outcomes.append(CheckOutcome(name, tuple(run())))
        except ValidatorUnavailable as exc:
            outcomes.append(CheckOutcome(name, skipped=str(exc)))

    config = out / "ray-serve" / "serve_config.yaml"
    if config.is_file():
        attempt("ray-serve: ServeDeploySchema + AutoscalingConfig + unknown keys",
                lambda: ray.check_config(config.read_text()))
        if serve_build:
            attempt("ray-serve: serve build pipeline_app:app",
                    lambda: ray.serve_build(out / "ray-serve", config.read_text()))
    for repo in sorted((out / "triton").glob("model_repository*")):
        attempt(f"triton: ModelConfig protobuf + rules ({repo.name})",
                lambda repo=repo: triton.check_repository(repo, gpu_available=not repo.name.endswith("_local")))
    k8s = out / "k8s" / "pipeline.yaml"
    if k8s.is_file():
        attempt(f"k8s: kubernetes-validate --strict ({manifests.K8S_VERSION}) + quantities, HPA, extended resources",
                lambda: manifests.check_k8s_objects(manifests.load_documents(k8s.read_text())))
    for target, rules in (("kserve", manifests.check_kserve_rules), ("seldon", manifests.check_seldon_rules)):
        path = out / target / "pipeline.yaml"
        if not path.is_file():
            continue
        documents = manifests.load_documents(path.read_text())
        if schema_dir is None or not schema_dir.is_dir():
            outcomes.append(CheckOutcome(f"{target}: CRD schemas (strict)",
                                         skipped="no CRD folder (pass --schemas, e.g. ../shared/schemas)"))
        else:
            attempt(f"{target}: CRD schemas (strict)", lambda d=documents: manifests.check_crd_objects(d, schema_dir))
        attempt(f"{target}: admission rules", lambda d=documents, r=rules: r(d))
    return outcomes
