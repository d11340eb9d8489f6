"""What a report is made from: typed values read by planner.io.report or built from library results.

Each figure is a pure function of these (and of Plan, ProfileTable); nothing here reads a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from planner.sim.result import SimResult
from planner.sim.run import quantile


@dataclass(frozen=True)
class FrontierPoint:
    """One optimal point of the cost-accuracy frontier (a row of ``pipeplan plan --pareto``)."""

    accuracy: float
    cost_usd_per_hour: float
    predicted_p99_ms: float
    configuration: str


@dataclass(frozen=True)
class RequestLatencies:
    """End-to-end latency of every request of one run; NaN marks a dropped request."""

    label: str  # "simulated" or "measured", plus where it came from
    latency_ms: np.ndarray = field(repr=False)

    @classmethod
    def from_sim(cls, result: SimResult, label: str = "simulated") -> RequestLatencies:
        return cls(f"{label} ({result.trace})", result.latency_ms)

    @property
    def dropped(self) -> int:
        return int(np.isnan(self.latency_ms).sum())

    def p99_ms(self) -> float:
        """p99 with a dropped request counted as infinitely late (as planner.sim.result does)."""
        return quantile(np.where(np.isnan(self.latency_ms), np.inf, self.latency_ms), 0.99)


@dataclass(frozen=True)
class TunerRun:
    """One policy's timeline from ``pipeplan tune`` (timeline.csv + summary.json), per interval."""

    policy: str
    trace: str
    interval_s: float
    slo_ms: float
    time_s: np.ndarray = field(repr=False)
    arrival_rps: np.ndarray = field(repr=False)
    planned_rps: np.ndarray = field(repr=False)
    replicas: dict[str, np.ndarray] = field(repr=False)  # stage -> target replicas per interval
    cost_usd_per_hour: np.ndarray = field(repr=False)  # cost_usd of the interval / its length in hours
    slo_misses: np.ndarray = field(repr=False)  # requests of the interval late or dropped
    total_cost_usd: float = 0.0
    slo_attainment: float = float("nan")
