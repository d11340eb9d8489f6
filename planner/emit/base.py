"""What every emitter shares: the typed hand-offs, the deployment units of a plan, and the plan check.

An emitter is a pure function ``EmitInputs -> EmitResult``: it reads no file and writes none. The CLI
resolves the inputs (plan, manifest artifacts, deploy settings) and writes the result atomically
(:mod:`planner.io.emit`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from planner.emit.settings import DeploySettings
from planner.errors import EmitError
from planner.plan import Plan, StagePlan


class Role(str, Enum):
    """What a deployment unit does for its stage."""

    CHAMPION = "champion"  # the planned variant; takes the traffic not given to a challenger
    CHALLENGER = "challenger"  # a traffic share of the stage (a split)
    MIRROR = "mirror"  # a copy of all of the stage's traffic; its answers are dropped


@dataclass(frozen=True)
class EmittedFile:
    """A file an emitter writes, relative to the output folder."""

    path: PurePosixPath
    content: bytes


@dataclass(frozen=True)
class CopiedArtifact:
    """A model file the writer copies into the output folder (emitters never read model bytes)."""

    path: PurePosixPath
    source: Path
    sha256: str


@dataclass(frozen=True)
class EmitResult:
    """An engine's files, the model files to copy beside them, and what the engine could not express."""

    target: str
    files: tuple[EmittedFile, ...]
    artifacts: tuple[CopiedArtifact, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class VariantArtifact:
    """A variant's ONNX file and its signature (the first input and first output; one item, no batch)."""

    model: str
    variant: str
    path: Path
    sha256: str
    size_bytes: int
    input_name: str
    input_shape: tuple[int, ...]
    input_dtype: str  # numpy dtype name
    output_name: str
    output_shape: tuple[int, ...]  # -1 where the model leaves a dimension free
    output_dtype: str


@dataclass(frozen=True)
class HardwarePlacement:
    """How a replica on a hardware name runs: the manifest's setting (device, intra-op threads)."""

    device: str  # cpu | cuda
    threads: int


@dataclass(frozen=True)
class EmitInputs:
    """Everything an emitter reads: the plan, its variants' files, hardware placements and settings."""

    plan: Plan
    artifacts: dict[tuple[str, str], VariantArtifact]
    placements: dict[str, HardwarePlacement]
    settings: DeploySettings = field(default_factory=DeploySettings)


@dataclass(frozen=True)
class Unit:
    """One deployment: a stage's champion, challenger or mirror, with its planned batching and replicas."""

    stage: str
    role: Role
    name: str  # engine-neutral name: the stage, or STAGE__challenger / STAGE__mirror
    model: str
    variant: str
    hardware: str
    batch_size: int
    batch_timeout_ms: float
    replicas: int
    percent: int  # share of the stage's requests (champion: the rest; mirror: 100, a copy)

    @property
    def batch_timeout_us(self) -> int:
        return int(round(self.batch_timeout_ms * 1000))


def units(plan: Plan) -> tuple[Unit, ...]:
    """The plan's deployments, stage by stage in plan order, champion first."""
    out = []
    for s in plan.stages:
        routes = getattr(s, "routes", ())
        share = sum(r.percent for r in routes if r.role == Role.CHALLENGER.value)
        out.append(Unit(s.stage, Role.CHAMPION, s.stage, s.model, s.variant, s.hardware, s.batch_size,
                        s.batch_timeout_ms, s.replicas, 100 - share))
        for r in routes:
            role = Role(r.role)
            out.append(Unit(s.stage, role, f"{s.stage}__{role.value}", s.model, r.variant, r.hardware,
                            r.batch_size, r.batch_timeout_ms, r.replicas, r.percent))
    return tuple(out)


def stage_units(plan: Plan, stage: str) -> tuple[Unit, ...]:
    return tuple(u for u in units(plan) if u.stage == stage)


def topological(plan: Plan) -> tuple[StagePlan, ...]:
    """Stages parents first, ties in plan order (the plan has been checked to be a DAG)."""
    order: list[StagePlan] = []
    placed: set[str] = set()
    while len(order) < len(plan.stages):
        for s in plan.stages:
            if s.stage not in placed and all(p in placed for p in s.after):
                order.append(s)
                placed.add(s.stage)
                break
    return tuple(order)


def sinks(plan: Plan) -> tuple[str, ...]:
    parents = {p for s in plan.stages for p in s.after}
    return tuple(s.stage for s in plan.stages if s.stage not in parents)


def check_plan(plan: Plan, where: str = "the plan") -> None:
    """Refuse a plan no engine could run: no stages, unknown or cyclic 'after', non-positive numbers."""
    if not plan.stages:
        raise EmitError(f"{where}: it has no stages; re-create it with 'pipeplan plan'.")
    names = [s.stage for s in plan.stages]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise EmitError(f"{where}: stage names repeat ({dupes}); each stage must appear once.")
    for s in plan.stages:
        for parent in s.after:
            if parent not in names:
                raise EmitError(f"{where}: stage '{s.stage}', field 'after': stage '{parent}' is not in the plan "
                                f"(stages: {names}); the plan is incomplete, re-create it with 'pipeplan plan'.")
    for u in units(plan):
        label = f"stage '{u.stage}'" + ("" if u.role is Role.CHAMPION else f" ({u.role.value})")
        if u.batch_size < 1:
            raise EmitError(f"{where}: {label}, field 'batch_size': found {u.batch_size}; a batch holds at least "
                            "1 item. Re-create the plan with 'pipeplan plan'.")
        if u.replicas < 1:
            raise EmitError(f"{where}: {label}, field 'replicas': found {u.replicas}; every stage needs at "
                            "least 1 replica. Re-create the plan with 'pipeplan plan'.")
        if not math.isfinite(u.batch_timeout_ms) or u.batch_timeout_ms < 0:
            raise EmitError(f"{where}: {label}, field 'batch_timeout_ms': found {u.batch_timeout_ms}; it must be "
                            ">= 0 milliseconds.")
        if not 0 < u.percent <= 100:
            raise EmitError(f"{where}: {label}: its traffic share is {u.percent}%; a stage's challengers must "
                            "leave the champion between 1% and 99%.")
    placed: set[str] = set()
    for _ in names:
        placed |= {s.stage for s in plan.stages if all(p in placed for p in s.after)}
    if len(placed) < len(names):
        raise EmitError(f"{where}: the stages' 'after' links form a cycle among {sorted(set(names) - placed)}; "
                        "a pipeline must be a DAG.")


_DNS = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def dns_name(*parts: str, where: str = "the plan") -> str:
    """A Kubernetes object name (DNS-1123 label, <= 63 chars) from plan names: lower case, '_' and '.' to '-'."""
    name = "-".join(parts).lower().replace("_", "-").replace(".", "-")
    name = re.sub(r"-+", "-", name)
    if not _DNS.match(name) or len(name) > 63:
        raise EmitError(f"{where}: '{'-'.join(parts)}' cannot be made a Kubernetes name (got '{name}'; names are "
                        "lower-case letters, digits and '-', start with a letter, at most 63 characters); "
                        "rename the pipeline or stage in the spec.")
    return name


def artifact_for(inputs: EmitInputs, unit: Unit) -> VariantArtifact:
    try:
        return inputs.artifacts[(unit.model, unit.variant)]
    except KeyError:
        raise EmitError(f"stage '{unit.stage}': no model file for variant '{unit.variant}' of model "
                        f"'{unit.model}'; pass the manifest it was profiled from with --manifest.") from None


def placement_for(inputs: EmitInputs, unit: Unit) -> HardwarePlacement:
    try:
        return inputs.placements[unit.hardware]
    except KeyError:
        raise EmitError(f"stage '{unit.stage}': hardware '{unit.hardware}' is not a setting of the manifest "
                        f"(settings: {sorted(inputs.placements)}); the manifest says which device and how many "
                        "threads a replica on it uses. Add it to the manifest's 'hardware' list.") from None


def storage_path(unit: Unit) -> PurePosixPath:
    """Where a variant's file sits under the storage folder (and under --storage-uri once uploaded)."""
    return PurePosixPath("storage") / unit.model / unit.variant / "model.onnx"


def storage_uri(settings: DeploySettings, unit: Unit, target: str) -> str:
    if not settings.storage_uri:
        raise EmitError(f"target {target}: no storage URI for the model files; pass --storage-uri (where the "
                        "emitted storage/ folder will be uploaded, e.g. s3://bucket/pipeplan/ocr) or set "
                        "'storage_uri' in the deploy-settings file.")
    return f"{settings.storage_uri.rstrip('/')}/{unit.model}/{unit.variant}"


def storage_artifacts(inputs: EmitInputs) -> tuple[CopiedArtifact, ...]:
    """The storage/ folder: every variant the plan runs, once."""
    seen: dict[PurePosixPath, CopiedArtifact] = {}
    for u in units(inputs.plan):
        a = artifact_for(inputs, u)
        seen.setdefault(storage_path(u), CopiedArtifact(storage_path(u), a.path, a.sha256))
    return tuple(seen.values())


def storage_files(inputs: EmitInputs) -> tuple[EmittedFile, ...]:
    """storage/SHA256SUMS: the digest of every model file to upload (``sha256sum -c`` reads it)."""
    lines = sorted(f"{a.sha256}  {a.path.relative_to('storage')}\n" for a in storage_artifacts(inputs))
    return (EmittedFile(PurePosixPath("storage") / "SHA256SUMS", "".join(lines).encode()),)


def dump_yaml(documents: list[dict[str, Any]]) -> bytes:
    """Stable multi-document YAML: sorted keys, block style, no aliases."""
    class _NoAlias(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    text = "---\n".join(yaml.dump(d, Dumper=_NoAlias, sort_keys=True, default_flow_style=False, width=120)
                        for d in documents)
    return text.encode()


def dump_json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def header_comment(plan: Plan, what: str) -> str:
    return f"# {what}, emitted by pipeplan from the plan for pipeline '{plan.pipeline}'. Do not edit: re-run pipeplan emit.\n"
