"""The tuner's settings: the spec's ``tuner`` section (strict, bounded) and how CLI values override it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from planner.spec import TunerSpec
from planner.tuner.settings import MAX_UTILIZATION, PolicySettings, SettingOverrides, resolve, utilization_cap


def test_an_absent_section_gives_the_tuners_defaults():
    assert resolve(TunerSpec(), SettingOverrides()) == PolicySettings()
    assert utilization_cap(TunerSpec(), SettingOverrides()) == MAX_UTILIZATION == 0.97  # not the spec's 0.9


def test_the_cli_overrides_the_spec_which_overrides_the_default():
    section = TunerSpec(peak_window_s=7, margin=0.05, interval_s=20, max_utilization=0.95, switch_hysteresis=0.01,
                        burst_slots=8, spill_share_of_slo=0.2, grid_step=0.1, switch_amortize_s=100.0)
    settings = resolve(section, SettingOverrides())
    assert (settings.peak_window_s, settings.interval_s, settings.grid_step) == (7, 20, 0.1)
    assert (settings.predictive.margin, settings.predictive.switch_hysteresis,
            settings.predictive.switch_amortize_s) == (0.05, 0.01, 100.0)
    assert (settings.burst.slots, settings.burst.spill_share_of_slo) == (8, 0.2)
    assert utilization_cap(section, SettingOverrides()) == 0.95
    given = SettingOverrides(peak_window_s=3, margin=0.0, max_utilization=0.8)
    over = resolve(section, given)
    assert (over.peak_window_s, over.predictive.margin, over.interval_s) == (3, 0.0, 20)  # 0 given beats the spec
    assert utilization_cap(section, given) == 0.8


def test_a_spec_that_sets_max_utilization_keeps_it_in_the_tuner_unless_its_tuner_section_says_otherwise():
    assert utilization_cap(TunerSpec(), SettingOverrides(), spec_cap=0.7) == 0.7
    assert utilization_cap(TunerSpec(max_utilization=0.95), SettingOverrides(), spec_cap=0.7) == 0.95
    assert utilization_cap(TunerSpec(), SettingOverrides(max_utilization=0.8), spec_cap=0.7) == 0.8


@pytest.mark.parametrize("field, value, words", [
    ("peak_window_s", 0, "greater than or equal to 1"),
    ("peak_window_s", 2.5, "integer"),
    ("margin", True, "number"),
    ("margin", -0.1, "greater than or equal to 0"),
    ("max_utilization", 1.0, "less than 1"),
    ("interval_s", "10", "integer"),
    ("switch_amortize_s", float("inf"), "finite"),
    ("peak_windw_s", 5, "Extra inputs are not permitted"),
])
def test_the_section_is_strict_and_bounded(field, value, words):
    with pytest.raises(ValidationError, match=words) as info:
        TunerSpec.model_validate({field: value})
    assert field in str(info.value)
