"""Ray Serve: a ``serve run`` / ``serve deploy`` config plus the application it imports.

Files (under ``ray-serve/``): ``serve_config.yaml``; ``pipeline_app.py`` and ``routing.py`` (the same
program for every plan, from planner/emit/runtime); ``pipeline.json`` (this plan's DAG and models);
``models/MODEL/VARIANT.onnx`` (copied, sha256 checked when a replica loads it).

Per deployment: ``num_replicas`` (or ``autoscaling_config`` when the deploy settings give the stage a
``max_replicas``), ``ray_actor_options`` with the manifest's threads as ``num_cpus`` and one GPU for a
cuda setting, ``max_ongoing_requests`` = :data:`MAX_ONGOING` (items wait in the replica's
``@serve.batch`` queue, which runs one batch at a time; the router sends each item to the replica
with the shorter queue of two, near the one queue per stage the plan assumes), and the batch size
and timeout in ``user_config``, applied in ``reconfigure()`` to ``@serve.batch``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import PurePosixPath

from planner.errors import EmitError
from planner.emit.base import (
    CopiedArtifact,
    EmitInputs,
    EmitResult,
    EmittedFile,
    Role,
    artifact_for,
    check_plan,
    dump_json,
    dump_yaml,
    header_comment,
    placement_for,
    sinks,
    stage_units,
    topological,
    units,
)

ROOT = PurePosixPath("ray-serve")
INGRESS = "pipeplan_ingress"
# Requests a replica accepts at once. Ray's router does not queue: when every replica is at capacity it
# retries with exponential back-off (25 ms and up), so a cap at the batch size (or Ray's default of 5
# at the ingress) turned queueing into back-off sleeps: measured p50 130 ms at 5 rps for a digits plan
# whose simulated p50 is under 1 ms, and 60-90% of requests timed out at 40 rps. With a high cap the
# items queue inside the replica, in @serve.batch's FIFO, which is the queue the plan models.
MAX_ONGOING = 1000
RUNTIME_FILES = {"pipeline_app.py": "ray_app.py", "routing.py": "routing.py"}


def model_file(model: str, variant: str) -> PurePosixPath:
    return PurePosixPath("models") / model / f"{variant}.onnx"


def _deployment(inputs: EmitInputs, unit) -> dict:
    placement = placement_for(inputs, unit)
    stage_settings = inputs.settings.stage(unit.stage)
    out = {
        "name": unit.name,
        "max_ongoing_requests": MAX_ONGOING,
        "ray_actor_options": {"num_cpus": placement.threads, "num_gpus": 1 if placement.device == "cuda" else 0},
        "user_config": {"max_batch_size": unit.batch_size, "batch_wait_timeout_s": unit.batch_timeout_ms / 1000.0},
    }
    if stage_settings.max_replicas is not None and unit.role is Role.CHAMPION:
        out["autoscaling_config"] = {"min_replicas": unit.replicas, "initial_replicas": unit.replicas,
                                     "max_replicas": max(unit.replicas, stage_settings.max_replicas),
                                     "target_ongoing_requests": unit.batch_size}
    else:
        out["num_replicas"] = unit.replicas
    return out


def emit(inputs: EmitInputs) -> EmitResult:
    """The Ray Serve config, the app and its data file, and the model files to copy."""
    plan = inputs.plan
    check_plan(plan)
    all_units = units(plan)
    if any(u.name == INGRESS for u in all_units):
        raise EmitError(f"the plan: stage name '{INGRESS}' is reserved for the Ray Serve ingress; rename the stage.")
    deployments = {}
    artifacts = {}
    for u in all_units:
        a, p = artifact_for(inputs, u), placement_for(inputs, u)
        path = model_file(u.model, u.variant)
        artifacts[path] = CopiedArtifact(ROOT / path, a.path, a.sha256)
        deployments[u.name] = {"stage": u.stage, "role": u.role.value, "model": u.model, "variant": u.variant,
                               "model_file": str(path), "sha256": a.sha256, "input_name": a.input_name,
                               "input_dtype": a.input_dtype, "input_shape": list(a.input_shape),
                               "device": p.device, "threads": p.threads}
    pipeline = {
        "pipeline": plan.pipeline, "ingress": INGRESS, "sinks": list(sinks(plan)), "deployments": deployments,
        "stages": [{"name": s.stage, "after": list(s.after), "fanout": s.fanout,
                    "units": [{"deployment": u.name, "role": u.role.value, "percent": u.percent}
                              for u in stage_units(plan, s.stage)]} for s in topological(plan)],
    }
    config = {
        "proxy_location": "HeadOnly",
        "http_options": {"host": "127.0.0.1", "port": inputs.settings.ray_http_port},
        "applications": [{
            "name": plan.pipeline, "route_prefix": "/", "import_path": "pipeline_app:app", "runtime_env": {},
            "logging_config": {"enable_access_log": False, "log_level": "WARNING"},
            # The ingress only routes: it is not part of the plan and reserves no CPU, so the stages get
            # the cores they were planned with.
            "deployments": [{"name": INGRESS, "num_replicas": 1, "max_ongoing_requests": MAX_ONGOING,
                             "ray_actor_options": {"num_cpus": 0}}]
                           + [_deployment(inputs, u) for u in all_units],
        }],
    }
    files = [
        EmittedFile(ROOT / "serve_config.yaml",
                    header_comment(plan, "Ray Serve config").encode()
                    + b"# Run from this folder: serve run serve_config.yaml (HTTP on 127.0.0.1)\n"
                    + dump_yaml([config])),
        EmittedFile(ROOT / "pipeline.json", dump_json(pipeline)),
    ]
    runtime = resources.files("planner.emit.runtime")
    for name, source in sorted(RUNTIME_FILES.items()):
        files.append(EmittedFile(ROOT / name, runtime.joinpath(source).read_bytes()))
    notes = []
    for u in all_units:
        if u.role is Role.MIRROR:
            notes.append(f"ray-serve: stage '{u.stage}': mirror '{u.variant}' gets a copy of every item from the "
                         "ingress; its answers are dropped.")
    return EmitResult("ray-serve", tuple(files), tuple(artifacts[k] for k in sorted(artifacts)), tuple(notes))
