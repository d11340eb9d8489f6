"""Replay a trace open-loop against an HTTP endpoint and record every request (planner/loadgen).

:mod:`target` checks where the load may go and holds the prepared bodies; :mod:`sender` keeps the
trace's schedule and records each request; :mod:`result` writes the simulator's formats.
"""

from planner.loadgen.sender import Bounds, Outcome, Replay, replay
from planner.loadgen.target import Target, check_url, read_bodies

__all__ = ["Bounds", "Outcome", "Replay", "Target", "check_url", "read_bodies", "replay"]
