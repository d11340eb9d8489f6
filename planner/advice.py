"""Advice about a plan that is sound but rests on weak evidence: notes for the user, not errors.

The planner stays pure; the CLI prints these notes beside the plan.
"""

from __future__ import annotations

from planner.plan import Plan
from profiler.measure import P99_SAMPLES
from profiler.schema import ProfileTable


def unstable_choices(plan: Plan, profiles: ProfileTable) -> list[str]:
    """The plan's stages whose chosen profile row is flagged ``stable = false``: their figures did not
    pass the profiler's stability or sample-count rule, so the predicted p99 rests on a shaky number.
    Each note says which it was and what would help."""
    rows = profiles.index()
    notes = []
    for s in plan.stages:
        row = rows.get((s.model, s.variant, s.hardware, s.batch_size))
        if row is None or row.stable is not False:
            continue
        head = f"stage '{s.stage}': the profile row {s.variant} on {s.hardware} at batch {s.batch_size} is flagged unstable"
        if row.samples is not None and row.samples < P99_SAMPLES:
            notes.append(f"{head}: {row.samples} samples < {P99_SAMPLES} for a p99; re-profile it with a larger "
                         "method.max_point_s, or check the plan with --verify")
        else:
            spread = "" if row.latency_p50_spread_frac is None else f" by {row.latency_p50_spread_frac:.0%}"
            notes.append(f"{head}: its measurement rounds disagree{spread}; the machine may drift (python "
                         "benchmarks/bench_profiler.py drift); allow for that margin or check the plan with --verify")
    return notes
