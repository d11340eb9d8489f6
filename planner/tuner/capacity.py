"""Capacity honesty: profile rows whose throughput is capped by the load offered while profiling.

A profiler that offers a fixed load (IPA offered 20 requests/s for 60 s) measures at most that load
as throughput: every cell that could serve more reads the same number. Planned from it, a fast
replica looks no faster than a slow one, and the planner buys replicas it does not need.

Detection, per (model, variant, hardware): let ``top`` be the largest measured throughput of its
batch sizes, and ``offered`` the offered load (by default the largest throughput of any row of the
model: where a fixed load capped many cells, they all read it). A row is *capped* when

- ``top`` is within ``tolerance`` of ``offered`` and at least two batch sizes measured within
  ``tolerance`` of ``top`` (throughput flat across batch sizes at the offered load: the load, not
  the model, set it), the row among them; and
- its latency says it could serve more: ``b * 1000 / latency_p50_ms > (1 + tolerance) * throughput``.

A capped row is planned from its batch size and latency, ``throughput = b * 1000 / latency_p50_ms``
(items/s, back to back). Batch sizes above ``top * fill_s`` items could not fill during profiling
(at ``top`` requests/s a queue collects ``top * fill_s`` items within the profiler's batch timeout
``fill_s``; IPA's was 1 s), so their latencies are of smaller batches: in a capped group those rows
are dropped (the planner plans a truncated sweep with the batch sizes it has). Every change is
returned as a :class:`CapacityNote`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from planner.optimize import PlanRequest
from profiler.schema import ProfileRow, ProfileTable


@dataclass(frozen=True)
class CapacityNote:
    """One (model, variant, hardware) whose capped rows were re-planned from latency."""

    model: str
    variant: str
    hardware: str
    offered_rps: float  # the flat top: what the profiler offered
    uncapped_batches: tuple[int, ...]  # rows now planned at batch / latency
    dropped_batches: tuple[int, ...]  # rows whose batch could not fill at the offered load

    def __str__(self) -> str:
        text = (f"{self.model}/{self.variant} on {self.hardware}: throughput flat at {self.offered_rps:.4g}/s across "
                f"batch sizes (capped by the offered profiling load); batch sizes "
                f"{list(self.uncapped_batches)} planned from batch size / p50 latency")
        if self.dropped_batches:
            text += f"; batch sizes {list(self.dropped_batches)} dropped (they could not fill at that load)"
        return text


def uncap_throughput(table: ProfileTable, tolerance: float = 0.05, fill_s: float = 1.0,
                     offered_rps: dict[str, float] | None = None) -> tuple[ProfileTable, tuple[CapacityNote, ...]]:
    """The table with capped rows planned from latency (see the module), and a note per changed group.

    ``offered_rps`` gives the profiling load per model where it is known; otherwise it is inferred.
    """
    groups: dict[tuple[str, str, str], list[ProfileRow]] = {}
    ceiling: dict[str, float] = {}
    for row in table.rows:
        groups.setdefault((row.model, row.variant, row.hardware), []).append(row)
        ceiling[row.model] = max(ceiling.get(row.model, 0.0), row.throughput_rps)
    offered = {**ceiling, **(offered_rps or {})}
    replaced: dict[tuple[str, str, str, int], ProfileRow | None] = {}
    notes = []
    for (model, variant, hardware), rows in groups.items():
        top = max(r.throughput_rps for r in rows)
        flat = [r for r in rows if r.throughput_rps >= (1.0 - tolerance) * top]
        if len(flat) < 2 or abs(top - offered[model]) > tolerance * offered[model]:
            continue
        capped = [r for r in flat if r.batch_size * 1000.0 / r.latency_p50_ms > (1.0 + tolerance) * r.throughput_rps]
        if not capped:
            continue
        dropped = tuple(sorted(r.batch_size for r in rows if r.batch_size > top * fill_s))
        uncapped = []
        for r in capped:
            if r.batch_size in dropped:
                continue
            replaced[r.key] = replace(r, throughput_rps=r.batch_size * 1000.0 / r.latency_p50_ms)
            uncapped.append(r.batch_size)
        for r in rows:
            if r.batch_size in dropped:
                replaced[r.key] = None
        notes.append(CapacityNote(model, variant, hardware, top, tuple(sorted(uncapped)), dropped))
    rows = tuple(replaced.get(r.key, r) for r in table.rows)
    return ProfileTable(tuple(r for r in rows if r is not None), table.metadata), tuple(notes)


def uncap_request(request: PlanRequest, tolerance: float = 0.05,
                  fill_s: float = 1.0) -> tuple[PlanRequest, tuple[CapacityNote, ...]]:
    """``request`` with its profile table's capped rows planned from latency; unchanged when none is capped."""
    table, notes = uncap_throughput(request.profiles, tolerance, fill_s)
    return (replace(request, profiles=table), notes) if notes else (request, ())
