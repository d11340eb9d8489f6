"""The edge of emitting: read a plan's inputs (plan file, manifest artifacts, deploy settings)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from planner import io
from planner.emit.artifacts import resolve
from planner.emit.base import EmitInputs, check_plan
from planner.emit.settings import DeploySettings
from planner.errors import EmitError
from profiler.validation_errors import format_validation_error


def load_settings(path: Path | None, image: str | None = None, storage_uri: str | None = None) -> DeploySettings:
    """The deploy-settings file (if any) with the command line's --image / --storage-uri on top."""
    data: dict = {}
    if path is not None:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise EmitError(f"{path}: no such deploy-settings file; check the path.") from None
        except (OSError, yaml.YAMLError) as exc:
            raise EmitError(f"{path}: cannot read the deploy settings ({exc}).") from None
        if not isinstance(data, dict):
            raise EmitError(f"{path}: expected a YAML mapping, found {type(data).__name__}; see docs/emit.md.")
    overrides = {k: v for k, v in (("image", image), ("storage_uri", storage_uri)) if v is not None}
    try:
        return DeploySettings.model_validate({**data, **overrides})
    except ValidationError as exc:
        raise EmitError(format_validation_error(path or "the command line", exc, DeploySettings, data)) from None


def load_inputs(plan_path: Path, manifest: Path | None, settings: DeploySettings, cache_dir: Path) -> EmitInputs:
    """Plan + its variants' files (through the manifest) + hardware placements + settings."""
    plan = io.load_plan(plan_path)
    check_plan(plan, str(plan_path))
    if manifest is None:
        named = plan.provenance.get("profiles", {}).get("metadata", {}).get("manifest")
        hint = f"its profile table was measured from manifest '{named}', but the plan does not record that file" \
            if named else "the plan's profile table names no manifest"
        raise EmitError(f"{plan_path}: pass --manifest: {hint}. The manifest says where each variant's ONNX file "
                        "comes from (e.g. --manifest configs/ocr.manifest.yaml).")
    artifacts, placements = resolve(plan, manifest, cache_dir)
    unknown = sorted(set(settings.stage_settings) - {s.stage for s in plan.stages})
    if unknown:
        raise EmitError(f"deploy settings: 'stage_settings' names stages {unknown} that the plan does not have "
                        f"(stages: {[s.stage for s in plan.stages]}); fix the names.")
    return EmitInputs(plan=plan, artifacts=artifacts, placements=placements, settings=settings)
