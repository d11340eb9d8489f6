"""A profiling session on tiny ONNX models: accuracy, failing variants, resume, quantised variants."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("onnxruntime", reason="the onnxruntime backend needs onnxruntime (the 'profile' extra)")
pytest.importorskip("onnx", reason="building test models needs onnx (the 'profile' extra)")

from profiler.checkpoint import Checkpoint, RoundRecord  # noqa: E402
from profiler.errors import CheckpointError  # noqa: E402
from profiler.manifest import load_manifest  # noqa: E402
from profiler.measure import TAIL_LEVELS, PointResult  # noqa: E402
from profiler.session import ProfilingSession, profile_manifest  # noqa: E402
from tests.fixtures import tiny_setup, write_manifest  # noqa: E402

ONNX = {"kind": "onnx", "path": "tiny.onnx"}


def session_for(path, checkpoint, **kwargs) -> ProfilingSession:
    manifest = load_manifest(path)
    return ProfilingSession(manifest, path.parent, checkpoint, path.parent / "cache",
                            manifest.method.settings(False), **kwargs)


def test_measures_every_point_with_evaluated_accuracy(tmp_path):
    tiny_setup(tmp_path)
    manifest = write_manifest(tmp_path, [{"name": "fp32", "source": ONNX},
                                         {"name": "published", "source": ONNX, "accuracy": 0.5}])
    result = profile_manifest(manifest, tmp_path / "ck.jsonl", tmp_path / "cache")
    assert result.failures == ()
    rows = {(r.variant, r.batch_size): r for r in result.table.rows}
    assert set(rows) == {("fp32", 1), ("fp32", 2), ("published", 1), ("published", 2)}
    assert rows[("fp32", 1)].accuracy == pytest.approx(0.75)  # 30 of 40 labels agree
    assert rows[("published", 2)].accuracy == 0.5  # taken from the manifest, not evaluated
    for row in rows.values():
        assert row.hardware == "cpu-1"
        assert 0 < row.latency_p50_ms <= row.latency_p95_ms <= row.latency_p99_ms
        assert row.throughput_rps > 0 and row.samples >= 15 and row.load_time_s > 0
        assert isinstance(row.stable, bool)
        assert row.stable is (row.samples >= 459) or row.stable is False
    meta = result.table.metadata
    assert "logical CPUs" in meta["machine"] and meta["manifest"] == "tiny"


def test_failing_variant_is_recorded_and_the_others_go_on(tmp_path):
    tiny_setup(tmp_path)
    manifest = write_manifest(tmp_path, [
        {"name": "broken", "source": {"kind": "onnx", "path": "broken.onnx"}},
        {"name": "missing", "source": {"kind": "onnx", "path": "nowhere.onnx"}},
        {"name": "good", "source": ONNX},
    ])
    result = profile_manifest(manifest, tmp_path / "ck.jsonl", tmp_path / "cache")
    assert {r.variant for r in result.table.rows} == {"good"}
    failed = {f.variant: f.reason for f in result.failures}
    assert set(failed) == {"broken", "missing"}
    assert "cannot load" in failed["broken"]
    assert "does not exist" in failed["missing"]
    assert any(k.startswith("failed.tiny.broken") for k in result.table.metadata)
    lines = [json.loads(line) for line in (tmp_path / "ck.jsonl").read_text().splitlines()]
    assert sum(1 for line in lines if line["type"] == "failed") == 2


class Interrupt(Exception):
    pass


def test_interrupted_run_resumes_without_losing_finished_points(tmp_path):
    tiny_setup(tmp_path)
    manifest = write_manifest(tmp_path, [{"name": "a", "source": ONNX}, {"name": "b", "source": ONNX}],
                              batch_sizes=(1, 2, 4))
    checkpoint = tmp_path / "ck.jsonl"
    seen = []

    def stop_after_four(progress):
        seen.append(progress.label)
        if progress.done == 4:
            raise KeyboardInterrupt  # as Ctrl-C would, between two points

    with pytest.raises(KeyboardInterrupt):
        session_for(manifest, checkpoint, on_progress=stop_after_four).run()
    finished = [json.loads(line) for line in checkpoint.read_text().splitlines() if '"round"' in line]
    assert len(finished) == 4  # (point, round) measurements, each saved as it finished
    # A crash mid-write leaves a torn last line; it is dropped and that point is measured again.
    with open(checkpoint, "a", encoding="utf-8") as handle:
        handle.write('{"type": "round", "key": ["ti')
    result = session_for(manifest, checkpoint).run()
    assert result.resumed_rounds == 4
    assert result.measured_rounds == 6 * 3 - 4  # 2 variants x 3 batch sizes x 3 rounds in all
    assert len(result.table.rows) == 6
    again = session_for(manifest, checkpoint).run()  # nothing left to do
    assert again.measured_rounds == 0 and again.resumed_rounds == 18
    assert again.table.rows == result.table.rows


def test_checkpoint_of_another_method_is_refused(tmp_path):
    tiny_setup(tmp_path)
    manifest = write_manifest(tmp_path, [{"name": "a", "source": ONNX}])
    checkpoint = tmp_path / "ck.jsonl"
    session_for(manifest, checkpoint).run()
    quick = load_manifest(manifest)
    other = ProfilingSession(quick, tmp_path, checkpoint, tmp_path / "cache", quick.method.settings(True), quick=True)
    with pytest.raises(CheckpointError, match="different manifest or method"):
        other.run()
    result = profile_manifest(manifest, checkpoint, tmp_path / "cache", quick=True, fresh=True)
    assert len(result.table.rows) == 2


def test_checkpoint_round_trip(tmp_path):
    checkpoint = Checkpoint(tmp_path / "c.jsonl", "abc")
    assert checkpoint.load().rounds == {}
    result = PointResult(2, 1.0, 1.5, 2.0, 1.1, 100.0, 500, 3, True, "", tail_ms=(2.0,) * len(TAIL_LEVELS))
    record = RoundRecord(result, 0.25, None)
    checkpoint.add_round(("m", "v", "cpu-1", 2), 1, record)
    checkpoint.add_accuracy("m", "v", 0.9)
    state = Checkpoint(tmp_path / "c.jsonl", "abc").load()
    assert state.rounds[("m", "v", "cpu-1", 2)] == {1: record} and state.accuracy[("m", "v")] == 0.9


def test_quantised_variants_are_generated_evaluated_and_timed(tmp_path):
    pytest.importorskip("onnxruntime.quantization", reason="needs onnxruntime's quantisation tools")
    tiny_setup(tmp_path)
    manifest = write_manifest(tmp_path, [
        {"name": "fp32", "source": ONNX},
        {"name": "int8d", "source": {"kind": "quantized", "base": "fp32", "mode": "dynamic"}},
        {"name": "int8s", "source": {"kind": "quantized", "base": "fp32", "mode": "static", "calibration_items": 20}},
    ], batch_sizes=(1,))
    result = profile_manifest(manifest, tmp_path / "ck.jsonl", tmp_path / "cache")
    assert result.failures == ()
    accuracy = {r.variant: r.accuracy for r in result.table.rows}
    assert set(accuracy) == {"fp32", "int8d", "int8s"}
    assert accuracy["fp32"] == pytest.approx(0.75)
    # int8 may flip a few borderline items but stays close on this easy model
    assert abs(accuracy["int8d"] - 0.75) <= 0.15 and abs(accuracy["int8s"] - 0.75) <= 0.15
    assert len(list((tmp_path / "cache" / "quantized").glob("*.onnx"))) == 2


def test_hardware_filter_and_early_stop(tmp_path):
    tiny_setup(tmp_path)
    manifest = write_manifest(
        tmp_path, [{"name": "a", "source": ONNX}], batch_sizes=(1, 2, 4, 8, 16, 32, 64),
        hardware=[{"name": "cpu-1", "threads": 1}, {"name": "cpu-2", "threads": 2}],
        extra={"method": {"warmup_runs": 1, "warmup_ms": 0, "window_ms": 5, "min_window_requests": 5,
                          "max_windows": 3, "max_point_s": 0.3, "early_stop": True}})
    result = session_for(manifest, tmp_path / "ck.jsonl", hardware=("cpu-2",)).run()
    assert {r.hardware for r in result.table.rows} == {"cpu-2"}
    assert len(result.table.rows) >= 4  # the stop rule needs 4 steps before it can fire


def test_early_stop_skips_flat_batch_sizes(tmp_path, monkeypatch):
    import profiler.runner as runner_module

    tiny_setup(tmp_path)
    manifest = write_manifest(tmp_path, [{"name": "a", "source": ONNX}], batch_sizes=(1, 2, 4, 8, 16, 32))
    monkeypatch.setattr(runner_module, "sweep_should_stop", lambda throughputs: len(throughputs) >= 4)
    result = session_for(manifest, tmp_path / "ck.jsonl", early_stop=True).run()
    assert sorted(r.batch_size for r in result.table.rows) == [1, 2, 4, 8]
    unchanged = session_for(manifest, tmp_path / "ck2.jsonl").run()
    assert len(unchanged.table.rows) == 6  # not asked for: the whole sweep


def test_fp16_variant_of_an_onnx_base_is_generated_evaluated_and_timed(tmp_path):
    tiny_setup(tmp_path)
    manifest = write_manifest(tmp_path, [
        {"name": "fp32", "source": ONNX},
        {"name": "fp16", "source": {"kind": "fp16", "base": "fp32"}},
    ], batch_sizes=(1,))
    result = profile_manifest(manifest, tmp_path / "ck.jsonl", tmp_path / "cache")
    assert result.failures == ()
    rows = {r.variant: r for r in result.table.rows}
    assert set(rows) == {"fp32", "fp16"}
    # Evaluated on the CPU (no cuda setting): fp16-rounded weights may flip a borderline item or two.
    assert abs(rows["fp16"].accuracy - rows["fp32"].accuracy) <= 0.05
    assert len(list((tmp_path / "cache" / "fp16").glob("*.onnx"))) == 1


def test_isolated_run_measures_the_same_points_in_a_worker_process(tmp_path):
    tiny_setup(tmp_path)
    manifest = write_manifest(tmp_path, [{"name": "a", "source": ONNX}], batch_sizes=(1, 2))
    inside = profile_manifest(manifest, tmp_path / "in.jsonl", tmp_path / "cache")
    isolated = profile_manifest(manifest, tmp_path / "iso.jsonl", tmp_path / "cache", isolate=True)
    assert isolated.failures == ()
    assert [(r.key, r.accuracy) for r in isolated.table.rows] == [(r.key, r.accuracy) for r in inside.table.rows]


def _cold_torch_import_s() -> float:
    """Wall time of a cold ``import torch`` in a fresh interpreter, as the worker will pay it."""
    import subprocess
    import sys
    import time

    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True, timeout=300)
    return time.perf_counter() - start


@pytest.mark.parametrize("how", ["segfault", "hang"])
def test_a_variant_that_crashes_or_hangs_its_runtime_fails_alone_in_isolation(tmp_path, monkeypatch, how):
    pytest.importorskip("torch", reason="the misbehaving variant is a torch module")
    import profiler.worker as worker_module

    # The answer timeout must cover building the torch module (a cold torch import, seconds on a
    # loaded 2-core machine) or a slow import would pass for the hang; a crash needs no timeout.
    timeout_s = float(round(3.0 + 3.0 * _cold_torch_import_s()))
    if how == "hang":
        monkeypatch.setattr(worker_module, "ANSWER_TIMEOUT_S", timeout_s)
        says = f"no answer within {timeout_s:g} s while measuring tiny/bad on cpu-1"
    else:
        says = "died while measuring tiny/bad on cpu-1 (killed by SIGSEGV)"
    tiny_setup(tmp_path)
    bad = {"kind": "torch", "factory": "tests.fixtures:misbehaving_torch_module", "kwargs": {"how": how}}
    manifest = write_manifest(tmp_path, [{"name": "bad", "source": bad, "accuracy": 0.5},  # published: not evaluated
                                         {"name": "good", "source": ONNX}], batch_sizes=(1,))
    result = profile_manifest(manifest, tmp_path / "ck.jsonl", tmp_path / "cache", isolate=True)
    assert {r.variant for r in result.table.rows} == {"good"}  # a new worker carried on
    assert [(f.variant, f.hardware) for f in result.failures] == [("bad", "cpu-1")]
    assert says in result.failures[0].reason


def test_a_caller_that_stops_reading_mid_unit_does_not_get_stale_replies(tmp_path):
    tiny_setup(tmp_path)
    manifest = write_manifest(tmp_path, [{"name": "a", "source": ONNX}, {"name": "b", "source": ONNX}],
                              batch_sizes=(1, 2, 4),
                              hardware=[{"name": "cpu-1", "threads": 1}, {"name": "cpu-2", "threads": 2}])
    raised = []

    def fails_once(progress):
        if " b1" in progress.label and not raised:
            raised.append(progress.label)
            raise RuntimeError("progress display broke")

    checkpoint = tmp_path / "ck.jsonl"
    result = profile_manifest(manifest, checkpoint, tmp_path / "cache", on_progress=fails_once, isolate=True)
    assert [(f.variant, f.hardware, f.reason) for f in result.failures] == [
        ("a", "cpu-1", "RuntimeError: progress display broke")]
    for line in checkpoint.read_text().splitlines():  # every record belongs to the point it is filed under
        record = json.loads(line)
        if record["type"] == "round":
            assert record["result"]["batch_size"] == record["key"][3]
    assert {(r.variant, r.hardware) for r in result.table.rows} == {("a", "cpu-1"), ("a", "cpu-2"), ("b", "cpu-1"),
                                                                  ("b", "cpu-2")}


def test_a_first_round_failure_at_a_large_batch_does_not_stop_the_other_sizes_rounds(tmp_path):
    pytest.importorskip("torch", reason="the failing variant is a torch module")
    tiny_setup(tmp_path)
    limited = {"kind": "torch", "factory": "tests.fixtures:torch_module_failing_above",
               "kwargs": {"max_batch": 2}}
    manifest = write_manifest(tmp_path, [{"name": "t", "source": limited, "accuracy": 0.5}], batch_sizes=(1, 2, 4))
    result = profile_manifest(manifest, tmp_path / "ck.jsonl", tmp_path / "cache")
    assert [(f.hardware, f.round_no) for f in result.failures] == [("cpu-1", 0)]
    assert "out of memory at batch 4" in result.failures[0].reason
    rows = {r.batch_size: r for r in result.table.rows}
    assert set(rows) == {1, 2}
    assert all(r.latency_p50_spread_frac is not None for r in rows.values())  # all 3 rounds measured


def test_a_worker_that_died_while_idle_is_replaced(tmp_path):
    import os
    import signal

    from profiler.runner import RunnerConfig, UnitJob
    from profiler.worker import IsolatedRunner

    tiny_setup(tmp_path)
    manifest = load_manifest(write_manifest(tmp_path, [{"name": "a", "source": ONNX}], batch_sizes=(1,)))
    runner = IsolatedRunner(RunnerConfig(manifest, tmp_path, tmp_path / "cache", manifest.method.settings(True), True))
    try:
        assert runner.accuracy("tiny", "a") == pytest.approx(0.75)
        os.kill(runner._process.pid, signal.SIGKILL)
        runner._process.join()
        events = list(runner.profile_unit(UnitJob("tiny", "a", "cpu-1", 0, (1,))))
        assert [e.batch_size for e in events] == [1]
    finally:
        runner.close()
    assert runner._process is None


def test_checkpoint_from_a_version_with_other_tail_quantiles_is_refused(tmp_path):
    checkpoint = Checkpoint(tmp_path / "c.jsonl", "abc")
    checkpoint.load()
    checkpoint.add_round(("m", "v", "cpu-1", 2), 0,
                         RoundRecord(PointResult(2, 1.0, 1.5, 2.0, 1.1, 100.0, 500, 3, True, "", tail_ms=(1.0, 2.0)),
                                     0.25, None))
    with pytest.raises(CheckpointError, match="line 2 keeps 2 tail quantiles"):
        Checkpoint(tmp_path / "c.jsonl", "abc").load()
