"""Estimation: the latency/queueing model, candidate options per stage, path and accuracy maths (pure)."""
