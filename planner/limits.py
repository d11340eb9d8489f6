"""Ranges and structural rules shared by the file models (planner.spec) and the plan reader
(planner.io), with no pydantic import: reading a plan file (``pipeplan simulate``) needs them, not
the spec models. Import the names from here.
"""

from __future__ import annotations

# Ranges of the file models' quantities (docs/formats.md lists them).
MAX_USD_PER_HOUR = 1e5
MIN_USD_PER_HOUR = 1e-6
MAX_SLO_MS = 1e8  # about 28 hours
MIN_SLO_MS = 1e-3
MAX_ARRIVAL_RPS = 1e7
MIN_ARRIVAL_RPS = 1e-6
MAX_ARRIVAL_CV = 100.0
MAX_FANOUT = 1e4
MIN_FANOUT = 1e-6
MAX_STARTUP_S = 1e6
MAX_BUDGET_USD_PER_HOUR = 1e9
MAX_WEIGHT = 1e6
MIN_WEIGHT = 1e-9
MAX_BATCH_SIZE = 1_000_000
MAX_REPLICAS = 4096
MAX_UNITS = 1_000_000
MAX_CORES = 4096
MAX_STAGES = 1000
MAX_INTERVAL_S = 10_000_000  # tuner decisions: the longest trace (planner.traces.MAX_TRACE_DURATION_S)
MAX_PEAK_WINDOW_S = 3600


def find_cycle_in(parents: dict[str, tuple[str, ...]]) -> list[str]:
    """A cycle in a name -> parents graph (first name repeated at the end), or [].

    Iterative depth-first search (an explicit stack: a 1,500-stage chain exhausted Python's recursion).
    """
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in parents:
        if root in state:
            continue
        path: list[str] = [root]
        state[root] = 1
        pending = [iter(parents.get(root, ()))]
        while pending:
            parent = next(pending[-1], None)
            if parent is None:
                state[path.pop()] = 2
                pending.pop()
            elif state.get(parent) == 1:
                return path[path.index(parent):] + [parent]
            elif parent not in state:
                state[parent] = 1
                path.append(parent)
                pending.append(iter(parents.get(parent, ())))
    return []
