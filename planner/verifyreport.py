"""The verification report: every round the search tried, the returned plan's predicted next to its
simulated p99, and the estimate's band; its own stable JSON file naming the plan by its sha256."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from enum import Enum

import numpy as np
from scipy.stats import binom

from planner.plan import Plan, plan_to_json

VERIFY_SCHEMA_VERSION = 2  # 2: local-search rounds (knob local_move, move), local_search_* fields


class Knob(str, Enum):
    """What a planning round changed relative to the spec."""

    NONE = "none"  # the first round: the spec as given (the model-only plan)
    SLO_ALLOWANCE = "slo_allowance"  # bisection: the model SLO scaled by an allowance
    LATENCY_BUDGET = "latency_budget"  # tightening: below the rejected plan's predicted p99
    HEADROOM = "headroom"  # tightening: a lower utilisation cap
    LOCAL_MOVE = "local_move"  # local search under the simulator: no model SLO, one or two stages changed


@dataclass(frozen=True)
class VerifyRound:
    """One plan tried: what the planner was asked for, what it predicted, what the simulation showed."""

    round: int
    knob: Knob
    latency_budget_ms: float  # the model SLO the plan was solved against (NaN for a local move: none)
    allowance: float  # latency_budget_ms / slo_ms
    max_utilization: float
    cost_usd_per_hour: float
    accuracy: float
    predicted_p99_ms: float
    simulated_p99_ms: float
    slo_attainment: float
    verified: bool
    simulated: bool  # False: the configuration was simulated in an earlier round (result reused)
    configuration: str
    move: str = ""  # a local move: what changed, "stage: before -> after" (and a second stage's for a pair)


@dataclass(frozen=True)
class StageCheck:
    """One stage of the returned plan: the model's p99 next to the simulated one."""

    stage: str
    predicted_latency_ms: float
    simulated_p99_ms: float
    predicted_utilization: float
    simulated_utilization: float
    simulated_mean_batch: float


@dataclass(frozen=True)
class VerifyReport:
    """What ``pipeplan plan --verify`` found, written to its own file; ``plan_sha256`` names the plan
    (the sha256 of the plan file's bytes, ``plan_to_json``) it verified."""

    verified: bool
    plan_sha256: str
    slo_ms: float
    trace: str
    trace_source: str
    trace_generated: bool  # True: generated at the spec's rate and CV (no trace was given)
    trace_requests: int
    trace_mean_rps: float
    spec_arrival_rps: float
    spec_arrival_cv: float
    seed: int
    service: str
    predicted_p99_ms: float
    simulated_p99_ms: float
    simulated_p99_band_ms: tuple[float, float]  # distribution-free 95% band of the simulated p99
    model_only_cost_usd_per_hour: float
    model_only_accuracy: float
    model_only_simulated_p99_ms: float
    model_only_verified: bool
    cost_usd_per_hour: float
    accuracy: float
    cost_saved_usd_per_hour: float  # model-only cost - verified cost (< 0: verification had to spend more)
    simulations: int  # distinct configurations simulated
    max_simulations: int  # the budget
    local_search_simulations: int  # of which the local search's
    local_search_moves: tuple[str, ...]  # the moves it accepted, in order (empty: no move improved)
    rounds: tuple[VerifyRound, ...]
    stages: tuple[StageCheck, ...]
    p99_sample_note: str  # whether the trace has enough requests for a p99 claim
    estimate_note: str  # the simulated p99 is an estimate: how far it could be off
    schema_version: int = VERIFY_SCHEMA_VERSION

    def to_dict(self) -> dict:
        data = asdict(self)
        for r in data["rounds"]:
            r["knob"] = r["knob"].value
        data["simulated_p99_band_ms"] = list(self.simulated_p99_band_ms)
        data["local_search_moves"] = list(self.local_search_moves)
        return data


def _stable(value):
    """Fixed precision (10 significant digits), non-finite floats as null: stable, valid JSON."""
    if isinstance(value, float):
        return float(f"{value:.10g}") if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _stable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_stable(v) for v in value]
    return value


def report_to_json(report: VerifyReport) -> str:
    """The report file: sorted keys, fixed float precision, infinities as null, trailing newline."""
    return json.dumps(_stable(report.to_dict()), indent=2, sort_keys=True, allow_nan=False) + "\n"


def plan_sha256(plan: Plan) -> str:
    """The sha256 of the plan's file bytes (``plan_to_json``), which the report names."""
    return hashlib.sha256(plan_to_json(plan).encode("utf-8")).hexdigest()


def sample_note_text(requests: int, over: int) -> str:
    """MLPerf LoadGen's sample-size verdict for a p99 claim, in words."""
    # MLPerf LoadGen's binomial rule at 99% confidence: 459 requests with none over, 662 with one, 2010 with ten.
    needed = 459 if over == 0 else 662 if over <= 1 else 2010 if over <= 10 else None
    if needed is None:
        return f"{requests} requests, {over} over the SLO"
    return (f"{requests} requests, {over} over the SLO: enough for a p99 claim at 99% confidence"
            if requests >= needed else
            f"only {requests} requests with {over} over the SLO; a p99 claim at 99% confidence needs >= {needed}")


def p99_band_ms(latency_ms: np.ndarray) -> tuple[float, float]:
    """A distribution-free 95% band of the p99 from one run: the order statistics at ranks k_lo, k_hi,
    the 2.5% and 97.5% points of Binomial(n, 0.99) (the count of requests at or below the true p99).
    Dropped requests (NaN) count as infinitely late."""
    n = latency_ms.size
    if n == 0:
        return (math.nan, math.nan)
    late = np.where(np.isnan(latency_ms), np.inf, latency_ms)
    lo = max(1, int(binom.ppf(0.025, n, 0.99)))
    hi = min(n, int(binom.ppf(0.975, n, 0.99)) + 1)
    values = np.partition(late, [lo - 1, hi - 1])
    return (float(values[lo - 1]), float(values[hi - 1]))


def estimate_note_text(requests: int, band: tuple[float, float], slo_ms: float) -> str:
    """The simulated p99 is an estimate: its 95% band against the SLO, in words."""
    lo, hi = band
    side = ("inside the SLO" if hi <= slo_ms else "across the SLO" if lo <= slo_ms else "above the SLO")
    return (f"the simulated p99 is itself an estimate from {requests} simulated requests (one seed, the "
            f"simulator's service model): its 95% band is {lo:.4g}-{hi:.4g} ms, {side}")
