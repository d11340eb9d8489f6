"""pipeplan's profiler: measures model variants and writes the profile table the planner reads."""
