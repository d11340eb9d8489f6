"""Pipeline specs, hardware catalogs and objectives: validated, frozen file models.

Unknown keys are rejected (a typo in YAML fails with the field's name); each file carries a
``schema_version``. Cross-file checks (names in the profile table) live in :mod:`planner.estimate.candidates`.

Numbers are strict and bounded: a boolean is not a number (``slo_ms: true`` is refused, not read
as 1 ms), infinities and NaN are refused, and every quantity has a range wide enough for any real
pipeline and narrow enough that the latency model and the solvers' arithmetic stay exact
(a 1e20 USD/h machine made CBC, HiGHS and CP-SAT misreport or crash). Lists that select
(``hardware``, ``variants``, ``batch_sizes``) may not be empty: an empty list never means "all".
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, ClassVar, Literal, Union

from pydantic import AllowInfNan, ConfigDict, Field, Strict, field_validator, model_validator

from planner.limits import (
    MAX_USD_PER_HOUR, MIN_USD_PER_HOUR, MAX_SLO_MS, MIN_SLO_MS, MAX_ARRIVAL_RPS, MIN_ARRIVAL_RPS,
    MAX_ARRIVAL_CV, MAX_FANOUT, MIN_FANOUT, MAX_STARTUP_S, MAX_BUDGET_USD_PER_HOUR, MAX_WEIGHT, MIN_WEIGHT,
    MAX_BATCH_SIZE, MAX_REPLICAS, MAX_UNITS, MAX_CORES, MAX_STAGES, MAX_INTERVAL_S, MAX_PEAK_WINDOW_S,
    find_cycle_in)
from pipeplan_files.read import FileModel
from planner.resource_class import ResourceClass

# Strict numbers: an int or a float, never a bool or a string; floats finite.
Number = Annotated[float, Strict(), AllowInfNan(False)]
Count = Annotated[int, Strict()]


_Frozen = FileModel


class DeviceKind(str, Enum):
    CPU = "cpu"
    GPU = "gpu"


MAX_PREEMPTIONS_PER_HOUR = 1e3
MAX_COLD_START_MS = 1e7
MAX_CONCURRENCY = 100_000
MAX_USD_PER_REQUEST = 1e3
_SPOT_FIELDS = ("preemptions_per_hour", "replacement_s")
_SERVERLESS_FIELDS = ("usd_per_second", "usd_per_request", "cold_start_ms", "max_concurrency", "keep_warm_s")


class Hardware(_Frozen):
    """One kind of machine; a replica occupies one unit of it (a serverless instance is one unit)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1, description="Name referenced by profiles and specs.")
    kind: DeviceKind = Field(description="cpu or gpu.")
    cores: Count = Field(ge=1, le=MAX_CORES, description="CPU cores per unit.")
    gpus: Count = Field(default=0, ge=0, le=MAX_CORES, description="GPUs per unit.")
    usd_per_hour: Number = Field(ge=MIN_USD_PER_HOUR, le=MAX_USD_PER_HOUR,
                                 description="Price of one unit for an hour (serverless: not planned with, "
                                             "it bills per use; default usd_per_second x 3600).")
    spot_usd_per_hour: Number | None = Field(default=None, ge=MIN_USD_PER_HOUR, le=MAX_USD_PER_HOUR,
                                             description="Spot price, for information (plan with a 'spot' entry).")
    startup_s: Number = Field(default=0.0, ge=0, le=MAX_STARTUP_S, description="Seconds from request to a usable unit.")
    max_units: Count | None = Field(default=None, ge=1, le=MAX_UNITS, description="How many units the cluster has.")
    resource_class: ResourceClass = Field(default=ResourceClass.ON_DEMAND, alias="class",
                                          description="on_demand (default), spot or serverless.")
    profile_as: str | None = Field(default=None, min_length=1,
                                   description="Plan from the profile rows of this other entry (same machine).")
    # spot
    preemptions_per_hour: Number | None = Field(default=None, ge=0, le=MAX_PREEMPTIONS_PER_HOUR,
                                                description="spot: mean preemptions per replica-hour.")
    replacement_s: Number | None = Field(default=None, ge=0, le=MAX_STARTUP_S,
                                         description="spot: seconds from a preemption to a serving replacement.")
    # serverless
    usd_per_second: Number | None = Field(default=None, ge=0, le=MAX_USD_PER_HOUR,
                                          description="serverless: price per second an instance is busy.")
    usd_per_request: Number | None = Field(default=None, ge=0, le=MAX_USD_PER_REQUEST,
                                           description="serverless: price per item served.")
    cold_start_ms: Number | None = Field(default=None, ge=0, le=MAX_COLD_START_MS,
                                         description="serverless: extra delay of a batch on a cold instance.")
    max_concurrency: Count | None = Field(default=None, ge=1, le=MAX_CONCURRENCY,
                                          description="serverless: instances per stage at most.")
    keep_warm_s: Number | None = Field(default=None, ge=0, le=MAX_STARTUP_S,
                                       description="serverless: an idle instance stays warm this long.")

    @model_validator(mode="before")
    @classmethod
    def _serverless_hourly(cls, data):
        """A serverless entry's ``usd_per_hour`` (informational: the planner prices it per use,
        planner.pricing) defaults to its busy-all-hour price, usd_per_second x 3600."""
        if (isinstance(data, dict) and data.get("class") == ResourceClass.SERVERLESS.value
                and "usd_per_hour" not in data):
            per_s = data.get("usd_per_second")
            per_s = per_s if isinstance(per_s, (int, float)) and not isinstance(per_s, bool) else 0.0
            return {**data, "usd_per_hour": max(MIN_USD_PER_HOUR, 3600.0 * per_s)}
        return data

    @model_validator(mode="after")
    def _gpu_has_gpus(self) -> "Hardware":
        if self.kind is DeviceKind.GPU and self.gpus < 1:
            raise ValueError(f"hardware '{self.name}' is kind gpu but has gpus: {self.gpus}; set gpus >= 1")
        return self

    @model_validator(mode="after")
    def _class_fields(self) -> "Hardware":
        cls_ = self.resource_class
        own = {ResourceClass.SPOT: _SPOT_FIELDS, ResourceClass.SERVERLESS: _SERVERLESS_FIELDS}.get(cls_, ())
        stray = [f for f in _SPOT_FIELDS + _SERVERLESS_FIELDS if f not in own and getattr(self, f) is not None]
        if stray:
            raise ValueError(f"hardware '{self.name}' is class {cls_.value} but sets {stray}, which belong to "
                             "another class; remove them or set the matching 'class'")
        if cls_ is ResourceClass.SPOT:
            missing = [f for f in _SPOT_FIELDS if getattr(self, f) is None]
            if missing:
                raise ValueError(f"hardware '{self.name}' is class spot and needs {missing} "
                                 "(e.g. preemptions_per_hour: 0.05, replacement_s: 120)")
        if cls_ is ResourceClass.SERVERLESS:
            missing = [f for f in ("cold_start_ms", "max_concurrency", "keep_warm_s") if getattr(self, f) is None]
            if self.usd_per_second is None and self.usd_per_request is None:
                missing.append("usd_per_second or usd_per_request")
            if missing:
                raise ValueError(f"hardware '{self.name}' is class serverless and needs {missing} "
                                 "(e.g. usd_per_second: 0.0000583, cold_start_ms: 1500, max_concurrency: 100, "
                                 "keep_warm_s: 600)")
        return self

    @property
    def preemptions_per_ms(self) -> float:
        """Mean preemptions per replica per millisecond (0 unless spot)."""
        return (self.preemptions_per_hour or 0.0) / 3.6e6


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
        by_name = {h.name: h for h in value}
        for h in value:
            if h.profile_as is None:
                continue
            target = by_name.get(h.profile_as)
            if target is None or target.profile_as is not None or target.name == h.name:
                raise ValueError(f"hardware '{h.name}': profile_as '{h.profile_as}' must name another entry of the "
                                 f"catalog that has no profile_as itself (entries: {sorted(by_name)})")
        return value

    def by_name(self) -> dict[str, Hardware]:
        return {h.name: h for h in self.hardware}


class MinCost(_Frozen):
    """Cheapest plan whose pipeline accuracy is at least ``min_accuracy``. Value: USD/h, lower wins."""

    kind: Literal["min_cost"]
    min_accuracy: Number = Field(default=0.0, ge=0, le=1)

    unit: ClassVar[str] = "usd_per_hour"
    maximize: ClassVar[bool] = False

    def value(self, cost_usd_per_hour: float, accuracy: float) -> float:
        return cost_usd_per_hour

    def better(self, a: tuple[float, float], b: tuple[float, float]) -> bool:
        """Whether (cost, accuracy) a beats b: cheaper; at equal cost, more accurate."""
        return (a[0], -a[1]) < (b[0], -b[1])


class MaxAccuracy(_Frozen):
    """Most accurate plan that costs at most ``budget_usd_per_hour`` (ties: the cheapest), with a
    pipeline accuracy of at least ``min_accuracy``: when the budget cannot buy that, there is no plan
    (rather than a plan whose accuracy collapsed). Value: the pipeline accuracy (a fraction), higher wins."""

    kind: Literal["max_accuracy"]
    budget_usd_per_hour: Number = Field(gt=0, le=MAX_BUDGET_USD_PER_HOUR)
    min_accuracy: Number = Field(default=0.0, ge=0, le=1)

    unit: ClassVar[str] = "accuracy"
    maximize: ClassVar[bool] = True

    def value(self, cost_usd_per_hour: float, accuracy: float) -> float:
        return accuracy

    def better(self, a: tuple[float, float], b: tuple[float, float]) -> bool:
        """Whether (cost, accuracy) a beats b: more accurate; at equal accuracy, cheaper."""
        return (-a[1], a[0]) < (-b[1], b[0])


class Weighted(_Frozen):
    """Maximise ``accuracy_weight * accuracy - cost_weight * usd_per_hour``. Value: that score
    (accuracy_weight per unit of accuracy, cost_weight per USD/h), higher wins."""

    kind: Literal["weighted"]
    accuracy_weight: Number = Field(ge=MIN_WEIGHT, le=MAX_WEIGHT)
    cost_weight: Number = Field(ge=MIN_WEIGHT, le=MAX_WEIGHT)

    unit: ClassVar[str] = "weighted_score"
    maximize: ClassVar[bool] = True

    def value(self, cost_usd_per_hour: float, accuracy: float) -> float:
        return self.accuracy_weight * accuracy - self.cost_weight * cost_usd_per_hour

    def better(self, a: tuple[float, float], b: tuple[float, float]) -> bool:
        """Whether (cost, accuracy) a beats b: higher score; ties: cheaper, then more accurate."""
        return (-self.value(*a), a[0], -a[1]) < (-self.value(*b), b[0], -b[1])


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
    fanout: Number = Field(default=1.0, ge=MIN_FANOUT, le=MAX_FANOUT,
                           description="Items this stage receives per pipeline request.")
    hardware: tuple[str, ...] | None = Field(default=None, min_length=1,
                                             description="Overrides the pipeline's hardware list.")
    batch_sizes: tuple[Count, ...] | None = Field(default=None, description="Overrides the pipeline's batch sizes.")
    max_replicas: Count | None = Field(default=None, ge=1, le=MAX_REPLICAS,
                                       description="Overrides the pipeline's max_replicas.")
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
    if any(not 1 <= b <= MAX_BATCH_SIZE for b in value):
        raise ValueError(f"batch sizes must be in [1, {MAX_BATCH_SIZE}], found {list(value)}")
    return tuple(sorted(set(value)))




class TunerSpec(_Frozen):
    """The tuner's settings for this pipeline (``pipeplan tune``); an absent key takes the tuner's default
    (planner.tuner.settings, earned on docs/benchmarks.md's benchmark set), a CLI option overrides either."""

    interval_s: Count | None = Field(default=None, ge=1, le=MAX_INTERVAL_S, description="Seconds between decisions.")
    peak_window_s: Count | None = Field(default=None, ge=1, le=MAX_PEAK_WINDOW_S,
                                        description="Window (s) of an interval's peak rate, which policies size for.")
    margin: Number | None = Field(default=None, ge=0, le=10, description="predictive: plan this share above the "
                                  "forecast peak rate.")
    max_utilization: Number | None = Field(default=None, gt=0, lt=1, description="The utilisation cap of the "
                                           "tuner's plans; absent: the spec's max_utilization if it sets one, else 0.97.")
    switch_hysteresis: Number | None = Field(default=None, ge=0, le=1e9, description="predictive: switch configuration "
                                             "only when the objective gains more than this (the objective's unit).")
    switch_amortize_s: Number | None = Field(default=None, gt=0, le=MAX_INTERVAL_S, description="predictive: spread "
                                             "a switch's cost (old replicas kept while new ones load) over this time.")
    grid_step: Number | None = Field(default=None, gt=0, le=10, description="The plan cache's relative rate step.")
    burst_slots: Count | None = Field(default=None, ge=1, le=100_000, description="burst: serverless instances per "
                                      "stage (at most the entry's max_concurrency).")
    spill_share_of_slo: Number | None = Field(default=None, ge=0, le=100, description="burst: spill a request to "
                                              "serverless when it would wait this share of the SLO for a VM.")


class PipelineSpec(_Frozen):
    schema_version: Literal[1] = Field(description="Spec format version.")
    name: str = Field(min_length=1)
    stages: tuple[StageSpec, ...] = Field(min_length=1, max_length=MAX_STAGES)
    slo_ms: Number = Field(ge=MIN_SLO_MS, le=MAX_SLO_MS, description="End-to-end p99 latency target, milliseconds.")
    arrival_rps: Number = Field(ge=MIN_ARRIVAL_RPS, le=MAX_ARRIVAL_RPS,
                                description="Pipeline requests per second to plan for.")
    arrival_cv: Number = Field(default=1.0, ge=0, le=MAX_ARRIVAL_CV,
                               description="Coefficient of variation of inter-arrival times (1 = Poisson).")
    objective: Objective = Field(default_factory=lambda: MinCost(kind="min_cost"))
    accuracy: AccuracyAggregation = AccuracyAggregation.PRODUCT
    batch_sizes: tuple[Count, ...] = (1, 2, 4, 8, 16, 32)
    max_replicas: Count = Field(default=32, ge=1, le=MAX_REPLICAS)
    hardware: tuple[str, ...] | None = Field(default=None, min_length=1,
                                             description="Allowed hardware names; all if absent (never empty).")
    max_utilization: Number = Field(default=0.9, gt=0, lt=1, description="Utilisation cap per stage.")
    engine_overhead_ms: Number = Field(default=0.0, ge=0, le=MAX_SLO_MS, description="The serving engine's own "
                                       "cost of one stage visit, ms (request handling, serialisation, scheduling), "
                                       "added to each stage's latency; measured by benchmarks/bench_engine_fidelity.py.")
    batch_timeout_quantiles: tuple[Number, ...] = Field(
        default=(0.5, 0.9, 0.99),
        description="Candidate batch timeouts: these quantiles of the time to fill a batch at the planned load.",
    )
    tuner: TunerSpec = Field(default_factory=TunerSpec, description="The tuner's settings (pipeplan tune).")
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
            else:
                raise ValueError("the stages' 'after' links form a cycle")  # refused at validation
        return tuple(order)

    def sinks(self) -> tuple[str, ...]:
        parents = {p for s in self.stages for p in s.after}
        return tuple(s.name for s in self.stages if s.name not in parents)


def find_cycle(spec: PipelineSpec) -> list[str]:
    """A cycle in the 'after' graph as a list of names (first repeated at the end), or []."""
    return find_cycle_in({s.name: s.after for s in spec.stages})
