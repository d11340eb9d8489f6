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


# A variant below this share of its best sibling's accuracy has collapsed rather than traded accuracy
# for speed (the OCR recogniser's static int8 measures 0.018 where its base has 0.996; the dynamic
# int8 one, 0.83, is a trade and stays silent).
COLLAPSE_SHARE = 0.5


def collapsed_accuracy(plan: Plan, profiles: ProfileTable, share: float = COLLAPSE_SHARE) -> list[str]:
    """The plan's stages whose chosen variant's accuracy is below ``share`` of the most accurate variant
    of the same model in the profile table: more likely a broken quantisation or evaluation than a
    choice anyone meant. Each note names the variant, its best sibling, and how to rule it out."""
    best: dict[str, tuple[float, str]] = {}
    for row in profiles.rows:
        if row.accuracy > best.get(row.model, (-1.0, ""))[0]:
            best[row.model] = (row.accuracy, row.variant)
    notes = []
    for s in plan.stages:
        top, sibling = best.get(s.model, (s.accuracy, s.variant))
        if sibling != s.variant and s.accuracy < share * top:
            notes.append(
                f"stage '{s.stage}': variant {s.variant} measures accuracy {s.accuracy:.4g}, far below its sibling "
                f"{sibling} ({top:.4g}); its quantisation or evaluation may have collapsed. Check the profile, or "
                f"rule it out: list the stage's variants without it, or state an accuracy floor (objective "
                "min_accuracy)")
    return notes
