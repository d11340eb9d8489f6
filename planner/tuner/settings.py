"""The tuner's settings: every sizing margin and decision threshold, with its unit and its default.

Times a user sets are in seconds (``_s``: they are how people state decision intervals and start-up
times); the tuner converts them once, with :data:`MS_PER_S`, into its one internal unit, milliseconds.
Rates are named by what they count: ``_req_per_s`` are pipeline requests per second, ``_items_per_s``
are items one stage receives per second (requests x the stage's fan-out). The plan's own fields keep
their names (``StagePlan.capacity_items_per_s`` is items/s of all the stage's replicas).

Where each default comes from is in docs/benchmarks.md ("The tuner's defaults": the candidate
settings measured on the whole benchmark set, IPA's world, the real traces and the burst traces;
"Bursts with real start-up" for the burst base). A pipeline spec may set them in its ``tuner:``
section (planner.spec.TunerSpec) and ``pipeplan tune``'s options override that (:func:`resolve`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

MS_PER_S = 1000.0


def ms(seconds: float) -> float:
    """Seconds (a setting, an edge value) in the tuner's internal unit, milliseconds."""
    return seconds * MS_PER_S


class PolicyKind(str, Enum):
    """The tuning policies (planner.tuner.registry.POLICIES maps each to its class)."""

    REACTIVE = "reactive"
    PREDICTIVE = "predictive"
    STATIC_PEAK = "static-peak"
    STATIC_MEAN = "static-mean"
    ORACLE = "oracle"
    BURST = "burst"  # predictive VMs + serverless for bursts (planner.tuner.burst); needs a serverless entry


# The best policy on docs/benchmarks.md's benchmark set ("The tuner's defaults"): burst wherever the
# catalog has serverless capacity for it, else this one (planner.tuner.policies.default_policy).
DEFAULT_POLICY = PolicyKind.PREDICTIVE


class ForecasterKind(str, Enum):
    """Which forecaster the predictive policy uses (planner.tuner.forecast)."""

    PEAK = "peak"  # recent-peak quantile and linear trend (numpy; the default)
    LAST = "last"  # the last interval's peak (a naive baseline)


@dataclass(frozen=True)
class ForecastSettings:
    kind: ForecasterKind = ForecasterKind.PEAK
    # Intervals of history; None: as many as the forecast horizon spans (the time a new replica needs
    # to come up plus one interval), so with instant reconfiguration the last interval's peak, with a
    # 60 s start-up at 10 s decisions 7 intervals. IPA looks back 2 minutes.
    lookback: int | None = None
    quantile: float = 0.9  # of the recent interval peaks: the level held against noise
    trend_weight: float = 1.0  # 0 disables the linear-trend term


@dataclass(frozen=True)
class ReactiveSettings:
    history_s: float = 60.0  # longest envelope window and how far back scale-up looks
    up_margin: float = 0.05  # plan this share above the envelope rate when scaling up
    down_window_s: float = 30.0  # InferLine: max 5 s rate over the last 30 s
    down_margin: float = 0.15  # plan this share above that rate when scaling down
    hysteresis: float = 0.20  # scale down only when the new rate is this share below the deployed one
    cooldown_s: float = 30.0  # no scale-down this soon after a scale-up
    drain_s: float = 30.0  # plan to drain an estimated backlog within this time


@dataclass(frozen=True)
class PredictiveSettings:
    forecast: ForecastSettings = field(default_factory=ForecastSettings)
    margin: float = 0.0  # plan this share above the forecast peak rate (0.05 cost more and gained nothing: docs/benchmarks.md)
    # A configuration switch is taken when the new plan's objective, charged for the switch, beats
    # keeping the configuration by more than ``switch_hysteresis`` (in the objective's own unit:
    # USD/h for min_cost, accuracy for max_accuracy, score for weighted). The switch's charge is
    # the old replicas' cost while the new ones load, spread over ``switch_amortize_s``.
    switch_hysteresis: float = 0.0
    switch_amortize_s: float = 300.0
    drain_s: float = 30.0  # plan to drain an estimated backlog within this time


class BaseSizing(str, Enum):
    """How the burst policy sizes its VM base (planner.tuner.burst)."""

    BREAK_EVEN = "break-even"  # the break-even quantile of the per-second rates over base_lookback_s (the default)
    FORECAST = "forecast"  # the predictive forecaster at base_quantile of whole-interval rates (trend included)


@dataclass(frozen=True)
class BurstSettings:
    slots: int = 32  # serverless instances per stage (at most the entry's max_concurrency)
    spill_share_of_slo: float = 0.1  # spill the queue's head to serverless when it would wait this share of the SLO
    base: BaseSizing = BaseSizing.BREAK_EVEN
    # break-even: the quantile of per-second rates over this many seconds; None: 1 - (VM / function
    # cost of a unit of capacity), planner.tuner.burst.break_even_quantile
    base_lookback_s: int = 30
    break_even_quantile: float | None = None
    # Add the backlog term (arrivals beyond the VMs' capacity) to the base's rate: off, since the
    # functions serve that overflow at once (the term counted it as a backlog and grew the base).
    base_backlog: bool = False
    # Plan the base for the inter-arrival CV measured in the last intervals (as the predictive policy);
    # off: for the spec's arrival_cv, since the pool takes the bursts that the CV measures.
    base_measure_cv: bool = False
    base_quantile: float = 0.5  # forecast: this quantile of the recent interval rates (predictive: 0.9)
    base_peak_window_s: int = 10  # forecast: each measured over this window (capped at the interval; predictive: 5 s)


@dataclass(frozen=True)
class PolicySettings:
    interval_s: int = 10  # seconds between decisions (whole seconds: traces are binned per second)
    # The interval peak rate's window (planner.tuner.forecast): the decision interval; 10 s beat 5 s
    # on the benchmark set (docs/benchmarks.md, "The tuner's defaults").
    peak_window_s: int = 10
    # Plan for the measured burstiness (CV of gaps within an interval; the oracle's own interval,
    # adaptive policies the largest of their last ``cv_intervals``) instead of the spec's arrival_cv.
    measure_cv: bool = True
    cv_intervals: int = 3
    grid_step: float = 0.05  # the plan cache's rate grid: a rate is planned at the next grid point up
    reactive: ReactiveSettings = field(default_factory=ReactiveSettings)
    predictive: PredictiveSettings = field(default_factory=PredictiveSettings)
    burst: BurstSettings = field(default_factory=BurstSettings)


@dataclass(frozen=True)
class SettingOverrides:
    """Settings given on the command line (None: not given); they override the spec's ``tuner`` section."""

    interval_s: int | None = None
    peak_window_s: int | None = None
    margin: float | None = None
    max_utilization: float | None = None
    switch_hysteresis: float | None = None
    switch_amortize_s: float | None = None
    grid_step: float | None = None
    burst_slots: int | None = None
    spill_share_of_slo: float | None = None


def resolve(section, overrides: SettingOverrides, forecast: ForecastSettings = ForecastSettings()) -> PolicySettings:
    """PolicySettings from the spec's ``tuner`` section (planner.spec.TunerSpec) and the CLI's overrides.

    Each setting is the CLI's value if given, else the spec's, else :class:`PolicySettings`' default.
    (``max_utilization`` is not a policy setting: see :func:`utilization_cap`.)
    """
    def pick(name: str, default):
        given = getattr(overrides, name)
        if given is not None:
            return given
        in_spec = getattr(section, name)
        return in_spec if in_spec is not None else default

    d = PolicySettings()
    predictive = PredictiveSettings(forecast=forecast, margin=pick("margin", d.predictive.margin),
                                    switch_hysteresis=pick("switch_hysteresis", d.predictive.switch_hysteresis),
                                    switch_amortize_s=pick("switch_amortize_s", d.predictive.switch_amortize_s),
                                    drain_s=d.predictive.drain_s)
    burst = BurstSettings(slots=pick("burst_slots", d.burst.slots),
                          spill_share_of_slo=pick("spill_share_of_slo", d.burst.spill_share_of_slo))
    return PolicySettings(interval_s=pick("interval_s", d.interval_s), peak_window_s=pick("peak_window_s",
                          d.peak_window_s), grid_step=pick("grid_step", d.grid_step), predictive=predictive,
                          burst=burst)


# The utilisation cap of the tuner's plans unless the spec's tuner section or the CLI sets one. It is
# not the spec's max_utilization (0.9 by default), which caps a static plan that must hold at its
# arrival_rps for as long as it runs; the tuner re-plans every interval for the peak it forecasts,
# and at 0.97 it met more targets at less cost on the benchmark set (docs/benchmarks.md, "The
# tuner's defaults").
MAX_UTILIZATION = 0.97


def utilization_cap(section, overrides: SettingOverrides, spec_cap: float | None = None) -> float:
    """The tuner's utilisation cap: the CLI's, else the spec's ``tuner.max_utilization``, else the
    spec's own ``max_utilization`` when the spec sets it (``spec_cap``: a user who lowered the
    static plan's cap on purpose keeps it in the tuner), else :data:`MAX_UTILIZATION`."""
    for value in (overrides.max_utilization, section.max_utilization, spec_cap):
        if value is not None:
            return value
    return MAX_UTILIZATION
