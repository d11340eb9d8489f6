"""The tuner's outputs as text and rows: timeline.csv, summary.json, compare.csv (docs/formats.md, "Tuner outputs")."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

from planner.tuner.replay import TUNE_SCHEMA_VERSION, TuneResult
from planner.tuner.targets import CompareRow

COMPARE_HEADER = ["policy", "total_cost_usd", "cost_vs_oracle", "slo_attainment", "mean_accuracy",
                  "objective_value", "objective_unit", "shortfall_vs_oracle", "constraint", "constraint_margin",
                  "reconfigurations", "meets_targets"]


def _num(value: float) -> Any:
    """Fixed precision (10 significant digits); NaN/inf become empty cells / null."""
    if isinstance(value, float):
        return float(f"{value:.10g}") if math.isfinite(value) else None
    return value


def timeline_header(result: TuneResult) -> list[str]:
    header = ["time_s", "arrival_rps", "peak_rps", "planned_rps"]
    for s in result.timeline[0].stages:
        header += [f"{s.stage}_variant", f"{s.stage}_hardware", f"{s.stage}_batch", f"{s.stage}_batch_timeout_ms",
                   f"{s.stage}_replicas", f"{s.stage}_serving"]
    return header + ["cost_usd", "requests", "p99_ms", "slo_attainment", "accuracy"]


def timeline_rows(result: TuneResult) -> list[list[Any]]:
    rows = []
    for r in result.timeline:
        row: list[Any] = [_num(r.time_s), _num(r.arrival_rps), _num(r.peak_rps), _num(r.planned_rps)]
        for s in r.stages:
            row += [s.variant, s.hardware, s.batch_size, _num(s.batch_timeout_ms), s.replicas, s.serving]
        row += [_num(r.cost_usd), r.requests, _num(r.p99_ms), _num(r.slo_attainment), _num(r.accuracy)]
        rows.append(["" if v is None else v for v in row])
    return rows


def summary_json(result: TuneResult, extra: dict[str, Any] | None = None) -> str:
    """Stable JSON of the summary (sorted keys, fixed precision, trailing newline)."""
    # Wall time and the shared cache's solve count depend on the machine and on what ran before.
    summary = {k: v for k, v in asdict(result.summary).items() if k not in ("wall_s", "plans_solved")}
    data = {"schema_version": TUNE_SCHEMA_VERSION, **summary, **(extra or {})}
    data = {k: _num(v) for k, v in data.items()}
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"


def compare_csv_rows(rows: list[CompareRow]) -> list[list[Any]]:
    def cell(value: float) -> Any:
        number = _num(value)
        return "" if number is None else number

    return [[r.policy, cell(r.total_cost_usd), cell(r.cost_vs_oracle), cell(r.slo_attainment), cell(r.mean_accuracy),
             cell(r.objective_value), r.objective_unit, cell(r.shortfall_vs_oracle), r.constraint,
             cell(r.constraint_margin), r.reconfigurations, int(r.meets_targets)] for r in rows]
