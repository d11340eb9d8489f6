"""Ray Serve: ServeDeploySchema and AutoscalingConfig (pydantic, from ray), an unknown-key check (the
schema lets typos through), and ``serve build`` of the emitted app (imports it; starts no Ray)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from planner.emit.validate import ValidatorUnavailable


def _schemas():
    try:
        from ray.serve.config import AutoscalingConfig
        from ray.serve.schema import ServeDeploySchema
    except ImportError:
        raise ValidatorUnavailable("Ray Serve checks need ray[serve]; `pip install '.[deploy]'`.") from None
    return ServeDeploySchema, AutoscalingConfig


def unknown_keys(data: Any, model, where: str = "") -> list[str]:
    """Keys of ``data`` that the pydantic ``model`` (recursively, through nested models) does not define."""
    import typing

    from pydantic import BaseModel

    problems = []
    if not isinstance(data, dict):
        return problems
    fields = model.model_fields
    for key, value in data.items():
        if key not in fields:
            problems.append(f"{where}{key}: unknown key (known: {sorted(fields)})")
            continue
        annotation = fields[key].annotation
        for candidate in (annotation, *typing.get_args(annotation)):
            inner = typing.get_args(candidate)
            for c in (candidate, *inner):
                if isinstance(c, type) and issubclass(c, BaseModel):
                    if isinstance(value, dict):
                        problems += unknown_keys(value, c, f"{where}{key}.")
                    elif isinstance(value, list):
                        for i, item in enumerate(value):
                            problems += unknown_keys(item, c, f"{where}{key}[{i}].")
                    break
            else:
                continue
            break
    return problems


def check_config(text: str) -> list[str]:
    """Problems of a serve config (YAML text): schema errors, autoscaling rules, unknown keys."""
    ServeDeploySchema, AutoscalingConfig = _schemas()
    from pydantic import ValidationError

    data = yaml.safe_load(text)
    try:
        ServeDeploySchema.model_validate(data)
    except ValidationError as exc:
        return [f"ServeDeploySchema: {e['loc']}: {e['msg']}" for e in exc.errors()]
    problems = unknown_keys(data, ServeDeploySchema)
    for app in data.get("applications", []):
        for d in app.get("deployments", []):
            if "autoscaling_config" in d:
                try:
                    AutoscalingConfig(**d["autoscaling_config"])
                except (ValidationError, ValueError) as exc:
                    problems.append(f"deployment {d.get('name')}: AutoscalingConfig: {exc}")
    return problems


def serve_build(app_dir: Path, config_text: str, timeout_s: float = 120.0) -> list[str]:
    """Run ``serve build pipeline_app:app`` in ``app_dir``; its deployments must be the config's."""
    _schemas()
    serve = Path(sys.executable).parent / "serve"
    out = app_dir / ".serve-build.yaml"
    try:
        result = subprocess.run([str(serve), "build", "pipeline_app:app", "--app-dir", str(app_dir), "-o", str(out)],
                                capture_output=True, text=True, timeout=timeout_s, cwd=app_dir)
        if result.returncode != 0:
            return [f"serve build exited {result.returncode}: {result.stderr.strip()[-2000:]}"]
        built = yaml.safe_load(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    built_names = {d["name"] for a in built["applications"] for d in a.get("deployments", [])}
    config_names = {d["name"] for a in yaml.safe_load(config_text)["applications"] for d in a.get("deployments", [])}
    if built_names != config_names:
        return [f"serve build found deployments {sorted(built_names)}, the config names {sorted(config_names)}"]
    return []
