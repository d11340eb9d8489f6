"""The HTML report in a real browser: headless Chromium loads it, every figure renders, no console
errors, and a screenshot is taken. Skipped with a reason when no Chromium is installed (.ci/run
installs Debian's chromium)."""

from __future__ import annotations

import pytest

from planner.io.report import write_report
from planner.report import ReportInputs, build_report
from planner.sim import SimConfig, simulate
from planner.traces import poisson
from planner.report.inputs import RequestLatencies
from tests.report.browser import CANDIDATES, find_browser, render

import numpy as np

BROWSER = find_browser()
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(BROWSER is None, reason=f"no Chromium on PATH (looked for {', '.join(CANDIDATES)}); "
                                                         "apt-get install chromium")]


def test_the_report_loads_with_every_figure_and_no_console_errors(ocr, tmp_path):
    request, plan = ocr
    trace = poisson(plan.arrival_rps, 60.0, np.random.default_rng(0))
    simulated = RequestLatencies.from_sim(simulate(plan, trace, SimConfig(seed=0)))
    report = build_report(ReportInputs(plan=plan, request=request, simulated=simulated))
    write_report(report, tmp_path)
    result = render(tmp_path / "report.html", BROWSER)
    assert result.loaded
    assert result.errors == ()
    assert len(result.images) == len(report.figures)
    assert all(i["complete"] and i["naturalWidth"] > 0 for i in result.images), result.images
    assert result.screenshot_png.startswith(b"\x89PNG") and len(result.screenshot_png) > 10_000
    (tmp_path / "screenshot.png").write_bytes(result.screenshot_png)
