"""Trace generators, transforms, loaders and the canonical file format."""

from __future__ import annotations

import bz2
import gzip
import io as stdio
import tarfile
from pathlib import Path

import numpy as np
import pytest

from planner import traces as T
from planner.errors import TraceError
from planner.io.traces import TraceFormat, read_canonical, read_trace, trace_to_csv_text

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "traces"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"real traces not found at {SHARED} (../shared/data)")


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("cv", [0.1, 1.0, 4.0, 8.0])
def test_gamma_has_the_rate_and_cv_asked_for(cv):
    trace = T.gamma(200.0, cv, 2000.0 if cv < 4 else 20000.0, rng(1))
    gaps = np.diff(trace.arrival_ms)
    assert trace.mean_rps == pytest.approx(200.0, rel=0.05 if cv < 4 else 0.15)
    assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.05 if cv < 4 else 0.2)


def test_generators_are_deterministic_given_the_generator():
    for make in (lambda g: T.poisson(50, 60, g), lambda g: T.gamma(50, 2, 60, g), lambda g: T.mmpp(5, 50, 10, 2, 60, g),
                 lambda g: T.diurnal(50, 0.5, 30, 60, g), lambda g: T.step(10, 40, 30, 60, g),
                 lambda g: T.ramp(10, 40, 60, g)):
        a, b, c = make(rng(4)), make(rng(4)), make(rng(5))
        np.testing.assert_array_equal(a.arrival_ms, b.arrival_ms)
        assert not np.array_equal(a.arrival_ms, c.arrival_ms)
        assert np.all(np.diff(a.arrival_ms) >= 0) and a.arrival_ms[-1] < a.duration_ms


def test_time_varying_generators_follow_their_rate():
    step = T.step(20, 80, 500, 1000, rng(1))
    counts = T.counts_per_second(step)
    assert counts[:500].mean() == pytest.approx(20, rel=0.05) and counts[500:].mean() == pytest.approx(80, rel=0.05)
    ramp = T.counts_per_second(T.ramp(10, 110, 1000, rng(2)))
    assert ramp[:100].mean() == pytest.approx(15, rel=0.1) and ramp[-100:].mean() == pytest.approx(105, rel=0.05)
    diurnal = T.counts_per_second(T.diurnal(50, 0.8, 200, 2000, rng(3)))
    assert diurnal.mean() == pytest.approx(50, rel=0.03)
    assert diurnal.reshape(10, 200)[:, 40:60].mean() == pytest.approx(50 * 1.8, rel=0.05)  # near the crest
    mmpp = T.mmpp(10, 100, 20, 5, 20000, rng(4))
    assert mmpp.mean_rps == pytest.approx((10 * 20 + 100 * 5) / 25, rel=0.08)
    assert T.describe(mmpp).cv_per_second > 1.0


def test_counts_become_k_uniform_arrivals_inside_each_second():
    counts = np.array([3, 0, 5, 1])
    trace = T.from_counts(counts, rng(1))
    np.testing.assert_array_equal(T.counts_per_second(trace), counts)
    assert trace.duration_ms == 4000.0 and np.all(np.diff(trace.arrival_ms) >= 0)


def test_rescale_compress_window():
    base = T.poisson(100, 500, rng(1))
    down = T.rescale(base, 0.25, rng(2))
    up = T.rescale(base, 2.5, rng(3))
    assert down.mean_rps == pytest.approx(25, rel=0.05) and up.mean_rps == pytest.approx(250, rel=0.03)
    assert up.duration_ms == base.duration_ms
    np.testing.assert_allclose(T.counts_per_second(up).mean(), 2.5 * T.counts_per_second(base).mean(), rtol=0.02)
    fast = T.compress_time(base, 4.0)
    assert fast.duration_s == pytest.approx(125) and fast.mean_rps == pytest.approx(4 * base.mean_rps)
    part = T.window(base, 100, 50)
    assert part.duration_s == pytest.approx(50) and part.arrival_ms.min() >= 0 and part.arrival_ms.max() < 50_000
    with pytest.raises(TraceError, match="window"):
        T.window(base, 600, 10)
    assert T.scale_counts(np.full(100000, 3), 1 / 8, rng(1)).mean() == pytest.approx(3 / 8, rel=0.02)


def test_bad_generator_parameters_name_the_parameter():
    with pytest.raises(TraceError, match="'cv'.*positive"):
        T.gamma(10, 0, 10, rng())
    with pytest.raises(TraceError, match="'amplitude'"):
        T.diurnal(10, 1.5, 10, 10, rng())


def test_canonical_round_trip_is_byte_stable(tmp_path):
    trace = T.Trace(np.array([0.0, 1.5, 1.5, 2000.123456789]), 3000.0, "t", "unit test",
                    {"tokens": np.array([1, 2, 3, 4]), "weight": np.array([0.5, 1.25, 2.0, 3.0])})
    text = trace_to_csv_text(trace)
    path = tmp_path / "t.csv"
    path.write_text(text)
    back = read_canonical(path)
    np.testing.assert_allclose(back.arrival_ms, trace.arrival_ms, atol=1e-6)
    assert back.duration_ms == 3000.0 and back.name == "t" and back.source == "unit test"
    np.testing.assert_array_equal(back.fields["tokens"], [1, 2, 3, 4])
    assert trace_to_csv_text(back) == text
    assert text.startswith("# pipeplan-trace schema_version=1\n")
    assert read_trace(path).requests == 4  # auto-detected


@pytest.mark.parametrize("body, match", [
    ("arrival_ms\n1.0\nabc\n", r"line 7, field 'arrival_ms': found 'abc'"),
    ("arrival_ms\n5.0\n2.0\n", r"line 7, field 'arrival_ms': 2 comes before the previous row's 5.*sorted"),
    ("arrival_ms\n-1.0\n", r"line 6, field 'arrival_ms': found -1"),
    ("time_ms\n1.0\n", r"line 5: first column is 'time_ms'; it must be 'arrival_ms'"),
])
def test_canonical_errors_name_line_field_and_fix(tmp_path, body, match):
    path = tmp_path / "bad.csv"
    path.write_text("# pipeplan-trace schema_version=1\n# name=bad\n# duration_ms=10000\n# source=x\n" + body)
    with pytest.raises(TraceError, match=match):
        read_canonical(path)


def test_canonical_wrong_schema_version_says_how_to_fix(tmp_path):
    path = tmp_path / "v2.csv"
    path.write_text("# pipeplan-trace schema_version=2\narrival_ms\n1.0\n")
    with pytest.raises(TraceError, match="schema_version.*found '2'.*trace convert"):
        read_canonical(path)


def test_timestamps_loader(tmp_path):
    path = tmp_path / "ts.txt"
    path.write_text("# comment\n100.5\n100.0\n\n102.25\n")
    trace = read_trace(path, TraceFormat.TIMESTAMPS)
    np.testing.assert_allclose(trace.arrival_ms, [0.0, 500.0, 2250.0])
    path.write_text("1.0\nnope\n")
    with pytest.raises(TraceError, match=r"line 2: found 'nope'"):
        read_trace(path, TraceFormat.TIMESTAMPS)


def _counts_text() -> bytes:
    return b"3 0 5\n1 2\n"


def test_counts_loader_plain_gz_bz2_and_tar(tmp_path):
    plain = tmp_path / "w.txt"
    plain.write_bytes(_counts_text())
    (tmp_path / "w.txt.gz").write_bytes(gzip.compress(_counts_text()))
    (tmp_path / "w.bz2").write_bytes(bz2.compress(_counts_text()))
    with tarfile.open(tmp_path / "w.tbz2", "w:bz2") as archive:
        info = tarfile.TarInfo("workload.txt")
        info.size = len(_counts_text())
        archive.addfile(info, stdio.BytesIO(_counts_text()))
    for name in ("w.txt", "w.txt.gz", "w.bz2", "w.tbz2"):
        fmt = TraceFormat.COUNTS if name == "w.txt" else TraceFormat.AUTO
        trace = read_trace(tmp_path / name, fmt, rng=rng(1))
        np.testing.assert_array_equal(T.counts_per_second(trace), [3, 0, 5, 1, 2])
    window = read_trace(tmp_path / "w.tbz2", rng=rng(1), start_s=2, duration_s=2)
    np.testing.assert_array_equal(T.counts_per_second(window), [5, 1])
    plain.write_text("3 0 x 1\n")
    with pytest.raises(TraceError, match=r"value 3 \(second 2\): found 'x'"):
        read_trace(plain, TraceFormat.COUNTS, rng=rng())


def test_counts_csv_column_and_azure_loader(tmp_path):
    csv = tmp_path / "seg.csv"
    csv.write_text("second,bursty,steady\n0,4,1\n1,2,1\n")
    trace = read_trace(csv, TraceFormat.COUNTS, rng=rng(), column="bursty")
    assert trace.requests == 6
    with pytest.raises(TraceError, match="no column 'missing'.*bursty"):
        read_trace(csv, TraceFormat.COUNTS, rng=rng(), column="missing")
    azure = tmp_path / "az.csv"
    azure.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,4808,10\n"
                     "2023-11-16 18:17:04.0319600,3180,8\n2023-11-16 18:17:05.0000000,110,27\n")
    trace = read_trace(azure)
    np.testing.assert_allclose(trace.arrival_ms, [0.0, 52.0, 1020.04], atol=1e-6)
    np.testing.assert_array_equal(trace.fields["ContextTokens"], [4808, 3180, 110])
    azure.write_text("TIMESTAMP,ContextTokens\n2023-11-16 18:17:03.97,1\nyesterday,2\n")
    with pytest.raises(TraceError, match=r"row 3, field 'TIMESTAMP': found 'yesterday'"):
        read_trace(azure)


def test_unknown_format_asks_for_one(tmp_path):
    path = tmp_path / "mystery.txt"
    path.write_text("1 2 3\n")
    with pytest.raises(TraceError, match="--trace-format"):
        read_trace(path)


@needs_shared
@pytest.mark.shared_data
@pytest.mark.parametrize("name, mean, peak, cv", [
    ("AzureLLMInferenceTrace_conv.csv", 5.5, 16, 0.50), ("AzureLLMInferenceTrace_code.csv", 2.6, 67, 2.27)])
def test_real_azure_traces_match_their_published_statistics(name, mean, peak, cv):
    d = T.describe(read_trace(SHARED / "azure_llm_2023" / name))
    assert d.mean_rps == pytest.approx(mean, abs=0.05) and d.peak_rps == peak
    assert d.cv_per_second == pytest.approx(cv, abs=0.01)


@needs_shared
@pytest.mark.shared_data
def test_real_twitter_counts_and_ipa_segments():
    trace = read_trace(SHARED / "twitter" / "workload.tbz2", rng=rng(1), start_s=0, duration_s=3600, scale=1 / 8)
    assert trace.duration_s == 3600 and 0 < trace.mean_rps < 388 / 8
    segment = read_trace(SHARED / "twitter" / "ipa_segments_damped8.csv", TraceFormat.COUNTS, rng=rng(1),
                         column="bursty")
    d = T.describe(segment)
    assert d.duration_s == 1200 and d.mean_rps == pytest.approx(12, abs=0.1) and d.peak_rps == 34
