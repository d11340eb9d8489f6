"""A load test's result, in the simulator's formats so the two compare column for column.

Per-request CSV: the simulator's columns first (``request,arrival_ms,latency_ms,dropped``, as
:func:`planner.sim.result.requests_csv_text` writes them; a failed request is "dropped", its latency
empty), then what only a real run has: ``send_ms`` (when it really left), ``status`` (HTTP status, 0
without an answer) and ``outcome``. The JSON's ``summary`` has the fields of the simulator's
:class:`~planner.sim.result.LatencySummary`, computed the same way (a failed request counts as
infinitely late), plus the generator's own send-time error.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from planner.loadgen.sender import OUTCOME_CODES, Outcome, Replay
from planner.sim.result import LatencySummary, latency_summary, request_row
from planner.sim.run import quantile

LOADTEST_SCHEMA_VERSION = 1
CSV_HEADER = "request,arrival_ms,latency_ms,dropped,send_ms,status,outcome"
_OUTCOMES = {code: o for o, code in OUTCOME_CODES.items()}


@dataclass(frozen=True)
class SendError:
    """How late the generator sent (actual - scheduled, ms): its own error, not the server's."""

    p50_ms: float
    p99_ms: float
    max_ms: float
    late_over_1ms: int  # requests sent more than 1 ms late


def summarise(replay: Replay, slo_ms: float) -> LatencySummary:
    """The simulator's summary of a measured run (same quantile rule, failures infinitely late)."""
    return latency_summary(replay.latency_ms, slo_ms)


def send_error(replay: Replay) -> SendError:
    err = replay.send_error_ms
    if err.size == 0:
        return SendError(math.nan, math.nan, math.nan, 0)
    return SendError(p50_ms=quantile(err, 0.5), p99_ms=quantile(err, 0.99), max_ms=float(err.max()),
                     late_over_1ms=int(np.sum(err > 1.0)))


def outcome_counts(replay: Replay) -> dict[str, int]:
    return {o.value: int(np.sum(replay.outcome == OUTCOME_CODES[o])) for o in Outcome}


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.10g}") if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    return value


def result_to_json(replay: Replay, slo_ms: float, info: dict[str, Any] | None = None) -> str:
    """Stable JSON of the run: target, trace, summary (simulator fields), send error, outcomes."""
    data = {
        "schema_version": LOADTEST_SCHEMA_VERSION,
        "kind": "loadtest",
        "url": replay.url,
        "trace": {"name": replay.trace, "duration_ms": replay.duration_ms, **(info or {})},
        "summary": asdict(summarise(replay, slo_ms)),
        "send_error": asdict(send_error(replay)),
        "outcomes": outcome_counts(replay),
    }
    return json.dumps(_clean(data), indent=2, sort_keys=True, allow_nan=False) + "\n"


def requests_csv_text(replay: Replay) -> str:
    """Per-request CSV; the first four columns are the simulator's, byte-for-byte in format."""
    lines = [CSV_HEADER]
    for i in range(replay.requests):
        lines.append(f"{request_row(i, float(replay.arrival_ms[i]), float(replay.latency_ms[i]))},"
                     f"{replay.send_ms[i]:.6f},{int(replay.status[i])},{_OUTCOMES[int(replay.outcome[i])].value}")
    return "\n".join(lines) + "\n"
