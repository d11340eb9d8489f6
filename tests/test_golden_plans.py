"""Golden plan files for the synthetic examples (configs/synthetic/, fixed inputs): any change to a plan shows up as a reviewed diff.

Regenerate after an intended change with:  PIPEPLAN_UPDATE_GOLDEN=1 python -m pytest tests/test_golden_plans.py
"""

from __future__ import annotations

from tests.fixtures import plan_for, request_for

import os
from pathlib import Path

import pytest

from planner.ilp.backends import SolverName
from planner.plan import plan_from_dict, plan_to_dict, plan_to_json
from planner.optimize import make_plan

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("name", ["video", "ocr"])
def test_plan_matches_golden_file(name: str):
    text = plan_to_json(plan_for(name))
    golden = GOLDEN / f"{name}.plan.json"
    if os.environ.get("PIPEPLAN_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), f"plan for {name} changed; review and regenerate (see module docstring)"


@pytest.mark.parametrize("solver", [SolverName.HIGHS, SolverName.CPSAT])
def test_all_solvers_choose_the_golden_configuration(solver: SolverName):
    for name in ("video", "ocr"):
        ours = plan_to_dict(plan_for(name, solver))
        golden = plan_to_dict(plan_from_dict(__import__("json").loads((GOLDEN / f"{name}.plan.json").read_text())))
        ours.pop("solver"), golden.pop("solver")
        assert ours == golden


def test_plan_json_round_trips():
    plan = plan_for("ocr")
    assert plan_to_json(plan_from_dict(plan_to_dict(plan))) == plan_to_json(plan)


def test_plans_on_unstable_profile_rows_are_pointed_out():
    import dataclasses

    from planner.advice import unstable_choices
    from profiler.schema import ProfileTable

    request = request_for("video")
    result = make_plan(request)
    assert unstable_choices(result, request.profiles) == []  # synthetic rows carry no stable flag
    chosen = result.stages[0]
    key = (chosen.model, chosen.variant, chosen.hardware, chosen.batch_size)
    shaky = ProfileTable(rows=tuple(dataclasses.replace(r, stable=False, samples=40) if r.key == key else r
                                    for r in request.profiles.rows), metadata=request.profiles.metadata)
    notes = unstable_choices(result, shaky)
    assert len(notes) == 1
    assert f"stage '{chosen.stage}'" in notes[0] and "40 samples < 459" in notes[0] and "max_point_s" in notes[0]
    drifting = ProfileTable(rows=tuple(dataclasses.replace(r, stable=False, samples=900, latency_p50_spread_frac=0.3)
                                       if r.key == key else r for r in request.profiles.rows))
    notes = unstable_choices(result, drifting)
    assert "rounds disagree by 30%" in notes[0] and "max_point_s" not in notes[0]


def test_a_version_1_plan_file_is_read_with_its_rates_renamed(tmp_path):
    """Schema 2 renamed the per-stage items/s rates; a plan written by an older pipeplan still loads."""
    import json

    from planner.io import load_plan

    current = json.loads((GOLDEN / "ocr.plan.json").read_text())
    old = json.loads(json.dumps(current))
    old["schema_version"] = 1
    for stage in old["stages"]:
        stage["capacity_rps"] = stage.pop("capacity_items_per_s")
        stage["load_rps"] = stage.pop("load_items_per_s")
    path = tmp_path / "old.plan.json"
    path.write_text(json.dumps(old))
    assert plan_to_dict(load_plan(path)) == plan_to_dict(plan_from_dict(current))
