"""Every read and write of files for the planner. Writes are atomic (temporary file, then rename)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import BaseModel, ValidationError

from planner.errors import InputFileError, ProfileError, SpecError
from planner.plan import PLAN_SCHEMA_VERSION, Plan, plan_from_dict, plan_to_json
from planner.spec import HardwareCatalog, PipelineSpec
from profiler.schema import ProfileSchemaError, ProfileTable
from profiler.fileio import atomic_target, format_validation_error


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_yaml(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such {what} file; check the path.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: cannot read the {what} ({exc}).") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"{path}: not valid YAML{where} ({getattr(exc, 'problem', exc)}); fix the syntax.") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a YAML mapping at the top level, found {type(data).__name__}; "
                        "see docs/formats.md for the layout.")
    return data


def _validate(path: Path, data: Any, model: type[BaseModel], error: type[Exception]):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(format_validation_error(path, exc, model, data)) from None


def load_spec(path: str | Path) -> PipelineSpec:
    path = Path(path)
    return _validate(path, _read_yaml(path, "pipeline spec"), PipelineSpec, SpecError)


def load_catalog(path: str | Path) -> HardwareCatalog:
    path = Path(path)
    return _validate(path, _read_yaml(path, "hardware catalog"), HardwareCatalog, SpecError)


def load_profiles(path: str | Path) -> ProfileTable:
    from profiler.table_io import read_profile_table  # pandas/pyarrow: only commands that read profiles pay

    try:
        return read_profile_table(path)
    except ProfileSchemaError as exc:
        raise ProfileError(str(exc)) from None


def resolve_inputs(spec_path: Path, spec: PipelineSpec, profiles: Path | None, catalog: Path | None) -> tuple[Path, Path]:
    """Profile and catalog paths: the CLI's if given, else the spec's (relative to the spec file)."""
    def pick(given: Path | None, in_spec: str | None, flag: str, key: str) -> Path:
        if given is not None:
            return given
        if in_spec is None:
            raise SpecError(f"{spec_path}: no {key} given; add '{key}: <path>' to the spec or pass {flag}.")
        return spec_path.parent / in_spec
    return (pick(profiles, spec.profiles, "--profiles", "profiles"),
            pick(catalog, spec.hardware_catalog, "--hardware", "hardware_catalog"))


def provenance(spec_path: Path, profiles_path: Path, catalog_path: Path, table: ProfileTable) -> dict[str, Any]:
    """Content hashes of the inputs (names as given, so a plan does not depend on where it was made)."""
    return {
        "spec": {"file": spec_path.name, "sha256": sha256_file(spec_path)},
        "profiles": {"file": profiles_path.name, "sha256": sha256_file(profiles_path),
                     "metadata": dict(sorted(table.metadata.items()))},
        "hardware_catalog": {"file": catalog_path.name, "sha256": sha256_file(catalog_path)},
    }


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (never half-written)."""
    with atomic_target(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")


def write_plan(plan: Plan, path: str | Path) -> None:
    write_text_atomic(path, plan_to_json(plan))


def load_plan(path: str | Path) -> Plan:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such plan file; make one with 'pipeplan plan'.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(f"{path}: cannot read the plan as JSON ({exc}).") from None
    if not isinstance(data, dict) or data.get("schema_version") != PLAN_SCHEMA_VERSION:
        found = data.get("schema_version") if isinstance(data, dict) else type(data).__name__
        raise SpecError(f"{path}: field 'schema_version': found {found!r}; this pipeplan reads plan "
                        f"schema_version {PLAN_SCHEMA_VERSION}. Re-create the plan with 'pipeplan plan'.")
    try:
        return plan_from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise SpecError(f"{path}: not a valid plan ({type(exc).__name__}: {exc}); re-create it with 'pipeplan plan'.") from None


def write_csv_atomic(path: str | Path, header: list[str], rows: Iterable[list[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([f"{v:.10g}" if isinstance(v, float) else v for v in row])
    write_text_atomic(path, buffer.getvalue())
