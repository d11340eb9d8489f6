"""The resource classes of the hardware catalog: a light module (no pydantic), read by plans and the simulator."""

from __future__ import annotations

from enum import Enum


class ResourceClass(str, Enum):
    """How a kind of machine is bought: its price model and how it starts, stops and fails.

    - ``on_demand``: a VM billed per second of life at ``usd_per_hour``, ready after ``startup_s``.
    - ``spot``: the same VM at a lower ``usd_per_hour`` that the provider takes back: Poisson
      preemptions at ``preemptions_per_hour`` per replica, each replaced after ``replacement_s``
      (the replica finishes its running batch: AWS warns 2 minutes ahead, GCP 30 s).
    - ``serverless``: functions billed per use (``usd_per_second`` of busy time and/or
      ``usd_per_request``), idle at no cost; an instance idle for longer than ``keep_warm_s``
      (or never used) pays ``cold_start_ms`` before its next batch; at most ``max_concurrency``
      instances per stage.
    """

    ON_DEMAND = "on_demand"
    SPOT = "spot"
    SERVERLESS = "serverless"

    @property
    def is_vm(self) -> bool:
        return self is not ResourceClass.SERVERLESS
