"""What applying a new plan costs: replica windows with start-up delays, drains and make-before-break switches.

The rules (per stage, when a target plan is applied at time ``t``):

- A stage's *configuration* is (variant, hardware, batch size). The batch timeout of a
  configuration is fixed when it is first deployed (a queue setting; later plans for the same
  configuration only change replica counts).
- More replicas of the deployed configuration: new ones are launched at ``t`` and serve from
  ``t + startup_s + load_time_s`` (the hardware's start-up plus the variant's load time).
- Fewer: replicas still starting are cancelled first (newest first), then serving ones are
  stopped at ``t``; a stopped replica finishes the batch it is running.
- A different configuration: its replicas are launched at ``t``; the old configuration's replicas
  keep serving until the new ones are ready (make-before-break), then stop (and drain). Replicas
  still starting for a configuration that is no longer wanted are cancelled; replicas of the
  wanted configuration that are draining from an earlier switch are kept rather than relaunched.
- With ``instant`` (the hindsight oracle), new replicas are ready at ``t`` and charged from ``t``,
  and the old ones stop at ``t``: reconfiguration is free, so the oracle's cost is the sum over
  intervals of its optimal plans' cost (plus drains). It bounds from below any policy whose plans
  are sized for at least each interval's peak; a policy sized lower can undercut it where the
  trace is smoother than the planner's Poisson assumption (and then meets the SLO by luck).
- At time 0 the initial plan is deployed warm (ready at 0), the same for every policy.

Cost: every VM replica (on-demand or spot) is charged its hardware's price from launch until it
stops (or is preempted) or finishes its last batch, whichever is later, within the trace's duration.

Resource classes (planner.spec.ResourceClass):

- Spot replicas are windows like any other; the replay draws their preemptions
  (planner.sim.schedule.with_preemptions) into the schedule it simulates, and charges the
  preempted window to its preemption and the replacement from its launch. Policies are told the
  capacity of the deployment they asked for, not of the preempted one.
- A serverless *pool* (:meth:`Deployment.add_pool`) gives a stage ``slots`` instances that exist
  for the whole trace and cost nothing idle: the queue spills to them when the head would wait
  longer than ``spill_ms`` for a VM, a cold instance pays its cold start (planner.sim.kernel), and
  each batch they run is billed ``usd_per_second`` x its service time plus ``usd_per_request`` x
  its items, in the interval it starts (the cold start itself is not billed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dataclasses import replace

import numpy as np

from planner.plan import Plan, StagePlan
from planner.sim.config import SimConfig, StageModel
from planner.sim.schedule import (MeteredBatches, Preemptible, ReplicaWindow, Schedule, StageSchedule,
                                  stage_models)
from planner.resource_class import ResourceClass
from planner.spec import HardwareCatalog
from planner.tuner.planbook import StageKey
from planner.tuner.settings import ms

MS_PER_HOUR = ms(3600.0)


@dataclass(frozen=True)
class DeployedConfig:
    """One configuration a stage has run, with what the tuner needs to cost and score it."""

    key: StageKey
    model: StageModel
    usd_per_hour: float  # per replica
    accuracy: float
    delay_ms: float  # start-up plus load time of a new replica
    # Pipeline requests/s ONE replica serves back to back at full batches (StagePlan.capacity_items_per_s is
    # items/s of all the stage's replicas: divided by replicas and by the fan-out here).
    replica_capacity_req_per_s: float
    resource_class: ResourceClass = ResourceClass.ON_DEMAND
    preemptible: Preemptible | None = None  # spot: how its replicas are taken back
    usd_per_second: float = 0.0  # serverless: per busy second of one instance
    usd_per_request: float = 0.0  # serverless: per item

    @property
    def batch_timeout_ms(self) -> float:
        """The queue's batch timeout, fixed when the configuration was first deployed."""
        return self.model.batch_timeout_ms


@dataclass(frozen=True)
class Change:
    """What one application of a plan did."""

    launched: int
    stopped: int
    switched_stages: tuple[str, ...]
    targets: tuple[DeployedConfig, ...] = ()  # per stage of the plan: the configuration now wanted, as deployed

    @property
    def changed(self) -> bool:
        return bool(self.launched or self.stopped or self.switched_stages)


class _Window:
    """A replica window under construction (mutable while the replay runs)."""

    __slots__ = ("config", "launch_ms", "ready_ms", "stop_ms")

    def __init__(self, config: int, launch_ms: float, ready_ms: float):
        self.config, self.launch_ms, self.ready_ms, self.stop_ms = config, launch_ms, ready_ms, math.inf


def _delay_ms(stage: StagePlan) -> float:
    return ms(stage.startup_s + (stage.load_time_s or 0.0))


class Deployment:
    """The replicas of every stage over time, built up as plans are applied in time order."""

    def __init__(self, sim_config: SimConfig = SimConfig(), catalog: HardwareCatalog | None = None):
        self.sim_config = sim_config
        self.hardware = catalog.by_name() if catalog is not None else {}
        self.configs: dict[str, list[DeployedConfig]] = {}
        self.windows: dict[str, list[_Window]] = {}
        self.pool: dict[str, list[_Window]] = {}  # serverless instances, apart from the VMs
        self.order: tuple[str, ...] = ()

    def _deployed(self, stage: StagePlan, plan: Plan) -> DeployedConfig:
        model = stage_models(plan, self.sim_config)[stage.stage]
        per_replica = stage.usd_per_hour / stage.replicas
        capacity_req_per_s = stage.capacity_items_per_s / stage.replicas / stage.fanout  # items/s of all -> requests/s of one
        key = StageKey(stage.variant, stage.hardware, stage.batch_size)
        hw = self.hardware.get(stage.hardware)
        if hw is None or hw.resource_class is ResourceClass.ON_DEMAND:
            return DeployedConfig(key, model, per_replica, stage.accuracy, _delay_ms(stage), capacity_req_per_s)
        if hw.resource_class is ResourceClass.SPOT:
            return DeployedConfig(key, model, per_replica, stage.accuracy, _delay_ms(stage), capacity_req_per_s,
                                  hw.resource_class, Preemptible(hw.preemptions_per_ms, ms(hw.replacement_s or 0.0)))
        metered = replace(model, cold_start_ms=float(hw.cold_start_ms or 0.0), keep_warm_ms=ms(hw.keep_warm_s or 0.0),
                          metered=True)
        return DeployedConfig(key, metered, per_replica, stage.accuracy, float(hw.cold_start_ms or 0.0),
                              capacity_req_per_s, hw.resource_class, None, hw.usd_per_second or 0.0,
                              hw.usd_per_request or 0.0)

    def _config_index(self, stage: StagePlan, plan: Plan) -> int:
        known = self.configs.setdefault(stage.stage, [])
        key = StageKey(stage.variant, stage.hardware, stage.batch_size)
        for i, c in enumerate(known):
            if c.key == key:
                return i
        known.append(self._deployed(stage, plan))
        return len(known) - 1

    def add_pool(self, plan: Plan, slots: dict[str, int], spill_ms: float) -> None:
        """Give every stage of ``plan`` (a plan on serverless hardware) ``slots[stage]`` instances of its
        configuration for the whole trace; the queue spills to them after ``spill_ms`` (see the module)."""
        if not self.order:
            self.order = tuple(s.stage for s in plan.stages)
        for stage in plan.stages:
            index = self._config_index(stage, plan)
            known = self.configs[stage.stage]
            known[index] = replace(known[index], model=replace(known[index].model, spill_ms=spill_ms))
            self.windows.setdefault(stage.stage, [])
            self.pool.setdefault(stage.stage, []).extend(_Window(index, 0.0, 0.0) for _ in range(slots[stage.stage]))

    def apply(self, t_ms: float, plan: Plan, instant: bool = False, initial: bool = False) -> Change:
        """Move every stage towards ``plan`` from time ``t_ms`` (see the module's rules)."""
        if not self.order:
            self.order = tuple(s.stage for s in plan.stages)
        launched = stopped = 0
        switched: list[str] = []
        targets: list[DeployedConfig] = []
        for stage in plan.stages:
            index = self._config_index(stage, plan)
            config = self.configs[stage.stage][index]
            targets.append(config)
            windows = self.windows.setdefault(stage.stage, [])
            live = [w for w in windows if w.stop_ms > t_ms]
            same = [w for w in live if w.config == index and w.stop_ms == math.inf]
            draining = sorted((w for w in live if w.config == index and w.stop_ms < math.inf and w.ready_ms <= t_ms),
                              key=lambda w: w.ready_ms)
            other = [w for w in live if w.config != index]
            # Replicas of this configuration still draining from an earlier switch are kept instead.
            while len(same) < stage.replicas and draining:
                w = draining.pop(0)
                w.stop_ms = math.inf
                same.append(w)
            if initial or instant:
                launch, ready = t_ms, t_ms
            else:
                launch, ready = t_ms, t_ms + config.delay_ms
            for _ in range(stage.replicas - len(same)):
                w = _Window(index, launch, ready)
                windows.append(w)
                same.append(w)
                launched += 1
            if len(same) > stage.replicas:
                # Cancel replicas still starting before stopping serving ones; newest first.
                extra = sorted(same, key=lambda w: (w.ready_ms, w.launch_ms), reverse=True)[:len(same) - stage.replicas]
                for w in extra:
                    w.stop_ms = max(t_ms, w.launch_ms)
                    stopped += 1
                same = [w for w in same if w.stop_ms == math.inf]
            if any(w.stop_ms == math.inf for w in other):
                switched.append(stage.stage)
            # Other configurations serve until this one is fully ready (make-before-break); the
            # hand-over is re-set at every decision, so a second switch never leaves a gap.
            handover = max([t_ms] + [w.ready_ms for w in same])
            for w in other:
                stop = t_ms if w.ready_ms > t_ms else handover
                if stop != w.stop_ms:
                    stopped += int(w.stop_ms == math.inf)
                    w.stop_ms = max(w.launch_ms, stop)
        return Change(launched, stopped, tuple(switched), tuple(targets))

    def schedule(self) -> Schedule:
        """The replica windows so far (VMs, then any serverless pool), as the schedule simulator's input."""
        return Schedule(tuple(
            StageSchedule(name, tuple(c.model for c in self.configs[name]),
                          tuple(ReplicaWindow(w.config, w.launch_ms, w.ready_ms, w.stop_ms)
                                for w in self.windows[name] + self.pool.get(name, [])))
            for name in self.order))

    def preemptible(self) -> dict[str, tuple[Preemptible | None, ...]]:
        """Per stage, per configuration: how its replicas are preempted (None: never); empty without spot."""
        out = {name: tuple(c.preemptible for c in configs) for name, configs in self.configs.items()}
        return out if any(p is not None for v in out.values() for p in v) else {}

    def stage_cost_usd(self, name: str, windows: StageSchedule, last_end_ms: list[float], metered: MeteredBatches,
                       start_ms: float, end_ms: float, horizon_ms: float, vms: bool = True) -> float:
        """Cost of a stage over ``[start_ms, end_ms)``: each VM window alive from launch to max(stop, last
        batch end) at its hourly price (``vms=False``: left out), plus the metered batches that start in
        the interval."""
        configs = self.configs[name]
        total = 0.0
        for w, last in zip(windows.replicas if vms else (), last_end_ms):
            config = configs[w.config]
            if config.resource_class is ResourceClass.SERVERLESS:
                continue
            alive_to = min(horizon_ms, max(w.stop_ms, last))
            overlap = min(alive_to, end_ms) - max(w.launch_ms, start_ms)
            if overlap > 0:
                total += overlap * config.usd_per_hour / MS_PER_HOUR
        if metered.window.size:
            inside = (metered.start_ms >= start_ms) & (metered.start_ms < end_ms)
            if inside.any():
                cfg = np.array([w.config for w in windows.replicas], dtype=np.int32)[metered.window[inside]]
                per_s = np.array([c.usd_per_second for c in configs])[cfg]
                per_req = np.array([c.usd_per_request for c in configs])[cfg]
                busy_s = (metered.end_ms[inside] - metered.start_ms[inside]) / 1000.0
                total += float(np.sum(per_s * busy_s + per_req * metered.items[inside]))
        return total

    def capacity_req_per_s(self, t_ms: float) -> float:
        """Pipeline requests/s the replicas able to serve at ``t_ms`` carry (the slowest stage's)."""
        return min(sum(self.configs[name][w.config].replica_capacity_req_per_s for w in self.windows[name]
                       if w.ready_ms <= t_ms < w.stop_ms) for name in self.order)

    def serving(self, name: str, t_ms: float) -> int:
        """Replicas of a stage able to start a batch at ``t_ms``."""
        return sum(1 for w in self.windows[name] if w.ready_ms <= t_ms < w.stop_ms)
