"""The ``pipeplan`` command line: parse arguments, call one library function, write, summarise.

The app and the helpers all commands share live in planner.cli_common; each command group has its own
module, imported here (in the order the commands are listed in --help) so that it registers on the app.
The names tests and scripts import from planner.cli are re-exported.
"""

from __future__ import annotations

import logging
import sys

# Importing a command module registers its commands; this order is the order of --help.
# isort: off
from planner import cli_plan  # noqa: F401  plan, demo
from planner import cli_sim  # noqa: F401  simulate, trace generate/convert/describe
from planner import cli_tune  # noqa: F401  tune
from planner import cli_profile  # noqa: F401  profile, profile-import
from planner import cli_emit  # noqa: F401  emit
from planner import cli_deploy  # noqa: F401  deploy, undeploy, loadtest, apply
# isort: on
from planner.cli_common import app, console, err_console
from planner.cli_plan import PARETO_HEADER, frontier_table, pareto_rows, plan_table, print_plan, print_verification

__all__ = ["PARETO_HEADER", "app", "console", "err_console", "frontier_table", "main", "pareto_rows", "plan_table",
           "print_plan", "print_verification"]


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
