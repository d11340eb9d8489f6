"""A profiling session: every (model, variant, hardware, batch size) point of a manifest, measured
in rounds, each (point, round) checkpointed as it finishes, with failing variants recorded and the
others going on.

The session decides what to measure and keeps the record (the checkpoint, the failures); a runner
(:mod:`profiler.runner`, in this process or a worker process) builds, evaluates and times the
models; the numbers come from the pure functions of :mod:`profiler.measure`. It does no printing:
progress goes to a callback, the finished table is returned for the caller to write.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from profiler.checkpoint import Checkpoint, CheckpointState
from profiler.errors import ManifestError
from profiler.manifest import HardwareSetting, Manifest, ModelSpec, VariantSpec
from profiler.measure import MethodSettings, combine_rounds
from profiler.runner import RunnerConfig, SweepStopped, UnitJob, VariantRunner, failure_reason
from profiler.schema import ProfileRow, ProfileTable
from profiler.worker import IsolatedRunner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """A variant (on one hardware setting, or '*' for all) that could not be profiled, and why."""

    model: str
    variant: str
    hardware: str
    reason: str
    round_no: int = 0  # the round it failed in, counted from 0


@dataclass(frozen=True)
class Progress:
    """Reported after every (point, round): measured, resumed, skipped or failed."""

    done: int
    total: int
    label: str


@dataclass(frozen=True)
class ProfileResult:
    """What a run produced: the table of every point with at least one round, and what failed."""

    table: ProfileTable | None  # None when nothing at all could be measured
    failures: tuple[Failure, ...]
    measured_rounds: int  # (point, round) measurements made by this run
    resumed_rounds: int  # ... and taken from the checkpoint
    unstable_points: int


def fingerprint(manifest: Manifest, settings: MethodSettings, quick: bool, early_stop: bool = False) -> str:
    """A short hash of what determines the numbers: the manifest, the method, and whether sweeps stop early."""
    payload = json.dumps({"manifest": manifest.model_dump(mode="json"), "method": settings.__dict__,
                          "quick": quick, "early_stop": early_stop}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def machine_description() -> dict[str, str]:
    """Where the numbers were measured: CPU model, logical CPUs, OS, Python, installed runtimes."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    info = {"machine": f"{cpu or 'unknown CPU'}, {os.cpu_count()} logical CPUs, {platform.system()} "
                       f"{platform.release()}, Python {platform.python_version()}"}
    for package in ("onnxruntime", "torch"):  # read from the installed metadata: no import, no worker needed
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return info


def _load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


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
        isolate: bool = False,
    ) -> None:
        self.manifest = manifest
        self.settings = settings
        self.quick = quick
        self.early_stop = manifest.method.early_stop if early_stop is None else early_stop
        self._on_progress = on_progress or (lambda p: None)
        self.runner_config = RunnerConfig(manifest, manifest_dir, cache_dir, settings, quick, seed)
        self.isolate = isolate
        known = [h.name for h in manifest.hardware]
        for name in hardware or ():
            if name not in known:
                raise ManifestError(f"--hardware {name}: not a hardware setting of the manifest (it has {known}).")
        self.hardware = tuple(h for h in manifest.hardware if hardware is None or h.name in hardware)
        self.checkpoint = Checkpoint(checkpoint_path, fingerprint(manifest, settings, quick, self.early_stop))
        self._done = 0
        self._total = 0
        self._runner: VariantRunner | IsolatedRunner | None = None

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
        if self.isolate:
            self._runner = IsolatedRunner(self.runner_config)
        else:
            self._runner = VariantRunner(self.runner_config)
        try:
            for round_no in range(self.settings.rounds):
                for model in self.manifest.models:
                    for variant in model.variants:
                        measured += self._profile_variant(model, variant, round_no, state, failures)
        finally:
            self._runner.close()
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
        # A variant that could not be built or evaluated ('*'), or that failed again in a later round,
        # is not tried in the rounds after; a first-round failure at a large batch size (out of
        # memory, say) does not stop the later rounds of the sizes that worked.
        blocked = {f.hardware for f in failures if (f.model, f.variant) == (model.name, variant.name)
                   and (f.hardware == "*" or f.round_no >= 1)}
        todo: dict[str, list[int]] = {}
        for setting in self.hardware:
            keys = [(model.name, variant.name, setting.name, b) for b in batches]
            wanted = [k for k in keys if round_no == 0 or state.has(k, 0)]  # round 0 decided the sweep
            if blocked & {"*", setting.name}:
                wanted = []
            todo[setting.name] = [k[3] for k in wanted if not state.has(k, round_no)]
            self._tick(f"{label} (resumed or skipped)", len(keys) - len(todo[setting.name]))
        if not any(todo.values()):
            return 0
        try:
            accuracy = state.accuracy.get((model.name, variant.name))
            if accuracy is None:
                accuracy = self._runner.accuracy(model.name, variant.name)
                self.checkpoint.add_accuracy(model.name, variant.name, accuracy)
                state.accuracy[(model.name, variant.name)] = accuracy
        except Exception as exc:  # noqa: BLE001 - whatever breaks one variant must not stop the others
            self._fail(failures, model, variant, "*", round_no, exc, sum(len(t) for t in todo.values()))
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
        keys = [(model.name, variant.name, setting.name, b) for b in self.batch_sizes(model)]
        job = UnitJob(model.name, variant.name, setting.name, round_no, tuple(batches),
                      early_stop=round_no == 0 and self.early_stop,
                      done_throughputs_rps=tuple(state.rounds[k][0].result.throughput_rps for k in keys
                                                 if state.has(k, 0)))
        measured = 0
        try:
            for event in self._runner.profile_unit(job):
                if isinstance(event, SweepStopped):
                    log.info("%s: throughput stopped improving; batch sizes %s not measured", label, event.batch_sizes)
                    self._tick(f"{label} early stop", len(event.batch_sizes))
                    continue  # the unit ends here (read to its end: a worker's reply is complete)
                key = (model.name, variant.name, setting.name, event.batch_size)
                self.checkpoint.add_round(key, round_no, event.record)
                state.add(key, round_no, event.record)
                measured += 1
                self._tick(f"{label} b{event.batch_size}" + ("" if event.record.result.stable else " (unstable)"))
        except Exception as exc:  # noqa: BLE001 - onnxruntime/torch raise untyped errors
            self._fail(failures, model, variant, setting.name, round_no, exc, len(batches) - measured)
        return measured

    def _fail(self, failures: list[Failure], model: ModelSpec, variant: VariantSpec, hardware: str, round_no: int,
              exc: BaseException, skipped: int) -> None:
        """Record a variant that could not be built, evaluated, loaded or run; the others go on."""
        reason = failure_reason(exc)
        label = f"{model.name}/{variant.name}" + ("" if hardware == "*" else f" on {hardware}")
        log.warning("%s failed: %s", label, reason)
        failures.append(Failure(model.name, variant.name, hardware, reason, round_no))
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


def profile_manifest(
    manifest_path: Path,
    checkpoint_path: Path,
    cache_dir: Path,
    quick: bool = False,
    hardware: tuple[str, ...] | None = None,
    fresh: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    early_stop: bool | None = None,
    isolate: bool = False,
) -> ProfileResult:
    """Load a manifest and profile it (the one call behind ``pipeplan profile``).

    ``isolate=True`` runs the models in a worker process started with ``spawn``, which re-imports
    the calling script: a script that calls this must do so under ``if __name__ == "__main__":``.
    """
    from profiler.manifest import load_manifest

    manifest = load_manifest(manifest_path)
    settings = manifest.method.settings(quick)
    if fresh and checkpoint_path.exists():
        checkpoint_path.unlink()
    session = ProfilingSession(manifest, manifest_path.parent, checkpoint_path, cache_dir, settings, quick,
                               hardware, on_progress, early_stop=early_stop, isolate=isolate)
    return session.run()
