"""Everything that touches a model: build or locate a variant, evaluate its accuracy, and measure
one unit of work (one variant on one hardware setting in one round, batch size by batch size).

The session decides what to measure and keeps the record; a runner does the measuring, either in
the session's process or inside a worker process (:mod:`profiler.worker`) so that a runtime crash
ends one variant, not the run. Results stream out one point at a time, so nothing finished is lost.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Union

import numpy as np

from profiler.accuracy import EvalContext, Evaluator, array_evaluator, load_npz
from profiler.backends import LoadedModel
from profiler.checkpoint import RoundRecord
from profiler.errors import ProfilerError, VariantError, first_line
from profiler.manifest import (
    Device,
    Fp16Source,
    HardwareSetting,
    InputSpec,
    Manifest,
    ModelSpec,
    OnnxSource,
    QuantizedSource,
    TorchSource,
    VariantSpec,
    ZooSource,
)
from profiler.measure import MethodSettings, measure_point, sweep_should_stop


@dataclass(frozen=True)
class RunnerConfig:
    """What a runner needs to rebuild any variant of the manifest (picklable, for worker processes)."""

    manifest: Manifest
    manifest_dir: Path
    cache_dir: Path
    settings: MethodSettings
    quick: bool = False
    seed: int = 0


@dataclass(frozen=True)
class UnitJob:
    """One variant on one hardware setting in one round (``round_no`` counts from 0): the batch
    sizes still to measure and, for the first round of an early-stopping sweep, the throughputs
    already measured at smaller batch sizes."""

    model: str
    variant: str
    hardware: str
    round_no: int
    batch_sizes: tuple[int, ...]
    early_stop: bool = False
    done_throughputs_rps: tuple[float, ...] = ()


@dataclass(frozen=True)
class PointDone:
    """One batch size of a unit measured."""

    batch_size: int
    record: RoundRecord


@dataclass(frozen=True)
class SweepStopped:
    """Throughput stopped improving; these batch sizes are not measured."""

    batch_sizes: tuple[int, ...]


UnitEvent = Union[PointDone, SweepStopped]


@dataclass(frozen=True)
class Artifact:
    """A materialised variant: an ONNX file, or a torch module factory (optionally in fp16)."""

    path: Path | None = None
    factory: Callable[[], object] | None = None
    half: bool = False


def example_batch(spec: InputSpec, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """A synthetic batch for timing (values do not change the work these models do)."""
    shape = (batch_size,) + spec.shape
    if spec.dtype.value.startswith("float"):
        return rng.random(shape, dtype=np.float32).astype(spec.dtype.value)
    return np.zeros(shape, dtype=spec.dtype.value)


def _rss_mb() -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / 2**20


def _import_runtime(artifact: Artifact) -> None:
    """Import the artifact's runtime now (its first import costs seconds and hundreds of MB)."""
    if artifact.path is not None:
        import onnxruntime  # noqa: F401
    else:
        import torch  # noqa: F401


class VariantRunner:
    """Builds, evaluates and measures the variants of one manifest, in the current process."""

    def __init__(self, config: RunnerConfig) -> None:
        self.manifest = config.manifest
        self.manifest_dir = config.manifest_dir
        self.cache_dir = config.cache_dir
        self.settings = config.settings
        self.quick = config.quick
        self._rng = np.random.default_rng(config.seed)
        self._artifacts: dict[tuple[str, str], Artifact] = {}

    def close(self) -> None:
        """Nothing to release in-process (a worker-backed runner stops its process here)."""

    def _names(self, model_name: str, variant_name: str) -> tuple[ModelSpec, VariantSpec]:
        model = self.manifest.model(model_name)
        return model, _variant(model, variant_name)

    def accuracy(self, model_name: str, variant_name: str) -> float:
        """The variant's accuracy (see :meth:`_accuracy`)."""
        return self._accuracy(*self._names(model_name, variant_name))

    def profile_unit(self, job: UnitJob) -> Iterator[UnitEvent]:
        """Load the variant fresh, then measure each batch size of the job; one event per point.

        The model is loaded just before the first point it will measure (a sweep already stopped by
        earlier numbers loads nothing), after the variant is built and its runtime imported, so
        ``load_time_s`` and ``memory_mb`` are a replica's load, not one-off set-up.
        """
        model, variant = self._names(job.model, job.variant)
        setting = next(h for h in self.manifest.hardware if h.name == job.hardware)
        input_spec = variant.input or model.input
        loaded: LoadedModel | None = None
        done_tp = list(job.done_throughputs_rps)
        try:
            for position, batch_size in enumerate(job.batch_sizes):
                if job.early_stop and sweep_should_stop(done_tp):
                    yield SweepStopped(tuple(job.batch_sizes[position:]))
                    return
                if loaded is None:
                    _import_runtime(self.artifact(model, variant))
                    gc.collect()
                    rss_before = _rss_mb()
                    begin = time.perf_counter()
                    loaded = self._load(model, variant, setting)
                    loaded.run(example_batch(input_spec, 1, self._rng))
                    load_time_s = round(time.perf_counter() - begin, 4)
                batch = example_batch(input_spec, batch_size, self._rng)
                result = measure_point(lambda: loaded.timed_run(batch), batch_size, self.settings)
                rss_after = _rss_mb()
                memory = None if rss_before is None or rss_after is None else round(max(0.0, rss_after - rss_before), 1)
                done_tp.append(result.throughput_rps)
                yield PointDone(batch_size, RoundRecord(result, load_time_s, memory))
        finally:
            if loaded is not None:
                loaded.close()

    def artifact(self, model: ModelSpec, variant: VariantSpec) -> Artifact:
        """Build or locate a variant (cached for the session)."""
        key = (model.name, variant.name)
        if key not in self._artifacts:
            self._artifacts[key] = self._materialise(model, variant)
        return self._artifacts[key]

    def _materialise(self, model: ModelSpec, variant: VariantSpec) -> Artifact:
        source = variant.source
        if isinstance(source, OnnxSource):
            path = (self.manifest_dir / source.path).resolve()
            if not path.is_file():
                raise VariantError(f"variant '{variant.name}': ONNX file {path} does not exist.")
            return Artifact(path=path)
        if isinstance(source, ZooSource):
            from profiler import zoo

            return Artifact(path=zoo.build(source.zoo, source.model, self.cache_dir))
        if isinstance(source, TorchSource):
            from profiler.backends.torch_backend import build_module

            return Artifact(factory=lambda: build_module(source.factory, source.kwargs))
        base = self.artifact(model, _variant(model, source.base))
        if isinstance(source, Fp16Source):
            if base.path is not None:
                from profiler.variants import to_fp16

                return Artifact(path=to_fp16(base.path, self.cache_dir / "fp16"))
            return Artifact(factory=base.factory, half=True)
        assert isinstance(source, QuantizedSource)
        if base.path is None:
            raise VariantError(f"variant '{variant.name}': int8 quantisation needs an ONNX base; "
                               f"'{source.base}' is a torch module.")
        from profiler.variants import quantize

        calibration = None
        if source.mode.value == "static":
            calibration = self._calibration(model)[: source.calibration_items]
        return Artifact(path=quantize(base.path, source.mode, self.cache_dir / "quantized", calibration,
                                      (variant.input or model.input).name))

    def _load(self, model: ModelSpec, variant: VariantSpec, setting: HardwareSetting) -> LoadedModel:
        artifact = self.artifact(model, variant)
        if artifact.path is not None:
            from profiler.backends.onnxruntime_backend import OrtModel

            return OrtModel(artifact.path, setting, (variant.input or model.input).name)
        from profiler.backends.torch_backend import TorchModel

        return TorchModel(artifact.factory(), setting, half=artifact.half)

    def _calibration(self, model: ModelSpec) -> np.ndarray:
        if model.calibration is None:
            raise VariantError(f"model '{model.name}': static quantisation needs 'calibration' (an .npz or zoo:NAME).")
        if model.calibration.startswith("zoo:"):
            from profiler import zoo

            return zoo.calibration(model.calibration)
        return load_npz(self.manifest_dir / model.calibration).inputs

    def _evaluator(self, model: ModelSpec) -> Evaluator:
        dataset = model.evaluation.dataset
        if dataset.startswith("zoo:"):
            from profiler import zoo

            return zoo.evaluator(dataset)
        return array_evaluator(load_npz(self.manifest_dir / dataset))

    def _accuracy(self, model: ModelSpec, variant: VariantSpec) -> float:
        """The manifest's published accuracy, else the metric measured on the evaluation set."""
        if variant.accuracy is not None:
            return variant.accuracy
        artifact = self.artifact(model, variant)
        evaluate = self._evaluator(model)
        setting = self._evaluation_setting(variant, artifact)
        loaded = self._load(model, variant, setting)
        try:
            value = evaluate(EvalContext(loaded, artifact.path, variant, variant.input or model.input,
                                         model.evaluation.metric, self._eval_items(model), setting.threads))
        finally:
            loaded.close()
        if not 0 < value <= 1:
            raise VariantError(f"variant '{variant.name}': measured accuracy {value} is not in (0, 1]; "
                               "the variant is broken or the evaluation set does not fit it.")
        return float(value)

    def _evaluation_setting(self, variant: VariantSpec, artifact: Artifact) -> HardwareSetting:
        """Where to evaluate: fp16 on a cuda setting when there is one (torch fp16 needs it; ONNX fp16
        also runs on the CPU, as float32 arithmetic on fp16-rounded weights, which may flatter it);
        anything else on the CPU setting with most threads."""
        cuda = [h for h in self.manifest.hardware if h.device is Device.CUDA]
        if isinstance(variant.source, Fp16Source) and cuda:
            return cuda[0]
        if artifact.half:
            raise VariantError(f"variant '{variant.name}' is fp16 and needs a cuda hardware setting to evaluate.")
        cpu = [h for h in self.manifest.hardware if h.device is Device.CPU]
        return max(cpu, key=lambda h: h.threads) if cpu else self.manifest.hardware[0]

    def _eval_items(self, model: ModelSpec) -> int | None:
        evaluation = model.evaluation
        return (evaluation.quick_max_items or evaluation.max_items) if self.quick else evaluation.max_items


def _variant(model: ModelSpec, name: str) -> VariantSpec:
    return next(v for v in model.variants if v.name == name)


def failure_reason(exc: BaseException) -> str:
    """One line for the failure record: our own errors as they are, others with their type."""
    if isinstance(exc, ProfilerError) and str(exc).strip():
        return str(exc).strip().splitlines()[0]
    return first_line(exc)


