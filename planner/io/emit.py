"""Reading and writing at the emitters' edge: the plan, the deploy settings and the model files in
(:func:`load_inputs`), every emitted file out into one folder, atomically (:func:`write_results`).

On any error nothing is left: neither a half-written --out nor the temporary folder. An existing
--out is replaced only once the new one is complete.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from pydantic import ValidationError

from planner import io
from planner.emit.artifacts import resolve
from planner.emit.base import EmitInputs, EmitResult, check_plan
from planner.emit.settings import DeploySettings
from planner.errors import EmitError
from pipeplan_files.read import format_validation_error
from pipeplan_files.write import atomic_folder


def load_settings(path: Path | None, image: str | None = None, storage_uri: str | None = None) -> DeploySettings:
    """The deploy-settings file (if any) with the command line's --image / --storage-uri on top."""
    # The one strict YAML reader (duplicate keys and absurd integers refused, a BOM ignored).
    data: dict = io.read_yaml(path, "deploy-settings") if path is not None else {}
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


def write_results(results: tuple[EmitResult, ...], out: Path) -> list[Path]:
    """Write every result's files and artifacts under ``out``; returns the paths written (relative)."""
    out = Path(out)
    written: dict[str, str] = {}
    with atomic_folder(out) as tmp:
        for result in results:
            for f in result.files:
                _claim(written, str(f.path), hashlib.sha256(f.content).hexdigest())
                target = tmp / f.path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(f.content)
            for a in result.artifacts:
                if _claim(written, str(a.path), a.sha256):
                    continue
                target = tmp / a.path
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(a.source, target)
                if hashlib.sha256(target.read_bytes()).hexdigest() != a.sha256:
                    raise EmitError(f"{a.source}: the model file changed while it was copied (its sha256 is no "
                                    f"longer {a.sha256}); run pipeplan emit again.")
    return sorted(Path(p) for p in written)


def _claim(written: dict[str, str], path: str, digest: str) -> bool:
    """Record a path; True if the same bytes were already written there (shared storage/ files)."""
    if path in written:
        if written[path] != digest:
            raise EmitError(f"two targets emit different contents for {path}; report this as a bug.")
        return True
    written[path] = digest
    return False
