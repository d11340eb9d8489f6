"""The model manifest: which models and variants to profile, on which hardware settings, how.

A validated, frozen file model (unknown keys fail with the field's name; ``schema_version``).
Documented in docs/formats.md, section "Model manifest". Paths are relative to the manifest file.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from profiler.errors import ManifestError
from profiler.measure import FULL_METHOD, QUICK_METHOD, MethodSettings
from pipeplan_files.read import FileModel, StrictYamlLoader, format_validation_error



_Frozen = FileModel


class DType(str, Enum):
    FLOAT32 = "float32"
    FLOAT16 = "float16"
    INT64 = "int64"
    UINT8 = "uint8"


class Metric(str, Enum):
    CLASSIFICATION_ACCURACY = "classification_accuracy"
    CHARACTER_ACCURACY = "character_accuracy"


class Device(str, Enum):
    """Where a hardware setting runs a variant: onnxruntime's / torch's execution device (the
    planner's hardware kinds, cpu and gpu, are a catalog's business: planner.spec.DeviceKind)."""

    CPU = "cpu"
    CUDA = "cuda"


class QuantMode(str, Enum):
    DYNAMIC = "dynamic"
    STATIC = "static"


class InputSpec(_Frozen):
    """The model's input: one item's shape (the batch dimension is added in front) and dtype."""

    name: str | None = Field(default=None, description="Input name; the model's first input if absent.")
    shape: tuple[int, ...] = Field(min_length=1, description="Shape of ONE item, without the batch dimension.")
    dtype: DType = DType.FLOAT32

    @field_validator("shape")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(d < 1 for d in value):
            raise ValueError(f"every dimension must be >= 1; found {list(value)}")
        return value


class OnnxSource(_Frozen):
    kind: Literal["onnx"]
    path: str = Field(min_length=1, description="ONNX file, relative to the manifest.")


class TorchSource(_Frozen):
    kind: Literal["torch"]
    factory: str = Field(description="'package.module:function' returning a torch.nn.Module.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for the factory.")

    @field_validator("factory")
    @classmethod
    def _has_colon(cls, value: str) -> str:
        module, sep, name = value.partition(":")
        if not sep or not module or not name:
            raise ValueError(f"expected 'package.module:function', found {value!r}")
        return value


class ZooSource(_Frozen):
    kind: Literal["zoo"]
    zoo: str = Field(description="Built-in family: 'digits' or 'ocr'.")
    model: str = Field(description="Member of the family, e.g. 'cnn16' or 'det'.")


class QuantizedSource(_Frozen):
    """onnxruntime int8 quantisation of another (ONNX) variant of the same model."""

    kind: Literal["quantized"]
    base: str = Field(description="Name of the variant to quantise.")
    mode: QuantMode = Field(description="dynamic (weights int8, activations at run time) or static (QDQ, calibrated).")
    calibration_items: int = Field(default=200, ge=1, description="Items of the calibration set used (static).")


class Fp16Source(_Frozen):
    """Half precision of another variant of the same model, torch or ONNX.

    A torch base runs as ``module.half()`` on CUDA only. An ONNX base is converted to float16 by
    onnxruntime's converter (inputs and outputs stay float32) and runs on CUDA or CPU; onnxruntime's
    CPU provider has no fp16 Conv/Gemm/MatMul kernels on x86 and casts back to float32 around them,
    so on CPU it is no faster than float32 and its accuracy mostly reflects the rounded weights.
    """

    kind: Literal["fp16"]
    base: str = Field(description="Name of the torch or ONNX variant to convert.")


Source = Annotated[Union[OnnxSource, TorchSource, ZooSource, QuantizedSource, Fp16Source],
                   Field(discriminator="kind")]


class EvaluationSpec(_Frozen):
    """Where accuracy comes from: a data set and a metric."""

    dataset: str = Field(description="An .npz file (arrays 'inputs', 'labels') or a built-in set 'zoo:NAME'.")
    metric: Metric = Metric.CLASSIFICATION_ACCURACY
    max_items: int | None = Field(default=None, ge=1, description="Evaluate on at most this many items.")
    quick_max_items: int | None = Field(default=None, ge=1, description="Items under --quick; max_items if absent.")


class VariantSpec(_Frozen):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    source: Source
    input: InputSpec | None = Field(default=None, description="Overrides the model's input (e.g. a resolution).")
    accuracy: float | None = Field(default=None, gt=0, le=1,
                                   description="Published accuracy; used instead of evaluating.")
    options: dict[str, Any] = Field(default_factory=dict, description="Passed to the evaluator (e.g. a resolution).")


class ModelSpec(_Frozen):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    input: InputSpec
    evaluation: EvaluationSpec | None = None
    calibration: str | None = Field(default=None, description="Calibration set for static quantisation (.npz or zoo:NAME).")
    batch_sizes: tuple[int, ...] | None = Field(default=None, description="Overrides the manifest's batch sizes.")
    variants: tuple[VariantSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _variants(self) -> "ModelSpec":
        names = [v.name for v in self.variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"variant names must be unique within model '{self.name}'; repeated: {dupes}")
        for v in self.variants:
            if isinstance(v.source, (QuantizedSource, Fp16Source)):
                if v.source.base not in names or v.source.base == v.name:
                    raise ValueError(f"variant '{v.name}': base '{v.source.base}' is not another variant of "
                                     f"model '{self.name}' (variants: {names})")
            if v.accuracy is None and self.evaluation is None:
                raise ValueError(f"variant '{v.name}': no accuracy and model '{self.name}' has no evaluation; "
                                 "add 'evaluation' to the model or 'accuracy' to the variant")
        return self


class HardwareSetting(_Frozen):
    """A hardware setting to measure on; ``name`` must be an entry of the planner's hardware catalog."""

    name: str = Field(min_length=1)
    device: Device = Device.CPU
    threads: int = Field(default=1, ge=1, description="intra-op threads (onnxruntime) / torch threads.")


class MethodSpec(_Frozen):
    """Overrides of the measurement method (see profiler/measure.py for the meaning of each)."""

    warmup_runs: int | None = Field(default=None, ge=0)
    warmup_ms: float | None = Field(default=None, ge=0)
    window_ms: float | None = Field(default=None, gt=0)
    min_window_requests: int | None = Field(default=None, ge=1)
    max_windows: int | None = Field(default=None, ge=3)
    tolerance: float | None = Field(default=None, gt=0)
    max_point_s: float | None = Field(default=None, gt=0, description="Time budget of one round of one point.")
    rounds: int | None = Field(default=None, ge=1, description="Rounds per point, each with a fresh session.")
    early_stop: bool = Field(default=False, description="Stop a batch sweep when throughput gains < 5% over 4 steps.")

    def settings(self, quick: bool) -> MethodSettings:
        """The method for this run: the full or quick defaults with this spec's overrides."""
        base = QUICK_METHOD if quick else FULL_METHOD
        changes = {k: v for k, v in self.model_dump().items() if v is not None and k != "early_stop"}
        if quick:  # --quick keeps its short windows whatever the manifest says
            changes = {k: v for k, v in changes.items() if k in ("tolerance",)}
        return MethodSettings(**{**base.__dict__, **changes})


class Manifest(_Frozen):
    schema_version: Literal[1] = Field(description="Manifest format version.")
    name: str = Field(min_length=1)
    hardware: tuple[HardwareSetting, ...] = Field(min_length=1)
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    quick_batch_sizes: tuple[int, ...] | None = Field(default=None, description="Batch sizes under --quick; all if absent.")
    method: MethodSpec = Field(default_factory=MethodSpec)
    models: tuple[ModelSpec, ...] = Field(min_length=1)

    @field_validator("batch_sizes", "quick_batch_sizes")
    @classmethod
    def _batches(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is None:
            return None
        if not value or any(b < 1 for b in value):
            raise ValueError(f"batch sizes must be a non-empty list of numbers >= 1; found {list(value)}")
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _unique(self) -> "Manifest":
        for what, names in (("model", [m.name for m in self.models]), ("hardware", [h.name for h in self.hardware])):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{what} names must be unique; repeated: {dupes}")
        return self

    def model(self, name: str) -> ModelSpec:
        return next(m for m in self.models if m.name == name)


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest YAML file; errors name the file and field."""
    path = Path(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8").lstrip("\ufeff"), Loader=StrictYamlLoader)  # noqa: S506 (a SafeLoader)
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such manifest file; check the path.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read the manifest ({exc}).") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: not valid YAML ({exc}); fix the syntax.") from None
    return parse_manifest(data, str(path))


def parse_manifest(data: Any, source: str = "the manifest") -> Manifest:
    """Validate already-parsed YAML/JSON data into a Manifest."""
    if not isinstance(data, dict):
        raise ManifestError(f"{source}: expected a mapping at the top level, found {type(data).__name__}; "
                            "see docs/formats.md, 'Model manifest'.")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(format_validation_error(source, exc, Manifest, data)) from None
