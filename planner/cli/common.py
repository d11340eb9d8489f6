"""What every ``pipeplan`` command shares: the typer app, the consoles, error exit, loading inputs.

The command modules (cli_plan, cli_sim, cli_tune, cli_profile) import from here and register their
commands on ``app``; planner/cli.py imports them, so nothing here imports a command module.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from planner.estimate.candidates import Sources
from planner.errors import PipeplanError
from planner.ilp.backends import SolverName
from planner.traces import TraceFormat

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Plan ML inference pipelines: the cheapest configuration that meets a p99 latency SLO.")
# Wide enough for the plan table when output is piped (rich assumes 80 columns then).
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


def _fail(exc: PipeplanError) -> None:
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def _load_request(spec_path: Path, profiles: Optional[Path], hardware: Optional[Path], solver: SolverName,
                  time_limit_s: Optional[float], record_timing: bool):
    from planner import io
    from planner.optimize import PlanRequest

    spec = io.load_spec(spec_path)
    profiles_path, catalog_path = io.resolve_inputs(spec_path, spec, profiles, hardware)
    catalog = io.load_catalog(catalog_path)
    table = io.load_profiles(profiles_path)
    return PlanRequest(
        spec=spec, catalog=catalog, profiles=table, solver=solver, time_limit_s=time_limit_s,
        sources=Sources(str(spec_path), str(profiles_path), str(catalog_path)),
        provenance=io.provenance(spec_path, profiles_path, catalog_path, table),
        record_timing=record_timing,
    )


def _read_trace_arg(path: Path, fmt: TraceFormat, seed: int, **options):
    import numpy as np

    from planner.io.traces import read_trace

    return read_trace(path, fmt, rng=np.random.default_rng(seed), **options)
