"""Start, update and stop a plan on a real engine (this package so far holds the local Triton launcher)."""
