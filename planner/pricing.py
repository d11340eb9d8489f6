"""What a stage costs per hour at its planned load, by the hardware's resource class. Pure.

A VM (on demand or spot) is billed for its life, busy or idle: ``replicas x usd_per_hour``. A
serverless instance is billed per use and nothing idle, so a stage on one costs what it bills at
the planned load ``L`` (items/s):

    usd_per_hour = 3600 (usd_per_second x L / c + usd_per_request x L)

with ``c`` one instance's full-batch capacity in items/s: ``L / c = rho_b x replicas`` instance-seconds
busy per second (``rho_b`` the stage's utilisation, planner.estimate.latency), whatever the
replica count (idle instances are free; the latency model sees more instances as shorter waits, and
the plan's risk sees their cold starts, planner.resources). The cold start is not billed (as on AWS
Lambda before its INIT billing), nor are partly filled batches' extra busy time: at batch size 1,
the serverless default, there is none.
"""

from __future__ import annotations

from typing import NamedTuple

from planner.resource_class import ResourceClass
from planner.spec import Hardware


class PriceTerms(NamedTuple):
    """A hardware entry's prices as the planner reads them (0 where the class does not bill that way)."""

    usd_per_replica_hour: float  # VMs: one replica for an hour; serverless: 0 (idle is free)
    usd_per_busy_s: float  # serverless: one instance busy for a second
    usd_per_item: float  # serverless: one item served


def price_terms(hw: Hardware) -> PriceTerms:
    if hw.resource_class is ResourceClass.SERVERLESS:
        return PriceTerms(0.0, float(hw.usd_per_second or 0.0), float(hw.usd_per_request or 0.0))
    return PriceTerms(float(hw.usd_per_hour), 0.0, 0.0)


def stage_usd_per_hour(replicas, load_items_per_s, replica_items_per_s, usd_per_replica_hour, usd_per_busy_s,
                       usd_per_item):
    """The module's formula; numbers or numpy arrays alike. For a VM (both per-use terms 0) it is
    exactly ``replicas x usd_per_replica_hour``."""
    return replicas * usd_per_replica_hour + 3600.0 * (usd_per_busy_s * load_items_per_s / replica_items_per_s
                                                        + usd_per_item * load_items_per_s)


def hardware_usd_per_hour(hw: Hardware, replicas: int, load_items_per_s: float, replica_items_per_s: float) -> float:
    """:func:`stage_usd_per_hour` for one stage on ``hw``."""
    return float(stage_usd_per_hour(replicas, load_items_per_s, replica_items_per_s, *price_terms(hw)))
