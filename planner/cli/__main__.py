"""`python -m planner.cli`: the same as the `pipeplan` command."""

from planner.cli import main

main()
