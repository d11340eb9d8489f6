"""Path and accuracy maths of a pipeline DAG: the end-to-end latency of stage latencies, the
pipeline's accuracy from its stages'.

- ``longest_path_ms``: with stage latencies l_s, the end-to-end figure is the longest path,
  max over source->sink paths P of sum_{s in P} l_s (a forward pass in topological order).
- ``aggregate_accuracy``: product (independent errors compound), min (the weakest stage) or mean.
"""

from __future__ import annotations

import math

from planner.spec import AccuracyAggregation, PipelineSpec


def aggregate_accuracy(values: list[float], aggregation: AccuracyAggregation) -> float:
    if aggregation is AccuracyAggregation.PRODUCT:
        return math.prod(values)
    if aggregation is AccuracyAggregation.MIN:
        return min(values)
    return sum(values) / len(values)


def longest_path_ms(spec: PipelineSpec, stage_latency_ms: dict[str, float]) -> float:
    """End-to-end p99 as the slowest path of stage p99s through the DAG."""
    finish: dict[str, float] = {}
    for name in spec.topological_order():
        start = max((finish[p] for p in spec.stage(name).after), default=0.0)
        finish[name] = start + stage_latency_ms[name]
    return max(finish[s] for s in spec.sinks())
