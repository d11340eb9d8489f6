"""Shared inputs of the report tests: real plans of the bundled examples, made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner import io
from planner.estimate.candidates import Sources
from planner.optimize import PlanRequest, make_plan
from tests.fixtures import CONFIGS, SYNTHETIC


def request_for(spec_path: Path) -> PlanRequest:
    spec = io.load_spec(spec_path)
    profiles_path, catalog_path = io.resolve_inputs(spec_path, spec, None, None)
    table = io.load_profiles(profiles_path)
    return PlanRequest(spec=spec, catalog=io.load_catalog(catalog_path), profiles=table,
                       sources=Sources(str(spec_path), str(profiles_path), str(catalog_path)),
                       provenance=io.provenance(spec_path, profiles_path, catalog_path, table))


@pytest.fixture(scope="session")
def ocr():
    """The measured OCR example (max_accuracy; its profiles have unstable rows)."""
    request = request_for(CONFIGS / "ocr.yaml")
    return request, make_plan(request)


@pytest.fixture(scope="session")
def video():
    """The synthetic video example (min_cost with an accuracy floor, capped GPUs)."""
    request = request_for(SYNTHETIC / "video.yaml")
    return request, make_plan(request)
