"""The profile table: one row per (model, variant, hardware, batch_size). No heavy imports here.

The planner reads profiles through this module alone, so it never needs torch or onnxruntime.
``throughput_rps`` is items per second of ONE replica running back-to-back batches of that size;
latencies are per batch, in milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from functools import cached_property
from types import MappingProxyType
from typing import Any, Iterable, Mapping

PROFILE_SCHEMA_VERSION = 1

KEY_COLUMNS = ("model", "variant", "hardware", "batch_size")
REQUIRED_COLUMNS = KEY_COLUMNS + (
    "latency_p50_ms",
    "latency_p99_ms",
    "throughput_rps",
    "accuracy",
)
OPTIONAL_COLUMNS = (
    "latency_p95_ms",
    "latency_mean_ms",
    "memory_mb",
    "load_time_s",
    "samples",
    "stable",
    "latency_p50_spread_frac",
)
ALL_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

_POSITIVE = ("latency_p50_ms", "latency_p99_ms", "throughput_rps", "latency_p95_ms", "latency_mean_ms")
_NON_NEGATIVE = ("memory_mb", "load_time_s", "samples", "latency_p50_spread_frac")


class ProfileSchemaError(ValueError):
    """A profile table breaks the schema; the message names the source, row and column."""


@dataclass(frozen=True)
class ProfileRow:
    """One measured point: a variant of a model on one hardware kind at one batch size."""

    model: str
    variant: str
    hardware: str
    batch_size: int
    latency_p50_ms: float
    latency_p99_ms: float
    throughput_rps: float
    accuracy: float
    latency_p95_ms: float | None = None
    latency_mean_ms: float | None = None
    memory_mb: float | None = None
    load_time_s: float | None = None
    samples: int | None = None
    stable: bool | None = None
    # (max - min) / median of the p50s of the point's measurement rounds (fresh sessions spread
    # over the run): the run-to-run error bar of latency_p50_ms.
    latency_p50_spread_frac: float | None = None

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.model, self.variant, self.hardware, self.batch_size)


@dataclass(frozen=True)
class ProfileTable:
    """Validated profile rows plus free-form metadata (schema_version, machine, provenance)."""

    rows: tuple[ProfileRow, ...]
    metadata: Mapping[str, str] = field(default_factory=dict)

    def models(self) -> set[str]:
        return {r.model for r in self.rows}

    def index(self) -> Mapping[tuple[str, str, str, int], ProfileRow]:
        """Rows keyed by (model, variant, hardware, batch_size); read-only, built once per table."""
        return MappingProxyType(self._index)

    @cached_property
    def _index(self) -> dict[tuple[str, str, str, int], ProfileRow]:
        # Every plan and every re-check looks rows up; a tuner makes hundreds of plans from one table.
        # (cached_property writes the instance __dict__ directly, so it works on a frozen dataclass;
        # it is not a field, so equality, repr and dataclasses.replace ignore it.)
        return {r.key: r for r in self.rows}


# Plausible ranges: a microsecond to a day per batch, and the throughput those imply; beyond them
# the queueing maths overflows or divides by zero (1e-300 ms, 1e308 ms).
_RANGE = {"latency_p50_ms": (1e-6, 1e8), "latency_p99_ms": (1e-6, 1e8), "latency_p95_ms": (1e-6, 1e8),
          "latency_mean_ms": (1e-6, 1e8), "throughput_rps": (1e-6, 1e12)}
_MAX_BATCH = 1_000_000


def _cell(value: Any) -> Any:
    """Normalise a cell: empty strings and NaN become None."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip() == "":
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _fail(source: str, row_no: int, column: str, found: Any, fix: str) -> ProfileSchemaError:
    return ProfileSchemaError(
        f"{source}: row {row_no}, column '{column}': found {found!r}; {fix}"
    )


def _as_float(source: str, row_no: int, column: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _fail(source, row_no, column, value, "expected a number.") from None
    if math.isnan(number) or math.isinf(number):
        raise _fail(source, row_no, column, value, "expected a finite number; re-measure this point or drop the row.")
    return number


def _as_bool(source: str, row_no: int, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise _fail(source, row_no, "stable", value, "expected true or false.")


def validate_records(
    records: Iterable[Mapping[str, Any]],
    columns: Iterable[str],
    source: str,
    metadata: Mapping[str, str] | None = None,
) -> ProfileTable:
    """Validate raw records (e.g. from a CSV) into a ProfileTable.

    Row numbers in messages count data rows from 1, as a spreadsheet user would.
    """
    columns = list(columns)
    unknown = [c for c in columns if c not in ALL_COLUMNS]
    if unknown:
        raise ProfileSchemaError(
            f"{source}: unknown column(s) {unknown}; the profile table accepts only "
            f"{list(ALL_COLUMNS)} (see docs/formats.md). Rename or drop the column."
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ProfileSchemaError(
            f"{source}: missing required column(s) {missing}; every profile table needs "
            f"{list(REQUIRED_COLUMNS)}."
        )
    meta = dict(metadata or {})
    version = meta.get("schema_version", str(PROFILE_SCHEMA_VERSION))
    if str(version) != str(PROFILE_SCHEMA_VERSION):
        raise ProfileSchemaError(
            f"{source}: schema_version {version!r} is not supported; this pipeplan reads "
            f"profile schema_version {PROFILE_SCHEMA_VERSION}."
        )
    meta["schema_version"] = str(PROFILE_SCHEMA_VERSION)

    rows: list[ProfileRow] = []
    seen: dict[tuple[str, str, str, int], int] = {}
    for row_no, raw in enumerate(records, start=1):
        rows.append(_validate_row(source, row_no, raw, seen))
    if not rows:
        raise ProfileSchemaError(f"{source}: the profile table has no rows; profile at least one variant.")
    return ProfileTable(rows=tuple(rows), metadata=meta)


def _validate_row(
    source: str, row_no: int, raw: Mapping[str, Any], seen: dict[tuple[str, str, str, int], int]
) -> ProfileRow:
    values: dict[str, Any] = {}
    for name in ("model", "variant", "hardware"):
        value = _cell(raw.get(name))
        if value is None:
            raise _fail(source, row_no, name, raw.get(name), "expected a non-empty name.")
        values[name] = str(value).strip()
    batch = _cell(raw.get("batch_size"))
    batch_f = _as_float(source, row_no, "batch_size", batch)
    if batch_f < 1 or batch_f > _MAX_BATCH or batch_f != int(batch_f):
        raise _fail(source, row_no, "batch_size", batch, f"expected a whole number in [1, {_MAX_BATCH}].")
    values["batch_size"] = int(batch_f)
    for name in ("latency_p50_ms", "latency_p99_ms", "throughput_rps", "accuracy",
                 "latency_p95_ms", "latency_mean_ms", "memory_mb", "load_time_s", "samples",
                 "latency_p50_spread_frac"):
        value = _cell(raw.get(name))
        if value is None:
            if name in REQUIRED_COLUMNS:
                raise _fail(source, row_no, name, raw.get(name), "this column is required in every row.")
            continue
        number = _as_float(source, row_no, name, value)
        if name in _POSITIVE and number <= 0:
            raise _fail(source, row_no, name, value, "expected a number > 0.")
        if name in _NON_NEGATIVE and number < 0:
            raise _fail(source, row_no, name, value, "expected a number >= 0.")
        if name in _RANGE and not _RANGE[name][0] <= number <= _RANGE[name][1]:
            low, high = _RANGE[name]
            raise _fail(source, row_no, name, value, f"expected a value in [{low:g}, {high:g}] (the range the "
                        "planner's arithmetic is exact in); check the unit.")
        if name == "accuracy" and not 0 < number <= 1:
            raise _fail(source, row_no, name, value,
                        "expected an accuracy in (0, 1]; scale percentages by 1/100.")
        values[name] = int(number) if name == "samples" else number
    if values["latency_p99_ms"] < values["latency_p50_ms"]:
        raise _fail(source, row_no, "latency_p99_ms", values["latency_p99_ms"],
                    f"p99 is below p50 ({values['latency_p50_ms']}); the columns may be swapped.")
    stable = _cell(raw.get("stable"))
    if stable is not None:
        values["stable"] = _as_bool(source, row_no, stable)
    row = ProfileRow(**values)
    if row.key in seen:
        raise ProfileSchemaError(
            f"{source}: row {row_no} repeats (model, variant, hardware, batch_size) = {row.key} "
            f"of row {seen[row.key]}; keep one measurement per point."
        )
    seen[row.key] = row_no
    return row


def row_to_record(row: ProfileRow) -> dict[str, Any]:
    """A row as a plain dict in column order (None for absent optional values)."""
    return {f.name: getattr(row, f.name) for f in fields(row)}
