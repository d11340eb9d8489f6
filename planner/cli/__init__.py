"""The ``pipeplan`` command line: parse arguments, call one library function, write, summarise.

The app and the helpers all commands share live in planner.cli.common; each command group has its own
module, imported here (in the order the commands are listed in --help) so that it registers on the app.
The names tests and scripts import from planner.cli are re-exported.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

# Importing a command module registers its commands; this order is the order of --help.
# isort: off
from planner.cli import demo  # noqa: F401  demo
from planner.cli import plan  # noqa: F401  plan
from planner.cli import sim  # noqa: F401  simulate, trace generate/convert/describe
from planner.cli import tune  # noqa: F401  tune
from planner.cli import profile  # noqa: F401  profile, profile-import
from planner.cli import report  # noqa: F401  report, explain
from planner.cli import emit  # noqa: F401  emit
from planner.cli import deploy  # noqa: F401  deploy, undeploy, loadtest, apply
# isort: on
from planner.cli.common import app, console, err_console
from planner.cli.plan import PARETO_HEADER, frontier_table, pareto_rows, plan_table, print_plan, print_verification

__all__ = ["PARETO_HEADER", "app", "console", "err_console", "frontier_table", "main", "pareto_rows", "plan_table",
           "print_plan", "print_verification"]


def _terminate(signum, frame) -> None:  # noqa: ANN001 (signal handler signature)
    # SIGTERM takes the Ctrl-C path: output sets are discarded, solver children killed, temp files removed.
    raise KeyboardInterrupt


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        # The reader of our output went away (`pipeplan ... | head`): not an error of ours. Point
        # stdout at /dev/null so the interpreter's final flush does not raise again (Python docs, signal).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)


if __name__ == "__main__":
    main()
