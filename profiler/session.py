"""A profiling session: every (model, variant, hardware, batch size) point of a manifest, measured
once, checkpointed as it finishes, with failing variants recorded and the others going on.

The session holds state over time (the checkpoint, built variants), so it is a class; measurement
itself is the pure loop in :mod:`profiler.measure`. It does no printing: progress goes to a
callback, the finished table is returned for the caller to write.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from profiler.accuracy import EvalContext, Evaluator, array_evaluator, load_npz
from profiler.backends import LoadedModel
from profiler.checkpoint import Checkpoint, CheckpointState, RoundRecord
from profiler.errors import ManifestError, ProfilerError, VariantError
from profiler.manifest import (
    DeviceKind,
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
from profiler.measure import MethodSettings, combine_rounds, measure_point, sweep_should_stop
from profiler.schema import ProfileRow, ProfileTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """A variant (on one hardware setting, or '*' for all) that could not be profiled, and why."""

    model: str
    variant: str
    hardware: str
    reason: str


@dataclass(frozen=True)
class Progress:
    """Reported after every point (measured, resumed, skipped or failed)."""

    done: int
    total: int
    label: str


@dataclass(frozen=True)
class ProfileResult:
    table: ProfileTable | None  # None when nothing at all could be measured
    failures: tuple[Failure, ...]
    measured_rounds: int  # (point, round) measurements made by this run
    resumed_rounds: int  # ... and taken from the checkpoint
    unstable_points: int


@dataclass(frozen=True)
class Artifact:
    """A materialised variant: an ONNX file, or a torch module factory (optionally in fp16)."""

    path: Path | None = None
    factory: Callable[[], object] | None = None
    half: bool = False


def fingerprint(manifest: Manifest, settings: MethodSettings, quick: bool) -> str:
    """A short hash of what determines the numbers: the manifest and the method."""
    payload = json.dumps({"manifest": manifest.model_dump(mode="json"), "method": settings.__dict__,
                          "quick": quick}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def example_batch(spec: InputSpec, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """A synthetic batch for timing (values do not change the work these models do)."""
    shape = (batch_size,) + spec.shape
    if spec.dtype.value.startswith("float"):
        return rng.random(shape, dtype=np.float32).astype(spec.dtype.value)
    return np.zeros(shape, dtype=spec.dtype.value)


def machine_description() -> dict[str, str]:
    """Where the numbers were measured: CPU model, logical CPUs, OS, Python, runtimes."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    info = {"machine": f"{cpu or 'unknown CPU'}, {os.cpu_count()} logical CPUs, {platform.system()} "
                       f"{platform.release()}, Python {platform.python_version()}"}
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    import sys

    if "torch" in sys.modules:
        info["torch"] = sys.modules["torch"].__version__
    return info


def _load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def _rss_mb() -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / 2**20


class ProfilingSession:
    """Profile every point of a manifest; resumable through a checkpoint file."""

    def __init__(
        self,
        manifest: Manifest,
        manifest_dir: Path,
        checkpoint_path: Path,
        cache_dir: Path,
        settings: MethodSettings,
        quick: bool = False,
        hardware: tuple[str, ...] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        seed: int = 0,
        early_stop: bool | None = None,
    ) -> None:
        self.manifest = manifest
        self.manifest_dir = manifest_dir
        self.cache_dir = cache_dir
        self.settings = settings
        self.quick = quick
        self.early_stop = manifest.method.early_stop if early_stop is None else early_stop
        self._on_progress = on_progress or (lambda p: None)
        self._rng = np.random.default_rng(seed)
        known = [h.name for h in manifest.hardware]
        for name in hardware or ():
            if name not in known:
                raise ManifestError(f"--hardware {name}: not a hardware setting of the manifest (it has {known}).")
        self.hardware = tuple(h for h in manifest.hardware if hardware is None or h.name in hardware)
        self.checkpoint = Checkpoint(checkpoint_path, fingerprint(manifest, settings, quick))
        self._artifacts: dict[tuple[str, str], Artifact] = {}

    # ---- the plan of work -------------------------------------------------------------------

    def batch_sizes(self, model: ModelSpec) -> tuple[int, ...]:
        sizes = model.batch_sizes or self.manifest.batch_sizes
        if self.quick and self.manifest.quick_batch_sizes:
            sizes = tuple(b for b in sizes if b in self.manifest.quick_batch_sizes) or sizes[:1]
        return sizes

    def points(self) -> list[tuple[str, str, str, int]]:
        return [(m.name, v.name, h.name, b) for m in self.manifest.models for v in m.variants
                for h in self.hardware for b in self.batch_sizes(m)]

    # ---- running ----------------------------------------------------------------------------

    def run(self) -> ProfileResult:
        """Measure every (point, round) not already in the checkpoint; return the full table.

        Round r of every point is measured before round r + 1 of any, so a point's rounds are
        spread over the whole run, each with a freshly loaded model.
        """
        state = self.checkpoint.load()
        points = self.points()
        self._done = 0
        self._total = len(points) * self.settings.rounds
        resumed = sum(len(state.rounds.get(key, {})) for key in points)
        load_start = _load_average()
        started = dt.datetime.now(dt.timezone.utc)
        failures: list[Failure] = []
        measured = 0
        for round_no in range(self.settings.rounds):
            for model in self.manifest.models:
                for variant in model.variants:
                    measured += self._profile_variant(model, variant, round_no, state, failures)
        rows = tuple(self._combined_row(key, state) for key in points if state.rounds.get(key))
        unstable = sum(1 for r in rows if r.stable is False)
        metadata = self._metadata(started, load_start, failures, unstable, len(rows))
        table = ProfileTable(rows=rows, metadata=metadata) if rows else None
        return ProfileResult(table, tuple(failures), measured, resumed, unstable)

    def _tick(self, label: str, count: int = 1) -> None:
        if count:
            self._done += count
            self._on_progress(Progress(self._done, self._total, label))

    def _profile_variant(self, model: ModelSpec, variant: VariantSpec, round_no: int, state: CheckpointState,
                         failures: list[Failure]) -> int:
        label = f"{model.name}/{variant.name}"
        batches = self.batch_sizes(model)
        failed_here = {f.hardware for f in failures if (f.model, f.variant) == (model.name, variant.name)}
        todo: dict[str, list[int]] = {}
        for setting in self.hardware:
            keys = [(model.name, variant.name, setting.name, b) for b in batches]
            wanted = [k for k in keys if round_no == 0 or state.has(k, 0)]  # round 0 decided the sweep
            if failed_here & {"*", setting.name}:
                wanted = []
            todo[setting.name] = [k[3] for k in wanted if not state.has(k, round_no)]
            self._tick(f"{label} (resumed or skipped)", len(keys) - len(todo[setting.name]))
        if not any(todo.values()):
            return 0
        try:
            accuracy = state.accuracy.get((model.name, variant.name))
            if accuracy is None:
                accuracy = self._accuracy(model, variant)
                self.checkpoint.add_accuracy(model.name, variant.name, accuracy)
                state.accuracy[(model.name, variant.name)] = accuracy
        except Exception as exc:  # noqa: BLE001 - whatever breaks one variant must not stop the others
            self._fail(failures, model, variant, "*", exc, sum(len(t) for t in todo.values()))
            return 0
        measured = 0
        for setting in self.hardware:
            if todo[setting.name]:
                measured += self._profile_on(model, variant, setting, todo[setting.name], round_no, state, failures)
        return measured

    def _profile_on(self, model: ModelSpec, variant: VariantSpec, setting: HardwareSetting, batches: list[int],
                    round_no: int, state: CheckpointState, failures: list[Failure]) -> int:
        label = f"{model.name}/{variant.name} on {setting.name}"
        if self.settings.rounds > 1:
            label += f", round {round_no + 1}/{self.settings.rounds}"
        input_spec = variant.input or model.input
        measured = 0
        loaded: LoadedModel | None = None
        try:
            gc.collect()
            rss_before = _rss_mb()
            begin = time.perf_counter()
            loaded = self._load(model, variant, setting)
            loaded.run(example_batch(input_spec, 1, self._rng))
            load_time_s = time.perf_counter() - begin
            keys = [(model.name, variant.name, setting.name, b) for b in self.batch_sizes(model)]
            done_tp = [state.rounds[k][0].result.throughput_rps for k in keys if state.has(k, 0)]
            for position, batch_size in enumerate(batches):
                if round_no == 0 and self.early_stop and sweep_should_stop(done_tp):
                    log.info("%s: throughput stopped improving; batch sizes %s not measured", label, batches[position:])
                    self._tick(f"{label} early stop", len(batches) - position)
                    break
                batch = example_batch(input_spec, batch_size, self._rng)
                result = measure_point(lambda: loaded.timed_run(batch), batch_size, self.settings)
                rss_after = _rss_mb()
                memory = None if rss_before is None or rss_after is None else round(max(0.0, rss_after - rss_before), 1)
                record = RoundRecord(result, round(load_time_s, 4), memory)
                key = (model.name, variant.name, setting.name, batch_size)
                self.checkpoint.add_round(key, round_no, record)
                state.add(key, round_no, record)
                done_tp.append(result.throughput_rps)
                measured += 1
                self._tick(f"{label} b{batch_size}" + ("" if result.stable else " (unstable)"))
        except Exception as exc:  # noqa: BLE001 - onnxruntime/torch raise untyped errors
            self._fail(failures, model, variant, setting.name, exc, len(batches) - measured)
        finally:
            if loaded is not None:
                loaded.close()
        return measured

    def _fail(self, failures: list[Failure], model: ModelSpec, variant: VariantSpec, hardware: str,
              exc: BaseException, skipped: int) -> None:
        """Record a variant that could not be built, evaluated, loaded or run; the others go on."""
        reason = _reason(exc)
        label = f"{model.name}/{variant.name}" + ("" if hardware == "*" else f" on {hardware}")
        log.warning("%s failed: %s", label, reason)
        failures.append(Failure(model.name, variant.name, hardware, reason))
        self.checkpoint.add_failure(model.name, variant.name, hardware, reason)
        self._tick(f"{label} FAILED", skipped)

    def _combined_row(self, key: tuple[str, str, str, int], state: CheckpointState) -> ProfileRow:
        """A point's row from its rounds: figures per combine_rounds, median load time, largest memory growth."""
        records = [state.rounds[key][r] for r in sorted(state.rounds[key])]
        result = combine_rounds([r.result for r in records], self.settings)
        memories = [r.memory_mb for r in records if r.memory_mb is not None]
        model, variant, hardware, _ = key
        return ProfileRow(
            model=model, variant=variant, hardware=hardware, batch_size=result.batch_size,
            latency_p50_ms=result.latency_p50_ms, latency_p99_ms=result.latency_p99_ms,
            throughput_rps=result.throughput_rps, accuracy=state.accuracy[(model, variant)],
            latency_p95_ms=result.latency_p95_ms, latency_mean_ms=result.latency_mean_ms,
            memory_mb=max(memories) if memories else None,
            load_time_s=float(np.median([r.load_time_s for r in records])), samples=result.samples,
            stable=result.stable,
            latency_p50_spread_frac=round(result.p50_spread_frac, 4) if result.rounds > 1 else None,
        )

    # ---- variants ---------------------------------------------------------------------------

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
        cuda = [h for h in self.manifest.hardware if h.device is DeviceKind.CUDA]
        if isinstance(variant.source, Fp16Source) and cuda:
            return cuda[0]
        if artifact.half:
            raise VariantError(f"variant '{variant.name}' is fp16 and needs a cuda hardware setting to evaluate.")
        cpu = [h for h in self.manifest.hardware if h.device is DeviceKind.CPU]
        return max(cpu, key=lambda h: h.threads) if cpu else self.manifest.hardware[0]

    def _eval_items(self, model: ModelSpec) -> int | None:
        evaluation = model.evaluation
        return (evaluation.quick_max_items or evaluation.max_items) if self.quick else evaluation.max_items

    def _metadata(self, started, load_start: str, failures: list[Failure], unstable: int, rows: int) -> dict[str, str]:
        meta = {
            **machine_description(),
            "manifest": self.manifest.name,
            "method": ("quick" if self.quick else "full") + ": " + ", ".join(
                f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.settings.__dict__.items()),
            "measured_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "load_average_at_start": load_start,
            "load_average_at_end": _load_average(),
            "unstable_rows": f"{unstable} of {rows}",
        }
        for f in failures:
            meta[f"failed.{f.model}.{f.variant}.{f.hardware}"] = f.reason.replace("\n", " ")
        return meta


def _variant(model: ModelSpec, name: str) -> VariantSpec:
    return next(v for v in model.variants if v.name == name)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, ProfilerError) else f"{type(exc).__name__}: {text}"


def profile_manifest(
    manifest_path: Path,
    checkpoint_path: Path,
    cache_dir: Path,
    quick: bool = False,
    hardware: tuple[str, ...] | None = None,
    fresh: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    early_stop: bool | None = None,
) -> ProfileResult:
    """Load a manifest and profile it (the one call behind ``pipeplan profile``)."""
    from profiler.manifest import load_manifest

    manifest = load_manifest(manifest_path)
    settings = manifest.method.settings(quick)
    if fresh and checkpoint_path.exists():
        checkpoint_path.unlink()
    session = ProfilingSession(manifest, manifest_path.parent, checkpoint_path, cache_dir, settings, quick,
                               hardware, on_progress, early_stop=early_stop)
    return session.run()
