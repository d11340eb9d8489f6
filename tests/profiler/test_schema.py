"""The profile table: validation on load, CSV and Parquet round trips with metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from profiler.schema import ProfileSchemaError, ProfileTable, validate_records
from profiler.table_io import read_profile_table, write_profile_table
from tests.fixtures import linear_profile

COLUMNS = ["model", "variant", "hardware", "batch_size", "latency_p50_ms", "latency_p99_ms", "throughput_rps", "accuracy"]


def record(**overrides):
    base = dict(model="m", variant="v", hardware="cpu", batch_size=1, latency_p50_ms=2.0,
                latency_p99_ms=3.0, throughput_rps=500.0, accuracy=0.9)
    base.update(overrides)
    return base


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_keeps_rows_and_metadata(tmp_path: Path, suffix: str):
    table = ProfileTable(tuple(linear_profile("m", "v", "cpu", [1, 2, 4], 1.0, 2.0, 0.9)), {"machine": "test box"})
    path = tmp_path / f"p{suffix}"
    write_profile_table(table, path)
    back = read_profile_table(path)
    assert len(back.rows) == 3
    assert back.metadata["machine"] == "test box" and back.metadata["schema_version"] == "1"
    for a, b in zip(table.rows, back.rows):
        assert a.key == b.key and a.latency_p50_ms == pytest.approx(b.latency_p50_ms, rel=1e-5)


def test_csv_write_is_deterministic(tmp_path: Path):
    table = ProfileTable(tuple(linear_profile("m", "v", "cpu", [1, 2], 1.0, 2.0, 0.9)))
    write_profile_table(table, tmp_path / "a.csv")
    write_profile_table(table, tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


@pytest.mark.parametrize("overrides,needle", [
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"latency_p50_ms": float("nan")}, "latency_p50_ms"),
    ({"throughput_rps": 0}, "throughput_rps"),
    ({"accuracy": 1.5}, "accuracy"),
    ({"latency_p99_ms": 1.0}, "swapped"),
    ({"model": ""}, "model"),
])
def test_bad_rows_name_row_and_column(overrides, needle):
    with pytest.raises(ProfileSchemaError) as info:
        validate_records([record(), record(batch_size=2, **{k: v for k, v in overrides.items() if k != "batch_size"})
                          if "batch_size" not in overrides else record(**overrides)], COLUMNS, "p.csv")
    text = str(info.value)
    assert "p.csv" in text and needle in text


def test_unknown_and_missing_columns():
    with pytest.raises(ProfileSchemaError, match="unknown column"):
        validate_records([record(gpu_util=3)], COLUMNS + ["gpu_util"], "p.csv")
    with pytest.raises(ProfileSchemaError, match="missing required column"):
        validate_records([record()], COLUMNS[:-1], "p.csv")


def test_duplicate_point_is_rejected():
    with pytest.raises(ProfileSchemaError, match="repeats"):
        validate_records([record(), record()], COLUMNS, "p.csv")


def test_unsupported_schema_version():
    with pytest.raises(ProfileSchemaError, match="schema_version"):
        validate_records([record()], COLUMNS, "p.csv", {"schema_version": "7"})


def test_atomic_writes_get_the_usual_permissions(tmp_path: Path):
    import os
    import stat

    table = ProfileTable(tuple(linear_profile("m", "v", "cpu", [1], 1.0, 2.0, 0.9)))
    write_profile_table(table, tmp_path / "p.csv")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "p.csv").stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["p.csv"]  # no temporary file left behind
