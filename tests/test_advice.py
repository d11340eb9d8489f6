"""Advice on a sound plan: a chosen variant whose accuracy collapsed is named, a trade is not."""

from __future__ import annotations

from dataclasses import replace

from planner import io
from planner.advice import collapsed_accuracy
from planner.optimize import make_plan
from tests.fixtures import CONFIGS, SYNTHETIC


def _with_recogniser(plan, variant: str, accuracy: float):
    stages = tuple(replace(s, variant=variant, accuracy=accuracy) if s.stage == "recognise" else s
                   for s in plan.stages)
    return replace(plan, stages=stages)


def test_the_collapsed_static_int8_recogniser_is_named_with_its_sibling():
    request = io.load_request(CONFIGS / "ocr.yaml")
    plan = make_plan(request)
    assert collapsed_accuracy(plan, request.profiles) == []  # the example's plan is sound
    notes = collapsed_accuracy(_with_recogniser(plan, "rec-int8s", 0.0181452), request.profiles)
    assert len(notes) == 1 and notes[0].startswith("stage 'recognise': variant rec-int8s")
    assert "sibling rec (0.996" in notes[0] and "min_accuracy" in notes[0]
    # the dynamic int8 recogniser (0.83 against 0.996) is a trade, not a collapse
    assert collapsed_accuracy(_with_recogniser(plan, "rec-int8d", 0.830645), request.profiles) == []


def test_no_bundled_synthetic_plan_is_flagged():
    for name in ("video", "ocr"):
        request = io.load_request(SYNTHETIC / f"{name}.yaml")
        assert collapsed_accuracy(make_plan(request), request.profiles) == []
