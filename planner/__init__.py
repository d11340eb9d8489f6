"""pipeplan's planner: specs, the latency model, the ILP and everything that consumes a Plan."""

__version__ = "0.1.0"
