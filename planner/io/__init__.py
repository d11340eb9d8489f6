"""Every read and write of files for the planner.

Reads validate: YAML through a loader that refuses duplicate keys and integers too long to be
numbers; file models (planner.spec) refuse non-finite, out-of-range and boolean numbers; plan files
are checked field by field. Writes go through :func:`outputs` (pipeplan_files.write.OutputSet): every
output of a command is checked up front, staged beside its target and committed together.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from planner.resource_class import ResourceClass
from planner.errors import InputFileError, ProfileError, SpecError
from planner.plan import PLAN_SCHEMA_VERSION, Plan, StagePlan, StageResource, plan_from_dict, plan_to_json, upgrade_plan_dict
from planner.limits import MAX_ARRIVAL_RPS, MAX_BATCH_SIZE, MAX_FANOUT, MAX_SLO_MS, MAX_UNITS, find_cycle_in
from profiler.schema import ProfileSchemaError, ProfileTable
from pipeplan_files.errors import OutputPathError
from pipeplan_files.write import STDOUT, OutputSet, outputs

# pydantic, PyYAML and the spec models are imported by the functions that read YAML file models, so
# that reading a plan and writing outputs (pipeplan simulate) does not pay for them (~0.09 s of CPU).
if TYPE_CHECKING:
    from pydantic import BaseModel

    from planner.spec import HardwareCatalog, PipelineSpec
    from planner.ilp.backends import SolverName
    from planner.optimize import PlanRequest

__all__ = ["STDOUT", "OutputPathError", "OutputSet", "outputs", "load_spec", "load_catalog", "load_profiles",
           "load_request", "load_plan", "load_plan_on_catalog", "write_plan", "write_text_atomic", "write_csv_atomic", "csv_text"]



def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_yaml(path: Path, what: str) -> Any:
    """A YAML file that must hold a mapping, read strictly; errors name the file and what it is."""
    import yaml

    from pipeplan_files.read import StrictYamlLoader

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such {what} file; check the path.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: cannot read the {what} ({exc}).") from None
    try:
        data = yaml.load(text.lstrip("\ufeff"), Loader=StrictYamlLoader)  # noqa: S506 (a SafeLoader subclass)
    except RecursionError:
        raise SpecError(f"{path}: nested too deeply to read; a {what} is a flat mapping (see docs/formats.md).") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"{path}: not valid YAML{where} ({getattr(exc, 'problem', exc)}); fix the syntax.") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a YAML mapping at the top level, found {type(data).__name__}; "
                        "see docs/formats.md for the layout.")
    return data


def _validate(path: Path, data: Any, model: type[BaseModel], error: type[Exception]):
    from pydantic import ValidationError

    from pipeplan_files.read import format_validation_error

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(format_validation_error(path, exc, model, data)) from None


def load_spec(path: str | Path) -> PipelineSpec:
    from planner.spec import PipelineSpec

    path = Path(path)
    return _validate(path, read_yaml(path, "pipeline spec"), PipelineSpec, SpecError)


def load_catalog(path: str | Path) -> HardwareCatalog:
    from planner.spec import HardwareCatalog

    path = Path(path)
    return _validate(path, read_yaml(path, "hardware catalog"), HardwareCatalog, SpecError)


def load_profiles(path: str | Path) -> ProfileTable:
    from profiler.table_io import read_profile_table  # pandas/pyarrow: only commands that read profiles pay

    try:
        return read_profile_table(path)
    except ProfileSchemaError as exc:
        raise ProfileError(str(exc)) from None


def load_request(spec_path: str | Path, profiles: Path | None = None, hardware: Path | None = None,
                 solver: "SolverName | None" = None, time_limit_s: float | None = None,
                 record_timing: bool = False) -> "PlanRequest":
    """A PlanRequest from a spec file and its profile table and hardware catalog (the paths given,
    else the spec's, relative to the spec file), with sources and content hashes recorded."""
    from planner.estimate.candidates import Sources
    from planner.ilp.backends import SolverName
    from planner.optimize import PlanRequest

    spec_path = Path(spec_path)
    if time_limit_s is not None and not (math.isfinite(time_limit_s) and time_limit_s > 0):
        raise SpecError(f"--time-limit: found {time_limit_s!r}; give a positive number of seconds.")
    spec = load_spec(spec_path)
    profiles_path, catalog_path = resolve_inputs(spec_path, spec, profiles, hardware)
    catalog = load_catalog(catalog_path)
    table = load_profiles(profiles_path)
    from planner.resources import expand_profiles

    return PlanRequest(
        spec=spec, catalog=catalog, profiles=expand_profiles(table, catalog), solver=solver or SolverName.CBC, time_limit_s=time_limit_s,
        sources=Sources(str(spec_path), str(profiles_path), str(catalog_path)),
        provenance=provenance(spec_path, profiles_path, catalog_path, table),
        record_timing=record_timing,
    )


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
    """Write ``text`` to ``path`` through a temporary file and a rename (never half-written); the
    folder must exist. Commands stage several outputs with :func:`outputs` instead."""
    with outputs({"output": path}) as out:
        out.write_text(path, text)


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
    if isinstance(data, dict):
        data = upgrade_plan_dict(data)  # older plan files are read with their fields renamed
    if not isinstance(data, dict) or data.get("schema_version") != PLAN_SCHEMA_VERSION:
        found = data.get("schema_version") if isinstance(data, dict) else type(data).__name__
        raise SpecError(f"{path}: field 'schema_version': found {found!r}; this pipeplan reads plan "
                        f"schema_version {PLAN_SCHEMA_VERSION}. Re-create the plan with 'pipeplan plan'.")
    try:
        plan = plan_from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SpecError(f"{path}: not a valid plan ({type(exc).__name__}: {exc}); re-create it with 'pipeplan plan'.") from None
    _check_plan(path, plan)
    return plan


def load_plan_on_catalog(plan_path: str | Path, catalog_path: str | Path) -> Plan:
    """The plan at ``plan_path`` with its stages' class terms (and its risk) taken from the catalog at
    ``catalog_path`` instead of the plan's own: to simulate a plan under other spot or serverless
    terms without re-planning. Every stage's hardware must be in the catalog."""
    from planner.resources import with_resources

    plan_path, catalog_path = Path(plan_path), Path(catalog_path)
    plan = load_plan(plan_path)
    catalog = load_catalog(catalog_path)
    names = catalog.by_name()
    missing = [f"'{s.stage}' on '{s.hardware}'" for s in plan.stages if s.hardware not in names]
    if missing:
        raise SpecError(f"{plan_path}: stage(s) {', '.join(missing)} name hardware that the catalog {catalog_path} "
                        f"does not list (it has {sorted(names)}); pass the catalog the plan was made with, or "
                        "re-plan with this one.")
    return with_resources(plan, catalog)


# StagePlan numbers that must be > 0 (the others >= 0); every number must be finite and at most
# its bound (the spec's ranges; _PLAN_MAX for the rest), so the simulator's arithmetic stays exact.
_PLAN_POSITIVE = {"batch_size", "replicas", "fanout"}
_PLAN_BOUND = {"fanout": MAX_FANOUT, "replicas": MAX_UNITS, "batch_size": MAX_BATCH_SIZE, "slo_ms": MAX_SLO_MS,
               "arrival_rps": MAX_ARRIVAL_RPS, "accuracy": 1.0}
_PLAN_MAX = 1e12


def _bad_plan(path: Path, where: str, found: Any, fix: str) -> SpecError:
    return SpecError(f"{path}: field '{where}': found {found!r}; {fix} Re-create the plan with 'pipeplan plan'.")


def _check_number(path: Path, where: str, value: Any, kind: type, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise _bad_plan(path, where, value, f"expected {'a whole number' if kind is int else 'a number'}.")
    if not math.isfinite(value):
        raise _bad_plan(path, where, value, "expected a finite number.")
    if value < 0 or (positive and value == 0):
        raise _bad_plan(path, where, value, f"expected a number {'> 0' if positive else '>= 0'}.")
    bound = _PLAN_BOUND.get(where.rsplit(".", 1)[-1], _PLAN_MAX)
    if value > bound:
        raise _bad_plan(path, where, value, f"expected at most {bound:g}.")


def _check_plan(path: Path, plan: Plan) -> None:
    """What a hand-edited plan can get wrong and the simulator would trip over: no stages, types,
    non-finite or negative numbers, unknown or cyclic 'after' links."""
    if not plan.stages:
        raise _bad_plan(path, "stages", [], "a plan has at least one stage.")
    for name in ("slo_ms", "arrival_rps"):
        _check_number(path, name, getattr(plan, name), float, positive=True)
    for name in ("cost_usd_per_hour", "predicted_p99_ms", "accuracy"):
        _check_number(path, name, getattr(plan, name), float, positive=False)
    names = [s.stage for s in plan.stages]
    if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
        raise _bad_plan(path, "stages", names, "stage names must be non-empty and unique.")
    for i, stage in enumerate(plan.stages):
        for f in fields(StagePlan):
            value = getattr(stage, f.name)
            where = f"stages[{i}] ('{stage.stage}').{f.name}"
            if f.type in ("int", "float"):
                _check_number(path, where, value, int if f.type == "int" else float, f.name in _PLAN_POSITIVE)
            elif f.type in ("float | None",) and value is not None:
                _check_number(path, where, value, float, positive=False)
            elif f.type == "str" and not isinstance(value, str):
                raise _bad_plan(path, where, value, "expected a name.")
        if stage.resource is not None:
            _check_resource(path, f"stages[{i}] ('{stage.stage}').resource", stage.resource)
        for parent in stage.after:
            if parent not in names or parent == stage.stage:
                raise _bad_plan(path, f"stages[{i}] ('{stage.stage}').after", list(stage.after),
                                f"'after' names the other stages of the plan ({names}).")
        curve = stage.service_ms_by_batch
        for b, p50, p99 in zip(curve.batch_sizes, curve.p50_ms, curve.p99_ms):
            _check_number(path, f"stages[{i}] ('{stage.stage}').service_ms_by_batch.{b}.p50", p50, float, True)
            _check_number(path, f"stages[{i}] ('{stage.stage}').service_ms_by_batch.{b}.p99", p99, float, True)
            if b < 1:
                raise _bad_plan(path, f"stages[{i}] ('{stage.stage}').service_ms_by_batch", b, "batch sizes are >= 1.")
        if stage.batch_size not in curve.batch_sizes and stage.batch_size > curve.batch_sizes[-1]:
            raise _bad_plan(path, f"stages[{i}] ('{stage.stage}').service_ms_by_batch", list(curve.batch_sizes),
                            f"the service curve must reach batch_size {stage.batch_size}.")
    cycle = find_cycle_in({s.stage: tuple(s.after) for s in plan.stages})
    if cycle:
        raise _bad_plan(path, "stages.after", " -> ".join(cycle), "the stages must form a DAG.")


def _check_resource(path: Path, where: str, resource: StageResource) -> None:
    """A stage's class terms: spot or serverless, with that class's terms as finite numbers >= 0."""

    needed = {ResourceClass.SPOT: ("preemptions_per_hour", "replacement_s"),
              ResourceClass.SERVERLESS: ("cold_start_ms", "keep_warm_s", "max_concurrency")}.get(resource.resource_class)
    if needed is None:
        raise _bad_plan(path, f"{where}.resource_class", resource.resource_class.value,
                        "an on-demand stage has no 'resource' field; remove it.")
    for f in fields(StageResource):
        value = getattr(resource, f.name)
        if f.name == "resource_class" or (value is None and f.name not in needed):
            continue
        if value is None:
            raise _bad_plan(path, f"{where}.{f.name}", None, f"a {resource.resource_class.value} stage needs it.")
        _check_number(path, f"{where}.{f.name}", value, int if f.name == "max_concurrency" else float,
                      positive=f.name == "max_concurrency")


def csv_text(header: list[str], rows: Iterable[list[Any]]) -> str:
    """CSV text with floats at 10 significant digits (stable bytes)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([f"{v:.10g}" if isinstance(v, float) else v for v in row])
    return buffer.getvalue()


def write_csv_atomic(path: str | Path, header: list[str], rows: Iterable[list[Any]]) -> None:
    write_text_atomic(path, csv_text(header, rows))
