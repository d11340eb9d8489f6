"""Pipeline specs, hardware catalogs and objectives: validated, frozen file models.

Unknown keys are rejected (a typo in YAML fails with the field's name); each file carries a
``schema_version``. Cross-file checks (names in the profile table) live in :mod:`planner.candidates`.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator



class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceKind(str, Enum):
    CPU = "cpu"
    GPU = "gpu"


class Hardware(_Frozen):
    """One kind of machine; a replica occupies one unit of it."""

    name: str = Field(min_length=1, description="Name referenced by profiles and specs.")
    kind: DeviceKind = Field(description="cpu or gpu.")
    cores: int = Field(ge=1, description="CPU cores per unit.")
    gpus: int = Field(default=0, ge=0, description="GPUs per unit.")
    usd_per_hour: float = Field(gt=0, description="On-demand price of one unit.")
    spot_usd_per_hour: float | None = Field(default=None, gt=0, description="Spot price, if any.")
    startup_s: float = Field(default=0.0, ge=0, description="Seconds from request to a usable unit.")
    max_units: int | None = Field(default=None, ge=1, description="How many units the cluster has.")

    @model_validator(mode="after")
    def _gpu_has_gpus(self) -> "Hardware":
        if self.kind is DeviceKind.GPU and self.gpus < 1:
            raise ValueError(f"hardware '{self.name}' is kind gpu but has gpus: {self.gpus}; set gpus >= 1")
        return self


class HardwareCatalog(_Frozen):
    schema_version: Literal[1] = Field(description="Catalog format version.")
    hardware: tuple[Hardware, ...] = Field(min_length=1)

    @field_validator("hardware")
    @classmethod
    def _unique_names(cls, value: tuple[Hardware, ...]) -> tuple[Hardware, ...]:
        names = [h.name for h in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"hardware names must be unique; repeated: {dupes}")
        return value

    def by_name(self) -> dict[str, Hardware]:
        return {h.name: h for h in self.hardware}


class MinCost(_Frozen):
    """Cheapest plan whose pipeline accuracy is at least ``min_accuracy``."""

    kind: Literal["min_cost"]
    min_accuracy: float = Field(default=0.0, ge=0, le=1)


class MaxAccuracy(_Frozen):
    """Most accurate plan that costs at most ``budget_usd_per_hour`` (ties: the cheapest)."""

    kind: Literal["max_accuracy"]
    budget_usd_per_hour: float = Field(gt=0)


class Weighted(_Frozen):
    """Maximise ``accuracy_weight * accuracy - cost_weight * usd_per_hour``."""

    kind: Literal["weighted"]
    accuracy_weight: float = Field(gt=0)
    cost_weight: float = Field(gt=0)


Objective = Annotated[Union[MinCost, MaxAccuracy, Weighted], Field(discriminator="kind")]


class AccuracyAggregation(str, Enum):
    PRODUCT = "product"
    MIN = "min"
    MEAN = "mean"


class ChallengerSpec(_Frozen):
    """A second variant answering a share of the stage's requests (a traffic split)."""

    variant: str = Field(min_length=1, description="Variant of the stage's model.")
    percent: int = Field(ge=1, le=99, description="Share of the stage's requests it answers, percent.")


class MirrorSpec(_Frozen):
    """A variant that receives a copy of all of the stage's traffic (shadow); its answers are dropped."""

    variant: str = Field(min_length=1, description="Variant of the stage's model.")


class StageSpec(_Frozen):
    name: str = Field(min_length=1)
    model: str = Field(min_length=1, description="Model name in the profile table.")
    variants: tuple[str, ...] | None = Field(default=None, description="Allow-list of variants; all if absent.")
    after: tuple[str, ...] = Field(default=(), description="Stages whose output this stage consumes.")
    fanout: float = Field(default=1.0, gt=0, description="Items this stage receives per pipeline request.")
    hardware: tuple[str, ...] | None = Field(default=None, description="Overrides the pipeline's hardware list.")
    batch_sizes: tuple[int, ...] | None = Field(default=None, description="Overrides the pipeline's batch sizes.")
    max_replicas: int | None = Field(default=None, ge=1, description="Overrides the pipeline's max_replicas.")
    challenger: ChallengerSpec | None = Field(default=None, description="A traffic split: champion = the planned variant.")
    mirror: MirrorSpec | None = Field(default=None, description="A shadow copy of the stage's traffic.")

    @property
    def champion_share(self) -> float:
        """The share of the stage's load the planned (champion) variant serves."""
        return 1.0 - (self.challenger.percent / 100.0 if self.challenger else 0.0)

    @field_validator("variants")
    @classmethod
    def _non_empty_variants(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and len(value) == 0:
            raise ValueError("the variants allow-list is empty; list at least one variant or remove the key")
        return value

    @field_validator("batch_sizes")
    @classmethod
    def _positive_batches(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        return _check_batches(value) if value is not None else None


def _check_batches(value: tuple[int, ...]) -> tuple[int, ...]:
    if len(value) == 0:
        raise ValueError("batch_sizes is empty; list at least one batch size, e.g. [1, 4, 16]")
    if any(b < 1 for b in value):
        raise ValueError(f"batch sizes must be >= 1, found {list(value)}")
    return tuple(sorted(set(value)))


class PipelineSpec(_Frozen):
    schema_version: Literal[1] = Field(description="Spec format version.")
    name: str = Field(min_length=1)
    stages: tuple[StageSpec, ...] = Field(min_length=1)
    slo_ms: float = Field(gt=0, description="End-to-end p99 latency target, milliseconds.")
    arrival_rps: float = Field(gt=0, description="Pipeline requests per second to plan for.")
    arrival_cv: float = Field(default=1.0, ge=0, description="Coefficient of variation of inter-arrival times (1 = Poisson).")
    objective: Objective = Field(default_factory=lambda: MinCost(kind="min_cost"))
    accuracy: AccuracyAggregation = AccuracyAggregation.PRODUCT
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    max_replicas: int = Field(default=32, ge=1)
    hardware: tuple[str, ...] | None = Field(default=None, description="Allowed hardware names; all if absent.")
    max_utilization: float = Field(default=0.9, gt=0, lt=1, description="Utilisation cap per stage.")
    batch_timeout_quantiles: tuple[float, ...] = Field(
        default=(0.5, 0.9, 0.99),
        description="Candidate batch timeouts: these quantiles of the time to fill a batch at the planned load.",
    )
    profiles: str | None = Field(default=None, description="Profile table, relative to the spec file.")
    hardware_catalog: str | None = Field(default=None, description="Hardware catalog, relative to the spec file.")

    @field_validator("batch_sizes")
    @classmethod
    def _batches(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return _check_batches(value)

    @field_validator("batch_timeout_quantiles")
    @classmethod
    def _quantiles(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(not 0 < q < 1 for q in value):
            raise ValueError(f"batch_timeout_quantiles must be non-empty, each in (0, 1); found {list(value)}")
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _graph(self) -> "PipelineSpec":
        names = [s.name for s in self.stages]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"stage names must be unique; repeated: {dupes}")
        known = set(names)
        for stage in self.stages:
            for parent in stage.after:
                if parent not in known:
                    raise ValueError(
                        f"stage '{stage.name}': after names unknown stage '{parent}'; known stages: {names}"
                    )
                if parent == stage.name:
                    raise ValueError(f"stage '{stage.name}': after names the stage itself")
        cycle = find_cycle(self)
        if cycle:
            raise ValueError(f"the stages' 'after' links form a cycle: {' -> '.join(cycle)}; a pipeline must be a DAG")
        return self

    def stage(self, name: str) -> StageSpec:
        return next(s for s in self.stages if s.name == name)

    def topological_order(self) -> tuple[str, ...]:
        """Stage names, parents before children, ties in file order (deterministic)."""
        order: list[str] = []
        placed: set[str] = set()
        while len(order) < len(self.stages):
            for s in self.stages:
                if s.name not in placed and all(p in placed for p in s.after):
                    order.append(s.name)
                    placed.add(s.name)
                    break
        return tuple(order)

    def sinks(self) -> tuple[str, ...]:
        parents = {p for s in self.stages for p in s.after}
        return tuple(s.name for s in self.stages if s.name not in parents)


def find_cycle(spec: PipelineSpec) -> list[str]:
    """A cycle in the 'after' graph as a list of names (first repeated at the end), or []."""
    parents = {s.name: s.after for s in spec.stages}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for parent in parents.get(node, ()):
            if state.get(parent) == 1:
                return stack[stack.index(parent):] + [parent]
            if parent not in state:
                found = visit(parent)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for s in spec.stages:
        if s.name not in state:
            found = visit(s.name)
            if found:
                return found
    return []
