r"""Path and accuracy maths of a pipeline DAG: the end-to-end p99 from the stages' latency
distributions, the pipeline's accuracy from its stages'.

**End-to-end p99 (the path rule).** Stage s has latency X_s with mean m_s and p99 q_s
(planner.estimate.latency; m_s is an upper bound on the mean, m_s <= q_s); write its tail excess
``d_s = q_s - m_s >= 0``. A request's latency along a source-to-sink path P is sum_{s in P} X_s,
and the pipeline's p99 is taken as

    F = max( max_s q_s,  max_P sum_{s in P} (m_s + w_s d_s) ),
    w_s = w(n_s),   w(n) = sqrt(rho + (1 - rho) / n),   rho = rho(cv) in [0.5, 1],

with n_s the fewest stages on any source-to-sink path through s and cv the pipeline's arrival CV.
The stage term ``l_s = m_s + w_s d_s`` (``path_latency_ms``) is what the ILP's path rows add up, so
the program stays linear with one coefficient per option (planner.ilp.formulation, constraint (2)).

Why this rule:

- It is the normal approximation of a sum of n stages whose latencies have pairwise correlation
  rho, for stages with equal tails: the sum's tail excess is
  ``||d||_Q = sqrt((1 - rho) sum d_s^2 + rho (sum d_s)^2) = w(n) sum d_s`` when every d_s = d.
  With unequal tails ``w(n) sum d_s <= ||d||_Q <= sum d_s`` (Cauchy-Schwarz with the uniform
  dual vector; the triangle inequality), so the rule is the root-sum-square estimate's linear
  minorant: exact for equal tails, lower when one stage dominates (safety then rests on the
  calibration below), never above the plain sum of stage p99s, which is F at rho = 1 (w = 1).
  One stage (n = 1, w = 1) keeps its own p99, and deterministic stages (d = 0) add exactly.
- Using n_s (the shortest path through s) instead of |P| only raises w_s on longer paths, so each
  path is charged at least w(|P|) per unit of tail; it keeps one coefficient per option in a DAG.
- ``max_s q_s``: a request is at least as slow as its slowest stage, so the end-to-end p99 is never
  below a stage's own p99; the candidates already drop options with q > SLO, which enforces it.
- rho(cv): stage latencies along a path are positively correlated (a burst of arrivals slows every
  stage it passes, more so the burstier the arrivals), and a stage's own p99 is sometimes
  optimistic, more so under bursty arrivals (one stage of optimality instance 20 at CV 1.5 and
  utilisation 0.08: 18.8 ms predicted, 21.7-26.6 ms simulated). The plain sum of stage p99s hides
  that error in its slack, so the rule keeps it where the error was found:
  ``rho = BASE_CORRELATION + (1 - BASE_CORRELATION) clip((cv^2 - 1) / (FULL_CORRELATION_SCV - 1), 0, 1)``,
  0.5 up to CV 1, rising linearly in the scv to 1 at CV 1.5 and beyond. Calibrated against the
  simulator (docs/benchmarks.md, "Latency model fidelity" and "Optimality"): at CV 0.5 rho = 0.25
  left a fidelity plan 11% optimistic and 0.5 at most 2%; at CV 1.5 any rho < 1 tried (0.5, 0.7)
  made an optimality plan miss its SLO (simulated / predicted 1.20).

Examples (rho = 0.5): w(1) = 1, w(2) = sqrt(0.75) = 0.8660, w(4) = sqrt(0.625) = 0.7906. A chain of
two stages with (m, q) = (10, 30) and (20, 40) ms: F = max(40, 10 + 0.866 * 20 + 20 + 0.866 * 20)
= 64.64 ms, against 70 ms for the sum of p99s.

- ``aggregate_accuracy``: product (independent errors compound), min (the weakest stage) or mean.
"""

from __future__ import annotations

import math
from typing import Mapping

from planner.spec import AccuracyAggregation, PipelineSpec

# rho(cv) of the module docstring: BASE_CORRELATION up to arrival scv 1, rising linearly in the scv
# to 1 (the plain sum of stage p99s) at FULL_CORRELATION_SCV (arrival CV 1.5) and beyond.
BASE_CORRELATION = 0.5
FULL_CORRELATION_SCV = 2.25


def stage_correlation(arrival_cv: float) -> float:
    """rho(cv): the correlation assumed between two stages' latencies at this arrival CV."""
    rise = (arrival_cv ** 2 - 1.0) / (FULL_CORRELATION_SCV - 1.0)
    return BASE_CORRELATION + (1.0 - BASE_CORRELATION) * min(1.0, max(0.0, rise))


def tail_weight(stages_on_path: int, rho: float) -> float:
    """w(n) = sqrt(rho + (1 - rho) / n): the charge per ms of tail excess on an n-stage path."""
    return math.sqrt(rho + (1.0 - rho) / max(1, stages_on_path))


def shortest_paths_through(spec: PipelineSpec) -> dict[str, int]:
    """n_s: the fewest stages on any source-to-sink path through each stage (two passes over the DAG)."""
    order = spec.topological_order()
    down: dict[str, int] = {}  # stages from a source to s, s included
    for name in order:
        down[name] = 1 + min((down[p] for p in spec.stage(name).after), default=0)
    children: dict[str, list[str]] = {name: [] for name in order}
    for name in order:
        for p in spec.stage(name).after:
            children[p].append(name)
    up: dict[str, int] = {}  # stages from s to a sink, s included
    for name in reversed(order):
        up[name] = 1 + min((up[c] for c in children[name]), default=0)
    return {name: down[name] + up[name] - 1 for name in order}


def stage_tail_weights(spec: PipelineSpec, rho: float | None = None) -> dict[str, float]:
    """w_s = w(n_s) for every stage (module docstring), at rho(spec.arrival_cv) unless ``rho`` is given."""
    r = stage_correlation(spec.arrival_cv) if rho is None else rho
    return {name: tail_weight(n, r) for name, n in shortest_paths_through(spec).items()}


def path_latency_ms(mean_ms: float, p99_ms: float, weight: float) -> float:
    """l_s = m_s + w_s (q_s - m_s), the stage's term in a path sum (mean capped at the p99)."""
    mean = min(mean_ms, p99_ms)
    return mean + weight * (p99_ms - mean)


def aggregate_accuracy(values: list[float], aggregation: AccuracyAggregation) -> float:
    if aggregation is AccuracyAggregation.PRODUCT:
        return math.prod(values)
    if aggregation is AccuracyAggregation.MIN:
        return min(values)
    return sum(values) / len(values)


def longest_path_ms(spec: PipelineSpec, stage_latency_ms: Mapping[str, float]) -> float:
    """max over source-to-sink paths P of sum_{s in P} l_s (a forward pass in topological order)."""
    finish: dict[str, float] = {}
    for name in spec.topological_order():
        start = max((finish[p] for p in spec.stage(name).after), default=0.0)
        finish[name] = start + stage_latency_ms[name]
    return max(finish[s] for s in spec.sinks())


def end_to_end_p99_ms(spec: PipelineSpec, stage_mean_ms: Mapping[str, float],
                      stage_p99_ms: Mapping[str, float], rho: float | None = None) -> float:
    """The pipeline's p99 F of the module docstring, from each stage's mean and p99 (ms)."""
    weights = stage_tail_weights(spec, rho)
    terms = {s: path_latency_ms(stage_mean_ms[s], stage_p99_ms[s], w) for s, w in weights.items()}
    return max(longest_path_ms(spec, terms), max(stage_p99_ms.values()))
