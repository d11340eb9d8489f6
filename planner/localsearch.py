"""Local search under the simulator: better neighbours of a verified plan (InferLine's fine-tuning).

The allowance search (planner.verify) visits only plans the model ranks best at some model SLO.
Where the model and the simulator rank configurations differently, the cheapest configuration that
really meets the SLO may be no model SLO's optimum. This search starts from the best verified plan
and leaves the model's ranking:

- the **space** of a stage is every configuration the candidate enumeration
  (planner.estimate.candidates) considers: variant x hardware x batch size x batch timeout
  (``timeouts_for``) x replicas, from the fewest whose full-batch capacity carries the load under
  ``max_utilization`` to ``max_replicas`` (and the hardware's ``max_units``), *without* the SLO filter
  and the dominance pruning: both rank by the model, which is what this search leaves;
- a **move** replaces one stage's configuration by another point of its space (one replica fewer,
  other hardware with the replicas that carry the load, another batch size or timeout, a cheaper
  variant), or, once no single move improves, two stages' at once: one made better under the
  objective (cheaper), the other faster under the model;
- a neighbour is **admissible** when the model finds it keeps every constraint but the SLO (per-stage
  utilisation <= ``max_utilization``, hardware units, the objective's accuracy floor and budget) and
  its model p99 is within ``max_allowance x SLO`` (the allowance search's own bound, so that no
  hopeless configuration is simulated); the simulator alone decides the SLO;
- each step ranks the admissible neighbours that beat the current plan under the spec's objective
  (``Objective.better``), best first, and simulates them in that order; the first whose simulated
  p99 <= SLO is the best feasible improvement of the neighbourhood and becomes the current plan.
  The search ends when no neighbour improves or the simulation budget is spent.

A configuration is skipped without simulating when a simulated one with the same configuration of
some stage and of all its ancestors showed that stage too slow (a request's latency is at least its
time from arrival to done at any stage it visits, and the simulator draws each stage from its own
seed stream, so that stage's input is the same): loss-free
for stages every request visits (fanout >= 1, no challenger share). With the run's per-stage
detail the bound is the p99 of the time from arrival to done at that stage, else its own time.

A neighbour becomes a Plan through planner.optimize.build_plan, the code that makes the ILP's plans,
and passes planner.recheck with the SLO check left out; its solver status is
``SolveStatus.LOCAL_SEARCH`` (not proven optimal).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from typing import Callable, Iterable, Iterator

from planner.errors import SolverError
from planner.estimate import flow
from planner.estimate import latency as lat
from planner.estimate.candidates import Option, stage_rows, timeouts_for
from planner.estimate.paths import aggregate_accuracy, longest_path_ms
from planner.ilp.program import Solution
from planner.optimize import PlanRequest, build_plan
from planner.plan import Plan, SolveStatus
from planner.pricing import hardware_usd_per_hour
from planner.recheck import recheck
from planner.routing import with_routes
from planner.sim import SimResult
from planner.sim.run import quantile
from planner.solve import Solved

_REL = 1e-6
# Pair moves combine this many of each stage's best single changes (cheaper on one side, faster
# under the model on the other): bounded work however large the stage spaces are.
_PAIR_SIDE = 24


@dataclass(frozen=True)
class StageConfig:
    """One point of a stage's space: the choice, its cost and its accuracy (the profile row's)."""

    stage: str
    choice: flow.StageChoice
    usd_per_hour: float
    accuracy: float

    def label(self) -> str:
        c = self.choice
        return f"{c.variant}@{c.hardware} b{c.batch_size} t{c.batch_timeout_ms:.3g} x{c.replicas}"


@dataclass(frozen=True)
class Neighbour:
    """A configuration of the whole pipeline (spec order), with the move that led to it."""

    configs: tuple[StageConfig, ...]
    cost_usd_per_hour: float
    accuracy: float
    move: str


# What the caller does with a plan: simulate it (or reuse an earlier result of the same
# configuration); None once the simulation budget is spent.
Probe = Callable[[Plan, str], "SimResult | None"]


class Space:
    """Every stage's configurations and the model checks of a neighbour (caches evaluations)."""

    def __init__(self, request: PlanRequest, max_allowance: float):
        self.request = request
        spec = request.spec
        self.spec, self.rows = spec, request.profiles.index()
        self.bound_ms = spec.slo_ms * max_allowance
        self.hardware = request.catalog.by_name()
        self.order = spec.topological_order()
        # Each stage's input depends on its own and its ancestors' configurations only.
        self.ancestry = {name: self._ancestry(name) for name in self.order}
        self._services: dict[tuple[str, str, str, int], lat.BatchService] = {}
        self.stages: dict[str, tuple[StageConfig, ...]] = {s.name: tuple(self._grid(s)) for s in spec.stages}
        self._evaluated: dict[tuple, dict[str, flow.Evaluated] | None] = {}
        self._model: dict[tuple, dict[str, flow.Evaluated]] = {}

    def _ancestry(self, name: str) -> tuple[str, ...]:
        """The stage and every stage upstream of it, in topological order."""
        upstream, todo = {name}, list(self.spec.stage(name).after)
        while todo:
            parent = todo.pop()
            if parent not in upstream:
                upstream.add(parent)
                todo.extend(self.spec.stage(parent).after)
        return tuple(k for k in self.order if k in upstream)

    def _grid(self, stage) -> Iterator[StageConfig]:
        spec = self.spec
        grouped = stage_rows(spec, stage, self.request.catalog, self.request.profiles, self.request.sources)
        load = spec.arrival_rps * stage.fanout * stage.champion_share
        batches = stage.batch_sizes or spec.batch_sizes
        max_replicas = stage.max_replicas or spec.max_replicas
        for (variant, hw_name), by_batch in sorted(grouped.items()):
            hw = self.hardware[hw_name]
            last = min(max_replicas, hw.max_units or max_replicas)
            for batch in batches:
                if batch not in by_batch:
                    continue
                service = flow.batch_service(by_batch, batches, batch)
                self._services[(stage.name, variant, hw_name, batch)] = service
                first = lat.first_useful_replicas(service, load, spec.max_utilization)
                if not first <= last:
                    continue
                replica_items_per_s = 1000.0 * batch / service.mean_ms[-1]
                for timeout_ms in timeouts_for(batch, load, spec.batch_timeout_quantiles):
                    for replicas in range(int(first), last + 1):
                        yield StageConfig(stage.name, flow.StageChoice(variant, hw_name, batch, timeout_ms, replicas),
                                          hardware_usd_per_hour(hw, replicas, load, replica_items_per_s),
                                          by_batch[batch].accuracy)

    # --- the current plan and its neighbours -----------------------------------------------------

    def of(self, plan: Plan) -> tuple[StageConfig, ...]:
        """The plan's configuration as points of the space (a plan's own timeout may lie off the grid)."""
        return tuple(StageConfig(s.stage, flow.StageChoice(s.variant, s.hardware, s.batch_size, s.batch_timeout_ms,
                                                           s.replicas), s.usd_per_hour, s.accuracy)
                     for s in plan.stages)

    def neighbour(self, configs: tuple[StageConfig, ...], move: str) -> Neighbour:
        return Neighbour(configs, sum(c.usd_per_hour for c in configs),
                         aggregate_accuracy([c.accuracy for c in configs], self.spec.accuracy), move)

    def _better(self, a: Neighbour, b: Neighbour) -> bool:
        return self.spec.objective.better((a.cost_usd_per_hour, a.accuracy), (b.cost_usd_per_hour, b.accuracy))

    def _ranked(self, items: Iterable[Neighbour]) -> list[Neighbour]:
        """Best first under the objective; ties in a fixed order (the configuration's labels)."""
        def compare(a: Neighbour, b: Neighbour) -> int:
            return -1 if self._better(a, b) else 1 if self._better(b, a) else 0
        stable = sorted(items, key=lambda n: tuple(c.label() for c in n.configs))
        return sorted(stable, key=functools.cmp_to_key(compare))

    def _changed(self, current: tuple[StageConfig, ...], i: int, new: StageConfig) -> tuple[StageConfig, ...]:
        return current[:i] + (new,) + current[i + 1:]

    def singles(self, current: Neighbour) -> list[Neighbour]:
        """Every one-stage move that beats ``current`` under the objective, best first."""
        out = []
        for i, old in enumerate(current.configs):
            for new in self.stages[old.stage]:
                if new.choice != old.choice:
                    n = self.neighbour(self._changed(current.configs, i, new),
                                       f"{old.stage}: {old.label()} -> {new.label()}")
                    if self._better(n, current):
                        out.append(n)
        return self._ranked(out)

    def pairs(self, current: Neighbour, singles: list[Neighbour]) -> list[Neighbour]:
        """Two-stage moves that beat ``current``: each single move (whether the model admitted it or
        not) with another stage made faster under the model (its best _PAIR_SIDE such changes with
        the plan as it is), best first."""
        faster = {j: self._faster(current.configs, j) for j in range(len(current.configs))}
        out = []
        for a in singles:
            i = next(k for k, (x, y) in enumerate(zip(a.configs, current.configs)) if x != y)
            for j, old_j in enumerate(a.configs):
                if j == i:
                    continue
                for fast in faster[j]:
                    n = self.neighbour(self._changed(a.configs, j, fast),
                                       f"{a.move}; {old_j.stage}: {old_j.label()} -> {fast.label()}")
                    if self._better(n, current):
                        out.append(n)
        return self._ranked(out)

    def _faster(self, configs: tuple[StageConfig, ...], j: int) -> list[StageConfig]:
        """Stage j's configurations the model rates faster than its one in ``configs`` (the other
        stages as they are), best under the objective first, at most _PAIR_SIDE."""
        old = configs[j]
        now_ms = self.model(configs)[old.stage].estimate.latency.total_ms
        def stage_ms(config: StageConfig) -> float:
            return self.model(self._changed(configs, j, config))[old.stage].estimate.latency.total_ms
        faster = [new for new in self.stages[old.stage] if new.choice != old.choice and stage_ms(new) < now_ms * (1 - _REL)]
        return [n.configs[0] for n in self._ranked([self.neighbour((c,), "") for c in faster])][:_PAIR_SIDE]

    # --- model checks and the plan ----------------------------------------------------------------

    def model(self, configs: tuple[StageConfig, ...]) -> dict[str, flow.Evaluated]:
        """The model's view of a configuration, every stage at the arrival scv it is passed."""
        key = tuple(c.choice for c in configs)
        if key not in self._model:
            self._model[key] = flow.evaluate(self.spec, self.rows, {c.stage: c.choice for c in configs})
        return self._model[key]

    def predicted_p99_ms(self, configs: tuple[StageConfig, ...]) -> float:
        return longest_path_ms(self.spec, {k: e.estimate.latency.total_ms for k, e in self.model(configs).items()})

    def evaluate(self, configs: tuple[StageConfig, ...]) -> dict[str, flow.Evaluated] | None:
        """The model's view of an admissible configuration; None when it breaks a constraint other than
        the SLO, or its model p99 exceeds max_allowance x SLO."""
        key = tuple(c.choice for c in configs)
        if key in self._evaluated:
            return self._evaluated[key]
        spec = self.spec
        evaluated = self.model(configs)
        ok = all(e.estimate.utilization <= spec.max_utilization * (1 + _REL) for e in evaluated.values())
        units: dict[str, int] = {}
        for c in configs:
            units[c.choice.hardware] = units.get(c.choice.hardware, 0) + c.choice.replicas
        ok = ok and all(self.hardware[h].max_units is None or n <= self.hardware[h].max_units for h, n in units.items())
        accuracy = aggregate_accuracy([c.accuracy for c in configs], spec.accuracy)
        floor = getattr(spec.objective, "min_accuracy", 0.0)
        budget = getattr(spec.objective, "budget_usd_per_hour", None)
        ok = ok and not (floor and accuracy < floor * (1 - _REL))
        ok = ok and not (budget is not None and sum(c.usd_per_hour for c in configs) > budget * (1 + _REL))
        ok = ok and self.predicted_p99_ms(configs) <= self.bound_ms
        self._evaluated[key] = evaluated if ok else None
        return self._evaluated[key]

    def plan(self, n: Neighbour, base: Plan) -> Plan:
        """The neighbour as a Plan, built as the ILP's plans are, re-checked except for the SLO."""
        request, spec = self.request, self.spec
        evaluated = self.evaluate(n.configs)
        assert evaluated is not None  # only admissible neighbours are planned
        options = {}
        for c in n.configs:
            stage, ch, e = spec.stage(c.stage), c.choice, evaluated[c.stage]
            service = self._services.get((c.stage, ch.variant, ch.hardware, ch.batch_size))
            if service is None:  # the starting plan's own configuration: same rule as the grid
                by_batch = {b: self.rows[(stage.model, ch.variant, ch.hardware, b)]
                            for b in (stage.batch_sizes or spec.batch_sizes)
                            if (stage.model, ch.variant, ch.hardware, b) in self.rows}
                service = flow.batch_service(by_batch, stage.batch_sizes or spec.batch_sizes, ch.batch_size)
            options[c.stage] = Option(
                stage=c.stage, model=stage.model, variant=ch.variant, hardware=ch.hardware,
                batch_size=ch.batch_size, batch_timeout_ms=ch.batch_timeout_ms, replicas=ch.replicas,
                accuracy=c.accuracy, usd_per_hour=c.usd_per_hour,
                capacity_items_per_s=ch.replicas * 1000.0 * ch.batch_size / service.mean_ms[-1],
                load_items_per_s=spec.arrival_rps * stage.fanout * stage.champion_share,
                utilization=e.estimate.utilization, latency=e.estimate.latency, latency_ms=e.estimate.latency.total_ms,
                mean_batch=e.estimate.mean_batch, request_scv_in=e.request_scv_in, request_scv_out=e.request_scv_out)
        value = spec.objective.value(n.cost_usd_per_hour, n.accuracy)
        solution = Solution({}, SolveStatus.LOCAL_SEARCH, value, None, 0.0, base.solver.name)
        plan = build_plan(request, Solved(options, solution))
        # The simulator owns the SLO; every other constraint and the model's figures are re-checked.
        unbound = spec.model_copy(update={"slo_ms": max(spec.slo_ms, plan.predicted_p99_ms)})
        problems = recheck(plan, unbound, request.catalog, request.profiles)
        if problems:
            raise SolverError("a local-search plan disagrees with the latency model: " + "; ".join(problems)
                              + ". This is a bug in pipeplan; please report it with the spec, profiles and catalog.")
        return with_routes(request, plan)

    # --- the loss-free skip -----------------------------------------------------------------------

    def prefixes(self, configs: tuple[StageConfig, ...], result: SimResult) -> list[tuple]:
        """What a simulated result rules out: (stage, configurations of it and its ancestors) for each
        stage every request visits where the p99 of the time from arrival to done there (with the
        result's per-stage detail; else the time at the stage) exceeds the SLO."""
        by_name = {c.stage: c.choice for c in configs}
        slo_ms = self.spec.slo_ms
        if result.detail is not None:
            reached = {name: np.where(np.isnan(run.completion_ms), np.inf, run.completion_ms - result.arrival_ms)
                       for name, run in zip((st.stage for st in result.stages), result.detail)}
            slow = {name for name, t in reached.items() if quantile(t, 0.99, overwrite=True) > slo_ms}
        else:
            slow = {s.stage for s in result.stages if s.p99_latency_ms > slo_ms}
        out = []
        for name in self.order:
            stage = self.spec.stage(name)
            if name in slow and stage.fanout >= 1.0 and stage.champion_share >= 1.0:
                out.append((name, tuple(by_name[k] for k in self.ancestry[name])))
        return out

    def ruled_out(self, configs: tuple[StageConfig, ...], bad: set[tuple]) -> bool:
        by_name = {c.stage: c.choice for c in configs}
        return any((name, tuple(by_name[k] for k in self.ancestry[name])) in bad for name in self.order)


@dataclass(frozen=True)
class LocalResult:
    """What the local search did: the best plan it holds (the start when no move helped), the moves
    accepted, and the simulations it asked for (fresh or reused)."""

    plan: Plan
    moves: tuple[str, ...]
    probes: int


class _Step:
    """One step of the search: simulate neighbours best first until one meets the SLO."""

    def __init__(self, space: Space, probe: Probe, start: Plan, bad: set[tuple]):
        self.space, self.probe, self.start, self.bad = space, probe, start, bad
        self.spent = False
        self.probes = 0

    def first_feasible(self, ranked: list[Neighbour]) -> tuple[Neighbour, Plan] | None:
        space, slo_ms = self.space, self.space.spec.slo_ms
        for n in ranked:
            if space.ruled_out(n.configs, self.bad) or space.evaluate(n.configs) is None:
                continue
            plan = space.plan(n, self.start)
            result = self.probe(plan, n.move)
            if result is None:
                self.spent = True
                return None
            self.probes += 1
            if result.summary.p99_ms <= slo_ms:
                return n, plan
            self.bad.update(space.prefixes(n.configs, result))
        return None


def improve(request: PlanRequest, start: Plan, probe: Probe, max_allowance: float, pairs: bool = True) -> LocalResult:
    """Best-improvement local search from the verified plan ``start`` (module docstring); ``probe``
    simulates a plan (or reuses a result) and returns None once the budget is spent."""
    space = Space(request, max_allowance)
    current_plan = start
    current = space.neighbour(space.of(start), "start")
    bad: set[tuple] = set()
    moves: list[str] = []
    probes = 0
    while True:
        step = _Step(space, probe, start, bad)
        singles = space.singles(current)
        found = step.first_feasible(singles)
        if found is None and not step.spent and pairs:
            # every single move (a failed one too: the second change may rescue it); a pair that a
            # simulated prefix rules out is skipped when it comes up
            found = step.first_feasible(space.pairs(current, singles))
        probes += step.probes
        if found is not None:
            current, current_plan = found
            moves.append(current.move)
        if found is None or step.spent:
            return LocalResult(current_plan, tuple(moves), probes)
