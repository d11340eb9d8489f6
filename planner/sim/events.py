"""The reference engine: a discrete-event loop over the whole pipeline, event by event.

It exists to check the fast engine (planner.sim.fast), which must agree with it exactly, and to be
read: handling an event updates the state and returns the events it causes, which the loop pushes.
The heap key is explicit,
``(time_ms, priority, request, item, seq)``:

- at one instant, batch completions (priority 0) come first, so that every item they release is
  known before anything is queued; then arrivals (1), ordered by request and item index, the same
  tie rule as the fast engine's stable sort; then batch-timeout wake-ups (2);
- ``seq`` (a counter) makes keys unique, so payloads are never compared.

Replicas dispatch only after every event of an instant is handled, so a replica that frees at t
sees the items that arrive at t, as in the fast engine's ``t = max(R, ...)``.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

import numpy as np

from planner.sim.config import Prepared, QueueMode, RawRun, ServiceModel, StageRun


class Kind(IntEnum):
    """Event kinds; the value is the priority among events at the same time (lower first)."""

    BATCH_DONE = 0
    ARRIVAL = 1
    WAKE = 2


class EventKey(NamedTuple):
    time_ms: float
    priority: int
    request: int
    item: int
    seq: int


class Event(NamedTuple):
    """An event a handler asks for; the loop gives it a key and pushes it."""

    time_ms: float
    kind: Kind
    payload: tuple
    request: int = -1
    item: int = -1


@dataclass
class _Queue:
    servers: int
    waiting: deque = field(default_factory=deque)  # (position, request, ready_ms)
    busy: int = 0
    wake_ms: float = -math.inf
    batches: list = field(default_factory=list)  # (items, start_ms, end_ms)


class EventLoop:
    """One run of the reference engine over a Prepared input."""

    def __init__(self, prep: Prepared) -> None:
        self.prep = prep
        n = prep.arrival_ms.size
        self.n = n
        self.heap: list[tuple[EventKey, tuple]] = []
        self.seq = itertools.count()
        self.children = [[c for c, s in enumerate(prep.stages) if j in s.parents] for j in range(len(prep.stages))]
        self.queues = []
        for stage in prep.stages:
            if prep.queue_mode is QueueMode.CENTRAL:
                self.queues.append([_Queue(stage.replicas)])
            else:
                self.queues.append([_Queue(1) for _ in range(stage.replicas)])
        self.position = [0] * len(prep.stages)
        self.items: list[list[tuple]] = [[] for _ in prep.stages]  # per position: (request, ready, start, end, batch)
        self.remaining = [dict() for _ in prep.stages]
        self.dropped = [set() for _ in prep.stages]
        self.parents_done = [dict() for _ in prep.stages]
        self.ready_max = [dict() for _ in prep.stages]
        self.completion = [np.full(n, np.nan) for _ in prep.stages]
        self.sinks_done = dict()
        self.final = np.full(n, np.nan)
        self.batch_count = [[0] * len(q) for q in self.queues]

    # --- event plumbing ---
    def push(self, events: list[Event]) -> None:
        for e in events:
            key = EventKey(e.time_ms, int(e.kind), e.request, e.item, next(self.seq))
            heapq.heappush(self.heap, (key, e.payload))

    def run(self) -> RawRun:
        roots = [j for j, s in enumerate(self.prep.stages) if not s.parents]
        for r, t in enumerate(self.prep.arrival_ms.tolist()):
            for j in roots:
                self.push(self.enter(j, r, t))
        while self.heap:
            now = self.heap[0][0].time_ms
            while self.heap and self.heap[0][0].time_ms == now:
                key, payload = heapq.heappop(self.heap)
                if key.priority == Kind.BATCH_DONE:
                    self.push(self.on_batch_done(now, *payload))
                elif key.priority == Kind.ARRIVAL:
                    self.push(self.on_arrival(now, *payload))
                # WAKE only makes the loop stop at this instant; dispatch below does the work
            for j in range(len(self.prep.stages)):
                for q in range(len(self.queues[j])):
                    self.push(self.dispatch(now, j, q))
        return self.result()

    # --- state changes ---
    def enter(self, j: int, r: int, t: float) -> list[Event]:
        """Request r is ready at stage j at time t: its items arrive (or it passes through if it sends none)."""
        k = int(self.prep.items_per_request[j][r])
        if k == 0:
            return self.complete(j, r, t)
        self.remaining[j][r] = k
        return [Event(t, Kind.ARRIVAL, (j, r), request=r, item=i) for i in range(k)]

    def complete(self, j: int, r: int, t: float) -> list[Event]:
        """Request r is done at stage j: children whose parents are all done receive it."""
        self.completion[j][r] = t
        caused: list[Event] = []
        for c in self.children[j]:
            self.parents_done[c][r] = self.parents_done[c].get(r, 0) + 1
            self.ready_max[c][r] = max(self.ready_max[c].get(r, -math.inf), t)
            if self.parents_done[c][r] == len(self.prep.stages[c].parents):
                caused += self.enter(c, r, self.ready_max[c][r])
        if j in self.prep.sinks:
            done = self.sinks_done.get(r, 0) + 1
            self.sinks_done[r] = done
            if done == len(self.prep.sinks):
                self.final[r] = max(self.completion[s][r] for s in self.prep.sinks)
        return caused

    def on_arrival(self, now: float, j: int, r: int) -> list[Event]:
        pos = self.position[j]
        self.position[j] += 1
        self.items[j].append([r, now, math.nan, math.nan, -1])
        queues = self.queues[j]
        queues[pos % len(queues)].waiting.append((pos, r, now))
        return []

    def on_batch_done(self, now: float, j: int, q: int, taken: list) -> list[Event]:
        self.queues[j][q].busy -= 1
        caused: list[Event] = []
        for pos, r, _ in taken:
            caused += self.item_finished(j, r, now)
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
            head_ready = queue.waiting[0][2]
            if not (len(queue.waiting) >= stage.batch_size or now >= head_ready + stage.batch_timeout_ms):
                break
            taken = []
            while queue.waiting and len(taken) < stage.batch_size:
                pos, r, ready = queue.waiting.popleft()
                if timeout is not None and self.prep.arrival_ms[r] + timeout <= now:
                    self.dropped[j].add(r)
                    caused += self.item_finished(j, r, now)  # a dropped request causes nothing
                    continue
                taken.append((pos, r, ready))
            if not taken:
                continue
            m = len(taken)
            service = self.service_ms(j, m, taken[0][0])
            batch = self.batch_count[j][q]
            self.batch_count[j][q] += 1
            queue.batches.append((m, now, now + service))
            for pos, r, _ in taken:
                record = self.items[j][pos]
                record[2], record[3], record[4] = now, now + service, (q, batch)
            queue.busy += 1
            caused.append(Event(now + service, Kind.BATCH_DONE, (j, q, taken)))
        if queue.waiting:
            wake = queue.waiting[0][2] + stage.batch_timeout_ms
            if wake > now and wake != queue.wake_ms:
                queue.wake_ms = wake
                caused.append(Event(wake, Kind.WAKE, (j, q)))
        return caused

    def service_ms(self, j: int, m: int, first_position: int) -> float:
        stage = self.prep.stages[j]
        if self.prep.service is ServiceModel.LOGNORMAL:
            return stage.base_ms[m] * math.exp(stage.sigma[m] * float(self.prep.service_draws[j][first_position]))
        if self.prep.service is ServiceModel.EXPONENTIAL:
            return stage.base_ms[m] * float(self.prep.service_draws[j][first_position])
        return stage.base_ms[m]

    # --- output ---
    def result(self) -> RawRun:
        runs = []
        for j, queues in enumerate(self.queues):
            offsets = np.cumsum([0] + [len(q.batches) for q in queues])
            rows = self.items[j]
            batch = np.array([-1 if rec[4] == -1 else offsets[rec[4][0]] + rec[4][1] for rec in rows], dtype=np.int64)
            batches = [b for q in queues for b in q.batches]
            runs.append(StageRun(
                request=np.array([rec[0] for rec in rows], dtype=np.int64),
                ready_ms=np.array([rec[1] for rec in rows], dtype=np.float64),
                start_ms=np.array([rec[2] for rec in rows], dtype=np.float64),
                end_ms=np.array([rec[3] for rec in rows], dtype=np.float64),
                batch=batch,
                batch_start_ms=np.array([b[1] for b in batches], dtype=np.float64),
                batch_end_ms=np.array([b[2] for b in batches], dtype=np.float64),
                batch_items=np.array([b[0] for b in batches], dtype=np.int64),
                completion_ms=self.completion[j],
            ))
        return RawRun(tuple(runs), self.final)


def run_events(prep: Prepared) -> RawRun:
    """Simulate with the reference event loop."""
    return EventLoop(prep).run()
