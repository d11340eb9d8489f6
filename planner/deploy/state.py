"""The running deployment's state file (``deployment.json`` in the deploy folder): how later commands
(``loadtest``, ``apply``, ``undeploy``) find the engine pipeplan started and stop it by its pid.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path

from planner.deploy.process import ProcessRef
from planner.errors import DeployError

STATE_FILE = "deployment.json"
STATE_SCHEMA_VERSION = 1


class EngineKind(str, Enum):
    TRITON = "triton"
    RAY_SERVE = "ray-serve"


@dataclass(frozen=True)
class Deployment:
    """A running engine: what it is, where it answers, and the process group to stop (None: not ours)."""

    engine: EngineKind
    infer_url: str  # where one request of the pipeline is POSTed
    admin_url: str  # Triton's HTTP root / Ray's dashboard
    folder: Path  # the deploy folder (emitted files, logs, request.json, this state)
    process: ProcessRef | None  # None when an existing cluster was used (--address)
    ports: dict[str, int]
    models: tuple[str, ...]  # Triton: the stage models; Ray: the deployments
    plan_file: str
    scratch: str | None = None  # a temp folder the engine needs (Ray's session dir), removed on stop

    @property
    def state_path(self) -> Path:
        return self.folder / STATE_FILE


def state_to_json(d: Deployment) -> str:
    data = {"schema_version": STATE_SCHEMA_VERSION, "engine": d.engine.value, "infer_url": d.infer_url,
            "admin_url": d.admin_url, "folder": str(d.folder), "ports": dict(sorted(d.ports.items())),
            "process": asdict(d.process) if d.process else None, "models": list(d.models), "plan_file": d.plan_file,
            "scratch": d.scratch}
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def load_state(folder: Path) -> Deployment:
    """Read ``folder/deployment.json``; a clear error when it is missing or not ours."""
    path = Path(folder) / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeployError(f"{path}: no deployment state here; 'pipeplan deploy PLAN --out {folder}' writes it "
                          "(or the deployment was already stopped).") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DeployError(f"{path}: cannot read the deployment state ({exc}).") from None
    if data.get("schema_version") != STATE_SCHEMA_VERSION:
        raise DeployError(f"{path}: field 'schema_version': found {data.get('schema_version')!r}, expected "
                          f"{STATE_SCHEMA_VERSION}; this file was written by another pipeplan version.")
    try:
        process = ProcessRef(**data["process"]) if data["process"] else None
        return Deployment(engine=EngineKind(data["engine"]), infer_url=data["infer_url"], admin_url=data["admin_url"],
                          folder=Path(data["folder"]), process=process, ports=dict(data["ports"]),
                          models=tuple(data["models"]), plan_file=data["plan_file"],
                          scratch=data.get("scratch"))
    except (KeyError, TypeError, ValueError) as exc:
        raise DeployError(f"{path}: not a deployment state ({type(exc).__name__}: {exc}).") from None
