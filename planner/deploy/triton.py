"""Deploy an emitted Triton model repository on the local tritonserver, change it live, stop it.

The server is the one bundled in nvidia-pytriton (:mod:`planner.deploy.triton_local` copies it into
the deploy folder and builds its environment), started detached in its own session on 127.0.0.1
in explicit model-control mode with every model loaded (``--load-model=*``), so that
:func:`apply` can reload one stage with a new config through
``POST /v2/repository/models/<m>/load {"parameters": {"config": ...}}`` while the ensemble serves.

Every failure path stops the process group it started, by its pid, before the error propagates
(a model that fails to load makes the server exit: ``--exit-on-error=true``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from planner.deploy import triton_local
from planner.deploy.http import call
from planner.deploy.process import ProcessRef, group_alive, spawn, stop_group
from planner.deploy.state import Deployment, EngineKind
from planner.errors import DeployError
from planner.plan import Plan, StagePlan

log = logging.getLogger(__name__)

LOG_FILE = "tritonserver.log"
PIPELINE_MODEL = "pipeline"  # planner.emit.triton's entry model (BLS)


def find_repository(emitted: Path) -> Path:
    """The model repository of an emitted folder: ``triton/model_repository_local`` (all KIND_CPU, written
    when a stage is planned on a GPU) or ``triton/model_repository``; else the folder itself."""
    for candidate in (emitted / "triton" / "model_repository_local", emitted / "triton" / "model_repository",
                      emitted / "triton", emitted):
        if candidate.is_dir() and any(candidate.glob("*/config.pbtxt")):
            return candidate
    raise DeployError(f"{emitted}: no Triton model repository (folders with a config.pbtxt) in "
                      f"{emitted / 'triton' / 'model_repository'}; write one with "
                      f"'pipeplan emit PLAN --target triton --out {emitted}'.")


def _tail(path: Path, lines: int = 6) -> str:
    """The log's error lines (Triton prefixes them with E) and its last few lines."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log)"
    errors = [line for line in text if line.startswith("E") or "rror" in line][:12]
    return "\n".join(dict.fromkeys(errors + text[-lines:]))


def _wait_ready(base: str, ref: ProcessRef, log_path: Path, timeout_s: float) -> float:
    """Seconds until /v2/health/ready answers 200; DeployError if the server exits or time runs out."""
    begin = time.monotonic()
    while time.monotonic() - begin < timeout_s:
        if not group_alive(ref):
            raise DeployError(f"tritonserver exited while loading the repository (its own words, from "
                              f"{log_path}):\n{_tail(log_path)}\nFix the model named there and deploy again.")
        if call("GET", f"{base}/v2/health/ready", timeout_s=1.0).status == 200:
            return time.monotonic() - begin
        time.sleep(0.2)
    raise DeployError(f"tritonserver was not ready after {timeout_s:g} s (log {log_path}):\n{_tail(log_path)}\n"
                      "A model may be slow to load; raise --ready-timeout-s.")


def _models(base: str) -> tuple[str, tuple[str, ...]]:
    """(entry model, stage models): the emitted 'pipeline' model, else the one ensemble, else the only model."""
    index = call("POST", f"{base}/v2/repository/index", {}).json() or []
    names = sorted(m["name"] for m in index if m.get("state") == "READY")
    if PIPELINE_MODEL in names:
        return PIPELINE_MODEL, tuple(n for n in names if n != PIPELINE_MODEL)
    ensembles = [n for n in names if call("GET", f"{base}/v2/models/{n}/config").json().get("platform") == "ensemble"]
    if len(ensembles) == 1:
        return ensembles[0], tuple(n for n in names if n != ensembles[0])
    if not ensembles and len(names) == 1:
        return names[0], tuple(names)
    raise DeployError(f"the Triton repository holds models {names} with ensembles {ensembles}; pipeplan sends "
                      f"each request to one entry model: the emitted '{PIPELINE_MODEL}' model or one ensemble.")


def start(emitted: Path, folder: Path, python: Path, plan_file: str, http_port: int | None = None,
          ready_timeout_s: float = 120.0) -> Deployment:
    """Start tritonserver on the repository in ``emitted``; return once it is ready (or stop it and raise)."""
    repository = find_repository(emitted).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        layout = triton_local.prepare_layout(folder / "engine", python)
    except triton_local.TritonUnavailable as exc:
        raise DeployError(str(exc)) from None
    ports = {"http": http_port or triton_local.free_port(), "grpc": triton_local.free_port(),
             "metrics": triton_local.free_port()}
    command = triton_local.server_command(layout, repository, ports["http"], ports["grpc"], ports["metrics"],
                                          ("--model-control-mode=explicit", "--load-model=*"))
    log_path = folder / LOG_FILE
    _, ref = spawn(command, triton_local.server_env(layout), log_path)
    base = f"http://127.0.0.1:{ports['http']}"
    try:
        seconds = _wait_ready(base, ref, log_path, ready_timeout_s)
        entry, stages = _models(base)
    except BaseException:
        stop_group(ref)
        raise
    log.info("tritonserver ready in %.1f s (pid %d)", seconds, ref.pid)
    return Deployment(engine=EngineKind.TRITON, infer_url=f"{base}/v2/models/{entry}/infer", admin_url=base,
                      folder=folder.resolve(), process=ref, ports=ports, models=stages, plan_file=plan_file)


def entry_config(d: Deployment) -> dict:
    """The entry model's config as the server reports it (input names, dtypes, dims)."""
    entry = d.infer_url.rstrip("/").rsplit("/", 2)[-2]
    answer = call("GET", f"{d.admin_url}/v2/models/{entry}/config")
    if not answer.ok:
        raise DeployError(f"{d.admin_url}: cannot read model '{entry}''s config (HTTP {answer.status}); is the "
                          "deployment still running? 'pipeplan undeploy' and deploy again.")
    return answer.json()


def stage_config(current: dict, stage: StagePlan) -> dict:
    """``current`` (a model's JSON config) with the plan's batch size, batch timeout and replicas, as the
    emitter writes them: ``max_batch_size`` = the batch size, ``dynamic_batching`` with the timeout
    when the batch size is above 1, ``instance_group[0].count`` = the replicas."""
    config = json.loads(json.dumps(current))
    config["max_batch_size"] = stage.batch_size
    if stage.batch_size > 1:
        batching = dict(config.get("dynamic_batching") or {})
        batching["max_queue_delay_microseconds"] = int(round(stage.batch_timeout_ms * 1000))
        # Preferred sizes above the new maximum would make Triton refuse the config.
        batching["preferred_batch_size"] = [b for b in batching.get("preferred_batch_size", []) if b <= stage.batch_size]
        config["dynamic_batching"] = batching
    else:
        config.pop("dynamic_batching", None)
    groups = config.get("instance_group") or [{"kind": "KIND_CPU"}]
    config["instance_group"] = [{**groups[0], "count": stage.replicas}]
    return config


@dataclass(frozen=True)
class StageSwitch:
    model: str
    seconds: float


def apply(d: Deployment, plan: Plan, timeout_s: float = 120.0) -> tuple[StageSwitch, ...]:
    """Reload each stage whose batching or replicas changed with its new config; the ensemble keeps serving.

    A changed variant or hardware needs other model files: refused (deploy the new plan instead).
    """
    unknown = [s.stage for s in plan.stages if s.stage not in d.models]
    if unknown:
        raise DeployError(f"the new plan's stages {unknown} are not models of the running deployment "
                          f"({list(d.models)}); 'pipeplan apply' changes batching and replicas of the same "
                          "stages. Deploy the new plan instead.")
    switches = []
    for stage in plan.stages:
        answer = call("GET", f"{d.admin_url}/v2/models/{stage.stage}/config")
        if not answer.ok:
            raise DeployError(f"model '{stage.stage}': cannot read its config (HTTP {answer.status}): {answer.text()}")
        current = answer.json()
        new = stage_config(current, stage)
        if _same(new, current):
            continue
        begin = time.monotonic()
        answer = call("POST", f"{d.admin_url}/v2/repository/models/{stage.stage}/load",
                      {"parameters": {"config": json.dumps(new)}}, timeout_s=timeout_s)
        if not answer.ok:
            raise DeployError(f"model '{stage.stage}': Triton refused the new config (HTTP {answer.status}: "
                              f"{answer.text()}); the old config keeps serving.")
        switches.append(StageSwitch(stage.stage, time.monotonic() - begin))
    return tuple(switches)


def _same(a: dict, b: dict) -> bool:
    keys = ("max_batch_size", "dynamic_batching", "instance_group")
    return all(json.dumps(a.get(k), sort_keys=True) == json.dumps(b.get(k), sort_keys=True) for k in keys)


def stop(d: Deployment) -> bool:
    """Stop the server's process group by its pid; True once nothing of it runs."""
    return True if d.process is None else stop_group(d.process)
