"""Replay a trace open-loop: request i is sent at the trace's ``arrival_ms[i]``, whatever the answers do.

One asyncio loop with an aiohttp session (no connection limit, so a slow server never delays a
send: each request in flight holds its own connection). The loop sleeps until each send time; the
schedule is kept with ``asyncio.sleep``, so a send is late by the loop's timer resolution plus any
time the loop spent on answers. That lateness is the generator's own error: it is measured for
every request (``send_ms - arrival_ms``) and reported, so a run whose generator could not keep up
can be told from one whose server could not.

Latency is measured from the actual send to the end of the answer's body, on the monotonic clock.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from enum import Enum

import numpy as np

from planner.errors import DeployError
from planner.loadgen.target import Target
from planner.traces import Trace

log = logging.getLogger(__name__)


class Outcome(str, Enum):
    """How one request ended."""

    OK = "ok"  # HTTP 2xx
    HTTP_ERROR = "http_error"  # an answer with another status
    CONNECTION_ERROR = "connection_error"  # refused, reset, closed
    TIMEOUT = "timeout"  # no answer within the request timeout


OUTCOME_CODES = {o: i for i, o in enumerate(Outcome)}


@dataclass(frozen=True)
class Bounds:
    """A load test stops sending after ``max_requests`` requests or ``duration_s`` seconds of the trace."""

    max_requests: int | None = None
    duration_s: float | None = None
    request_timeout_s: float = 30.0
    lead_s: float = 0.2  # the schedule starts this long after the session is set up

    def __post_init__(self) -> None:
        if self.max_requests is not None and self.max_requests < 1:
            raise DeployError(f"--max-requests: found {self.max_requests}; send at least 1 request.")
        if self.duration_s is not None and not self.duration_s > 0:
            raise DeployError(f"--duration-s: found {self.duration_s}; give a positive number of seconds.")
        if not self.request_timeout_s > 0:
            raise DeployError(f"request timeout: found {self.request_timeout_s} s; it must be positive.")


@dataclass(frozen=True)
class Replay:
    """Per request (in trace order): scheduled and actual send offsets, latency, HTTP status, outcome."""

    url: str
    trace: str
    arrival_ms: np.ndarray  # the trace's send times, from the schedule's start
    send_ms: np.ndarray  # when the request really left, same origin
    latency_ms: np.ndarray  # send -> answer read; NaN unless the outcome is OK
    status: np.ndarray  # HTTP status; 0 without an answer
    outcome: np.ndarray  # OUTCOME_CODES values
    duration_ms: float  # the schedule's span (bounded trace duration)
    origin_s: float = 0.0  # time.monotonic() of the schedule's zero (to line up other events)

    @property
    def requests(self) -> int:
        return int(self.arrival_ms.size)

    @property
    def failed(self) -> np.ndarray:
        return self.outcome != OUTCOME_CODES[Outcome.OK]

    @property
    def send_error_ms(self) -> np.ndarray:
        return self.send_ms - self.arrival_ms


def bounded_schedule(trace: Trace, bounds: Bounds) -> tuple[np.ndarray, float]:
    """The send offsets the bounds keep, and the span they cover (ms)."""
    arrivals = trace.arrival_ms
    duration = trace.duration_ms
    if bounds.duration_s is not None:
        duration = min(duration, bounds.duration_s * 1000.0)
        arrivals = arrivals[arrivals < duration]
    if bounds.max_requests is not None:
        arrivals = arrivals[: bounds.max_requests]
    return np.asarray(arrivals, dtype=np.float64), float(duration)


async def _replay(target: Target, schedule_ms: np.ndarray, bounds: Bounds,
                  stop: threading.Event | None) -> tuple[np.ndarray, ...]:
    import aiohttp

    n = schedule_ms.size
    send = np.full(n, np.nan)
    latency = np.full(n, np.nan)
    status = np.zeros(n, dtype=np.int64)
    outcome = np.full(n, OUTCOME_CODES[Outcome.CONNECTION_ERROR], dtype=np.int64)
    headers = {"Content-Type": target.content_type}
    timeout = aiohttp.ClientTimeout(total=bounds.request_timeout_s)
    clock = time.monotonic

    async def one(i: int, session: aiohttp.ClientSession, origin: float) -> None:
        body = target.bodies[i % len(target.bodies)]
        began = clock()
        send[i] = (began - origin) * 1000.0
        try:
            async with session.post(target.url, data=body, headers=headers) as response:
                await response.read()
                status[i] = response.status
                if 200 <= response.status < 300:
                    latency[i] = (clock() - began) * 1000.0
                    outcome[i] = OUTCOME_CODES[Outcome.OK]
                else:
                    outcome[i] = OUTCOME_CODES[Outcome.HTTP_ERROR]
        except asyncio.TimeoutError:
            outcome[i] = OUTCOME_CODES[Outcome.TIMEOUT]
        except aiohttp.ClientError as exc:
            log.debug("request %d: %s", i, exc)
            outcome[i] = OUTCOME_CODES[Outcome.CONNECTION_ERROR]

    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        origin = clock() + bounds.lead_s
        tasks = []
        for i, at_ms in enumerate(schedule_ms.tolist()):
            if stop is not None and stop.is_set():
                break
            delay = origin + at_ms / 1000.0 - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i, session, origin)))
        if tasks:
            await asyncio.gather(*tasks)
    sent = len(tasks)
    return origin, send[:sent], latency[:sent], status[:sent], outcome[:sent]


def replay(target: Target, trace: Trace, bounds: Bounds, stop: threading.Event | None = None) -> Replay:
    """Send the bounded trace to ``target`` open-loop and record every request.

    ``stop`` (set from another thread) ends the sending early; the requests sent are still awaited.
    """
    schedule, duration = bounded_schedule(trace, bounds)
    origin, send, latency, status, outcome = asyncio.run(_replay(target, schedule, bounds, stop))
    return Replay(url=target.url, trace=trace.name, arrival_ms=schedule[: send.size], send_ms=send,
                  latency_ms=latency, status=status, outcome=outcome, duration_ms=duration, origin_s=origin)
