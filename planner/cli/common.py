"""What every ``pipeplan`` command shares: the typer app and its one error boundary, the consoles,
option checks, and the summary-output helpers.

The command modules (plan, sim, tune, profile, and later emit, report) import from here and register
their commands on ``app``; planner/cli/__init__.py imports them, so nothing here imports a command module.

The error boundary (:class:`_Boundary`) wraps every command once:

- a pipeplan, profiler or file error (``PipeplanError``, ``ProfilerError``, ``ProfileSchemaError``,
  ``FileError``): its message, exit 2;
- Ctrl-C or SIGTERM: "interrupted", exit 130 (the output set was discarded on the way out);
- anything else is a bug: one line saying so and how to report it, exit 1; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import json
import math
import sys
import traceback
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from typer.core import TyperGroup
from typer.exceptions import TyperException

from planner import __version__
from planner.errors import PipeplanError
from pipeplan_files.errors import FileError
from profiler.errors import ProfilerError
from profiler.schema import ProfileSchemaError
from planner.traces import TraceFormat

# The error bases a user can act on: planner's, and the profiler's (which never imports planner).
USER_ERRORS = (PipeplanError, ProfilerError, ProfileSchemaError, FileError)

# Wide enough for the plan table when output is piped (rich assumes 80 columns then).
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


class _Boundary(TyperGroup):
    """The top-level group: every command runs inside this one error boundary."""

    def invoke(self, ctx):  # noqa: ANN001 (click's Context)
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):  # exits and usage errors (bad options): typer's
            raise
        except USER_ERRORS as exc:
            err_console.print("[bold red]error:[/] ", end="", highlight=False)
            err_console.print(str(exc), highlight=False, soft_wrap=True, markup=False)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted; no output was written.", highlight=False)
            raise typer.Exit(code=130) from None
        except BrokenPipeError:
            raise  # the reader went away; planner.cli.main ends quietly
        except Exception as exc:  # the boundary: anything else is a bug
            if ctx.params.get("debug"):
                err_console.print(traceback.format_exc(), highlight=False, markup=False)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            err_console.print(
                f"internal error ({type(exc).__name__}{': ' + first[:200] if first else ''}): this is a bug in "
                f"pipeplan {__version__}; please report it to the project's issue tracker with the command line, "
                "its input files and the output of the same command run as 'pipeplan --debug ...'.", highlight=False, markup=False,
                soft_wrap=True)
            raise typer.Exit(code=1) from None


app = typer.Typer(cls=_Boundary, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Plan ML inference pipelines: the cheapest configuration that meets a p99 latency SLO.")


def _version(value: bool) -> None:
    if value:
        console.print(f"pipeplan {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an internal error (for bug reports)."),
) -> None:
    """Plan ML inference pipelines: the cheapest configuration that meets a p99 latency SLO."""


# --- option checks (typer callbacks: a bad value is a usage error, exit 2) ------------------------

def positive(value: Optional[float]) -> Optional[float]:
    """A finite number > 0 (NaN and infinity included in the refusal)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"found {value!r}; give a finite number > 0.")
    return value


def non_negative(value: Optional[float]) -> Optional[float]:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise typer.BadParameter(f"found {value!r}; give a finite number >= 0.")
    return value


def seed_option(help_text: str):
    """The --seed option: numpy seeds are whole numbers >= 0."""
    return typer.Option(0, "--seed", min=0, max=2**63 - 1, help=help_text)


def count_option(default: int, flag: str, maximum: int, help_text: str):
    """A whole-number option >= 1 and <= ``maximum`` (a limit on work: rounds, simulations)."""
    return typer.Option(default, flag, min=1, max=maximum, help=help_text)


def trace_format_option(help_text: str = "Format of the trace file."):
    """The one trace-format flag, named the same on every command."""
    return typer.Option(TraceFormat.AUTO, "--trace-format", help=help_text)


# --- summaries -------------------------------------------------------------------------------------

def summary_console(to_stdout: bool) -> Console:
    """Where the human summary goes: standard error when an output is written to standard output."""
    return err_console if to_stdout else console


def print_json(value: Any) -> None:
    """A --json summary: one JSON document on standard output (sorted keys, finite numbers only)."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, allow_nan=False) + "\n")
    sys.stdout.flush()


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN or infinity: such a value is written as null."""
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def check_json_with_stdout(as_json: bool, *targets: Optional[Path]) -> None:
    if as_json and any(t is not None and str(t) == "-" for t in targets):
        raise typer.BadParameter("--json prints the summary on standard output; write the file elsewhere than '-'.")


def read_trace_arg(path: Path, fmt: TraceFormat, seed: int, **options):
    """Read a trace named on the command line (counts traces place arrivals with ``seed``)."""
    import numpy as np

    from planner.io.traces import read_trace

    return read_trace(path, fmt, rng=np.random.default_rng(seed), **options)
