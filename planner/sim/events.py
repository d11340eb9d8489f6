"""The reference engine: a discrete-event loop over the whole pipeline, event by event.

It exists to check the stage-by-stage engine (planner.sim.engine), which must agree with it
exactly, and to be read: handling an event updates the state and returns the events it causes,
which the loop pushes. It shares no batching code with the kernel (planner.sim.kernel).

The heap key is explicit, ``EventKey(time_ms, priority, seq)``:

- at one instant, batch completions (priority 0) come first, so that every item they release is
  known before anything is queued; then arrivals (1); then batch-timeout wake-ups (2);
- ``seq`` (a counter) makes keys unique and keeps push order within a kind, so payloads are never
  compared.

Arrivals of one instant are gathered and joined to the queues only when the instant's events are
all handled, in (request, item) order: the same tie rule as the engine's stable sort, whatever
order the completions that caused them were handled in. Replicas then dispatch, so a replica that
frees at t sees the items that arrive at t, as in the kernel's ``t = max(f, ...)``.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple, Union

import numpy as np

from planner.sim.config import Prepared, QueueMode, ServiceModel, StageDraws, stage_draws
from planner.sim.engine import from_stage_runs, sinks_completion
from planner.sim.run import RawRun, StageRun


class Kind(IntEnum):
    """Event kinds; the value is the priority among events at the same time (lower first)."""

    BATCH_DONE = 0
    ARRIVAL = 1
    WAKE = 2


class EventKey(NamedTuple):
    time_ms: float
    priority: int  # Kind
    seq: int


class Waiting(NamedTuple):
    """An item in a queue."""

    position: int  # the item's place in the stage's arrival order (indexes its service draw)
    request: int
    ready_ms: float


class Arrival(NamedTuple):
    stage: int
    request: int
    item: int


class BatchDone(NamedTuple):
    stage: int
    queue: int
    taken: tuple[Waiting, ...]


class Wake(NamedTuple):
    stage: int
    queue: int


Payload = Union[Arrival, BatchDone, Wake]


class Event(NamedTuple):
    """An event a handler asks for; the loop gives it a key and pushes it."""

    time_ms: float
    kind: Kind
    payload: Payload


class BatchRecord(NamedTuple):
    items: int
    start_ms: float
    end_ms: float


@dataclass(slots=True)
class ItemRecord:
    """What happened to one item (filled in as the item is served)."""

    request: int
    ready_ms: float
    start_ms: float = math.nan
    end_ms: float = math.nan
    queue: int = -1  # -1: dropped or never served
    batch: int = -1  # index among its queue's batches


@dataclass
class Queue:
    servers: int
    waiting: deque[Waiting] = field(default_factory=deque)
    busy: int = 0
    wake_ms: float = -math.inf
    batches: list[BatchRecord] = field(default_factory=list)


class EventLoop:
    """One run of the reference engine over a Prepared input."""

    def __init__(self, prep: Prepared) -> None:
        self.prep = prep
        n = prep.arrival_ms.size
        stages = range(len(prep.stages))
        self.draws: list[StageDraws] = [stage_draws(prep, j) for j in stages]
        self.heap: list[tuple[EventKey, Payload]] = []
        self.seq = itertools.count()
        self.children = [[c for c, s in enumerate(prep.stages) if j in s.parents] for j in stages]
        self.queues: list[list[Queue]] = [
            [Queue(s.replicas)] if prep.queue_mode is QueueMode.CENTRAL else [Queue(1) for _ in range(s.replicas)]
            for s in prep.stages]
        self.items: list[list[ItemRecord]] = [[] for _ in stages]  # per stage, by position
        self.arrived: list[Arrival] = []  # this instant's arrivals, joined to the queues at its end
        self.remaining = [dict() for _ in stages]
        self.dropped = [set() for _ in stages]
        self.parents_done = [dict() for _ in stages]
        self.ready_max = [dict() for _ in stages]
        self.completion = [np.full(n, np.nan) for _ in stages]

    # --- event plumbing ---
    def push(self, events: list[Event]) -> None:
        for e in events:
            heapq.heappush(self.heap, (EventKey(e.time_ms, int(e.kind), next(self.seq)), e.payload))

    def run(self) -> tuple[tuple[StageRun, ...], np.ndarray]:
        roots = [j for j, s in enumerate(self.prep.stages) if not s.parents]
        for r, t in enumerate(self.prep.arrival_ms.tolist()):
            for j in roots:
                self.push(self.enter(j, r, t))
        while self.heap:
            now = self.heap[0][0].time_ms
            while self.heap and self.heap[0][0].time_ms == now:
                _, payload = heapq.heappop(self.heap)
                if isinstance(payload, BatchDone):
                    self.push(self.on_batch_done(now, payload))
                elif isinstance(payload, Arrival):
                    self.arrived.append(payload)
                # a Wake only makes the loop stop at this instant; dispatch below does the work
            self.join_arrivals(now)
            for j in range(len(self.prep.stages)):
                for q in range(len(self.queues[j])):
                    self.push(self.dispatch(now, j, q))
        return self.result()

    # --- state changes ---
    def enter(self, j: int, r: int, t: float) -> list[Event]:
        """Request r reaches stage j at time t and is ready there after the engine's overhead: its items
        arrive (or it passes through if it sends none)."""
        t = t + self.prep.engine_overhead_ms
        k = int(self.draws[j].items_per_request[r])
        if k == 0:
            return self.complete(j, r, t)
        self.remaining[j][r] = k
        return [Event(t, Kind.ARRIVAL, Arrival(j, r, i)) for i in range(k)]

    def complete(self, j: int, r: int, t: float) -> list[Event]:
        """Request r is done at stage j: children whose parents are all done receive it."""
        self.completion[j][r] = t
        caused: list[Event] = []
        for c in self.children[j]:
            self.parents_done[c][r] = self.parents_done[c].get(r, 0) + 1
            self.ready_max[c][r] = max(self.ready_max[c].get(r, -math.inf), t)
            if self.parents_done[c][r] == len(self.prep.stages[c].parents):
                caused += self.enter(c, r, self.ready_max[c][r])
        return caused

    def join_arrivals(self, now: float) -> None:
        """Queue this instant's arrivals, by stage, request and item (the tie rule)."""
        for a in sorted(self.arrived):
            pos = len(self.items[a.stage])
            self.items[a.stage].append(ItemRecord(a.request, now))
            queues = self.queues[a.stage]
            queues[pos % len(queues)].waiting.append(Waiting(pos, a.request, now))
        self.arrived.clear()

    def on_batch_done(self, now: float, done: BatchDone) -> list[Event]:
        self.queues[done.stage][done.queue].busy -= 1
        caused: list[Event] = []
        for w in done.taken:
            caused += self.item_finished(done.stage, w.request, now)
        return caused

    def item_finished(self, j: int, r: int, now: float) -> list[Event]:
        self.remaining[j][r] -= 1
        if self.remaining[j][r] == 0 and r not in self.dropped[j]:
            return self.complete(j, r, now)
        return []

    def dispatch(self, now: float, j: int, q: int) -> list[Event]:
        """Start every batch the batching rule allows now; returns their completions and a wake-up."""
        stage = self.prep.stages[j]
        queue = self.queues[j][q]
        timeout = self.prep.request_timeout_ms
        caused: list[Event] = []
        while queue.busy < queue.servers and queue.waiting:
            head_ready = queue.waiting[0].ready_ms
            if not (len(queue.waiting) >= stage.batch_size or now >= head_ready + stage.batch_timeout_ms):
                break
            taken: list[Waiting] = []
            while queue.waiting and len(taken) < stage.batch_size:
                w = queue.waiting.popleft()
                if timeout is not None and self.prep.arrival_ms[w.request] + timeout <= now:
                    self.dropped[j].add(w.request)
                    caused += self.item_finished(j, w.request, now)  # a dropped request causes nothing
                    continue
                taken.append(w)
            if not taken:
                continue
            end = now + self.service_ms(j, len(taken), taken[0].position)
            batch = len(queue.batches)
            queue.batches.append(BatchRecord(len(taken), now, end))
            for w in taken:
                record = self.items[j][w.position]
                record.start_ms, record.end_ms, record.queue, record.batch = now, end, q, batch
            queue.busy += 1
            caused.append(Event(end, Kind.BATCH_DONE, BatchDone(j, q, tuple(taken))))
        if queue.waiting:
            wake = queue.waiting[0].ready_ms + stage.batch_timeout_ms
            if wake > now and wake != queue.wake_ms:
                queue.wake_ms = wake
                caused.append(Event(wake, Kind.WAKE, Wake(j, q)))
        return caused

    def service_ms(self, j: int, m: int, first_position: int) -> float:
        stage = self.prep.stages[j]
        if self.prep.service is ServiceModel.LOGNORMAL:
            return stage.base_ms[m] * math.exp(stage.sigma[m] * float(self.draws[j].service[first_position]))
        if self.prep.service is ServiceModel.EXPONENTIAL:
            return stage.base_ms[m] * float(self.draws[j].service[first_position])
        return stage.base_ms[m]

    # --- output ---
    def result(self) -> tuple[tuple[StageRun, ...], np.ndarray]:
        runs = []
        for j, queues in enumerate(self.queues):
            offsets = np.cumsum([0] + [len(q.batches) for q in queues])
            rows = self.items[j]
            batches = [b for q in queues for b in q.batches]
            runs.append(StageRun(
                request=np.array([rec.request for rec in rows], dtype=np.int64),
                ready_ms=np.array([rec.ready_ms for rec in rows], dtype=np.float64),
                start_ms=np.array([rec.start_ms for rec in rows], dtype=np.float64),
                end_ms=np.array([rec.end_ms for rec in rows], dtype=np.float64),
                batch=np.array([-1 if rec.queue < 0 else offsets[rec.queue] + rec.batch for rec in rows],
                               dtype=np.int64),
                batch_start_ms=np.array([b.start_ms for b in batches], dtype=np.float64),
                batch_end_ms=np.array([b.end_ms for b in batches], dtype=np.float64),
                batch_items=np.array([b.items for b in batches], dtype=np.int64),
                completion_ms=self.completion[j],
            ))
        return tuple(runs), sinks_completion(self.prep, self.completion)


def run_events(prep: Prepared, keep_detail: bool = True) -> RawRun:
    """Simulate with the reference event loop."""
    runs, final = EventLoop(prep).run()
    return from_stage_runs(prep, runs, final, keep_detail)
