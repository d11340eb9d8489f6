"""Existing measurements into the profile table: perf_analyzer's ``-f`` CSV and Model Analyzer's
``metrics-model-inference.csv``. These carry GPU numbers users already have.

Neither file knows the planner's hardware names or the variants' accuracy, so the caller gives
them. Both files hold one row per concurrency level; a profile row describes ONE replica running
back-to-back batches, which is the lowest concurrency measured (1 when present), so that row is
taken unless another concurrency is asked for. Pure functions on the file's text.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Mapping

from profiler.errors import ImportFormatError
from profiler.schema import PROFILE_SCHEMA_VERSION, ProfileSchemaError, ProfileTable, validate_records

_PA_COLUMNS = {"p50": "p50 latency", "p95": "p95 latency", "p99": "p99 latency", "mean": "Avg latency",
               "throughput": "Inferences/Second"}
_MA_COLUMNS = {"model": "Model", "batch": "Batch", "concurrency": "Concurrency", "config": "Model Config Path",
               "throughput": "Throughput (infer/sec)", "p99": "p99 Latency (ms)", "p95": "p95 Latency (ms)",
               "p90": "p90 Latency (ms)", "p50": "p50 Latency (ms)", "mean": "Avg Latency (ms)"}


def _rows(text: str, source: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise ImportFormatError(f"{source}: not a valid CSV ({exc}).") from None
    if not fieldnames:
        raise ImportFormatError(f"{source}: the file is empty; expected a CSV with a header row.")
    reader.fieldnames = [f.strip() for f in reader.fieldnames]
    try:
        rows = [{k: (v if isinstance(v, str) else "").strip() for k, v in row.items() if k is not None}
                for row in reader]
    except csv.Error as exc:
        raise ImportFormatError(f"{source}: not a valid CSV at line {reader.line_num} ({exc}).") from None
    if not rows:
        raise ImportFormatError(f"{source}: the CSV has a header but no data rows.")
    return rows


def _number(source: str, row_no: int, column: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ImportFormatError(f"{source}: row {row_no}, column '{column}': found {value!r}; expected a number.") from None
    if not math.isfinite(number):
        raise ImportFormatError(f"{source}: row {row_no}, column '{column}': found {value!r}; expected a finite number.")
    return number


def _whole(source: str, row_no: int, column: str, value: str) -> int:
    """A whole number >= 1 (a batch size): 2.5 is refused, not truncated to 2."""
    number = _number(source, row_no, column, value)
    if number < 1 or number != int(number):
        raise ImportFormatError(f"{source}: row {row_no}, column '{column}': found {value!r}; expected a whole "
                                "number >= 1.")
    return int(number)


def _optional(source: str, row_no: int, row: dict[str, str], column: str) -> float | None:
    """The cell as a number, or None when the column is absent or empty."""
    return _number(source, row_no, column, row[column]) if row.get(column) else None


def _require(source: str, columns: list[str], needed: list[str], hint: str) -> None:
    missing = [c for c in needed if c not in columns]
    if missing:
        raise ImportFormatError(f"{source}: missing column(s) {missing} (found {columns}); {hint}")


def _pick_concurrency(values: list[float], wanted: float | None, source: str, what: str) -> float:
    if wanted is not None and not (math.isfinite(wanted) and wanted > 0):
        raise ImportFormatError(f"{source}: concurrency {wanted!r} asked for; give a positive number.")
    if wanted is None:
        return min(values)
    if wanted not in values:
        raise ImportFormatError(f"{source}: {what} has no row at concurrency {wanted:g} (measured: "
                                f"{sorted(set(values))}); pick one of those.")
    return wanted


def _table(records: list[dict], source: str, metadata: dict[str, str]) -> ProfileTable:
    columns = list(records[0])
    try:
        return validate_records(records, columns, source, {**metadata, "schema_version": str(PROFILE_SCHEMA_VERSION)})
    except ProfileSchemaError as exc:
        raise ImportFormatError(str(exc)) from None


def import_perf_analyzer(
    text: str,
    source: str,
    model: str,
    variant: str,
    hardware: str,
    batch_size: int,
    accuracy: float,
    concurrency: float | None = None,
) -> ProfileTable:
    """One profile row from a perf_analyzer ``-f`` CSV of one model at one batch size (``-b``).

    perf_analyzer reports latencies in microseconds and throughput in inferences (items) per second.
    """
    rows = _rows(text, source)
    columns = list(rows[0])
    level = "Concurrency" if "Concurrency" in columns else "Request Rate" if "Request Rate" in columns else None
    _require(source, columns, [_PA_COLUMNS["p50"], _PA_COLUMNS["p99"], _PA_COLUMNS["throughput"]] + ([level] if level else ["Concurrency"]),
             "expected the CSV perf_analyzer writes with -f (latencies in usec).")
    levels = [_number(source, i, level, r[level]) for i, r in enumerate(rows, start=1)]
    chosen = _pick_concurrency(levels, concurrency, source, f"model '{model}'")
    row_no, row = next((i, r) for i, r in enumerate(rows, start=1) if levels[i - 1] == chosen)

    def usec(key: str) -> float | None:
        column = _PA_COLUMNS[key]
        return _number(source, row_no, column, row[column]) / 1000.0 if row.get(column) else None

    record = {
        "model": model, "variant": variant, "hardware": hardware, "batch_size": batch_size,
        "latency_p50_ms": usec("p50"), "latency_p99_ms": usec("p99"),
        "throughput_rps": _number(source, row_no, _PA_COLUMNS["throughput"], row[_PA_COLUMNS["throughput"]]),
        "accuracy": accuracy, "latency_p95_ms": usec("p95"), "latency_mean_ms": usec("mean"),
    }
    return _table([record], source, {"imported_from": f"perf_analyzer -f CSV {source}",
                                      "imported_level": f"{level.lower()} {chosen:g}"})


def import_model_analyzer(
    text: str,
    source: str,
    hardware: str,
    accuracy: float | Mapping[str, float],
    concurrency: float | None = None,
) -> ProfileTable:
    """Profile rows from Model Analyzer's metrics-model-inference.csv: one per (model, config, batch).

    The variant is the model config name (e.g. ``resnet50_config_2``). ``accuracy`` is one value, or
    one per variant (or per model). Model Analyzer reports no p50 by default; the average latency
    stands in for it then, and the table's metadata says so.
    """
    rows = _rows(text, source)
    columns = list(rows[0])
    c = _MA_COLUMNS
    _require(source, columns, [c["model"], c["batch"], c["concurrency"], c["throughput"], c["p99"]],
             "export with the default inference_output_fields of Model Analyzer's report.")
    if c["p50"] not in columns and c["mean"] not in columns:
        raise ImportFormatError(f"{source}: neither '{c['p50']}' nor '{c['mean']}' present; add perf_latency_avg "
                                "to Model Analyzer's inference_output_fields and export again.")
    p50_column = c["p50"] if c["p50"] in columns else c["mean"]
    groups: dict[tuple[str, str, int], list[tuple[int, dict[str, str]]]] = {}
    for row_no, row in enumerate(rows, start=1):
        variant = row.get(c["config"]) or row[c["model"]]
        batch = _whole(source, row_no, c["batch"], row[c["batch"]])
        groups.setdefault((row[c["model"]], variant, batch), []).append((row_no, row))
    records = []
    for (model, variant, batch), members in groups.items():
        levels = [_number(source, n, c["concurrency"], r[c["concurrency"]]) for n, r in members]
        chosen = _pick_concurrency(levels, concurrency, source, f"{model}/{variant} batch {batch}")
        row_no, row = members[levels.index(chosen)]
        if isinstance(accuracy, Mapping):
            value = accuracy.get(variant, accuracy.get(model))
            if value is None:
                raise ImportFormatError(f"{source}: no accuracy given for variant '{variant}' of model '{model}'; "
                                        "give one per variant or per model.")
        else:
            value = accuracy
        records.append({
            "model": model, "variant": variant, "hardware": hardware, "batch_size": batch,
            "latency_p50_ms": _optional(source, row_no, row, p50_column),
            "latency_p99_ms": _optional(source, row_no, row, c["p99"]),
            "throughput_rps": _optional(source, row_no, row, c["throughput"]), "accuracy": value,
            "latency_p95_ms": _optional(source, row_no, row, c["p95"]),
            "latency_mean_ms": _optional(source, row_no, row, c["mean"]),
        })
    metadata = {"imported_from": f"Model Analyzer metrics-model-inference.csv {source}",
                "imported_level": "lowest concurrency per point" if concurrency is None else f"concurrency {concurrency:g}"}
    if p50_column == c["mean"]:
        metadata["p50_note"] = "latency_p50_ms is Model Analyzer's average latency (no p50 in the file)"
    return _table(records, source, metadata)
