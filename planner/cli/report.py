"""``pipeplan report`` (figures and one HTML page) and ``pipeplan explain`` (why this plan)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from planner.cli.common import app, console
from planner.errors import InputFileError


def _request_for(plan_file: Path, plan, spec: Optional[Path], profiles: Optional[Path], hardware: Optional[Path],
                 required: bool):
    """The PlanRequest the plan was made from (found through its provenance, or --spec), and notes."""
    from planner.io.report import changed_inputs, find_spec

    spec_path = spec or find_spec(plan_file, plan.provenance)
    if spec_path is None:
        recorded = (plan.provenance.get("spec") or {}).get("file", "?")
        message = (f"{plan_file}: cannot find the spec the plan was made from ('{recorded}' with the recorded "
                   "sha256, looked beside the plan, in the current folder and in configs/); pass --spec SPEC.")
        if required:
            raise InputFileError(message)
        return None, [message.split(": ", 1)[1] + " Without it the report has no what-ifs or explanation."]
    from planner import io

    request = io.load_request(spec_path, profiles, hardware)
    notes = changed_inputs(plan.provenance, spec_path, Path(request.sources.profiles), Path(request.sources.catalog))
    return request, notes


@app.command()
def report(
    plan_file: Path = typer.Argument(..., metavar="PLAN", help="Plan (JSON) from 'pipeplan plan'."),
    out: Path = typer.Option(..., "--out", help="Folder for report.html and figures/ (SVG and PNG)."),
    pareto: Optional[Path] = typer.Option(None, help="Frontier CSV from 'pipeplan plan --pareto'; default: "
                                          "computed from the spec."),
    sim: Optional[Path] = typer.Option(None, help="Per-request latencies of a simulated run "
                                       "('pipeplan simulate --requests')."),
    measured: Optional[Path] = typer.Option(None, help="Per-request latencies of a measured run (same CSV format)."),
    tune: Optional[Path] = typer.Option(None, "--tune", help="Output folder of 'pipeplan tune' (one policy or "
                                        "--compare)."),
    spec: Optional[Path] = typer.Option(None, help="The spec the plan was made from; default: found through the "
                                        "plan's provenance."),
    profiles: Optional[Path] = typer.Option(None, help="Profile table; default: the spec's."),
    hardware: Optional[Path] = typer.Option(None, help="Hardware catalog; default: the spec's."),
) -> None:
    """Write figures and one self-contained HTML page about PLAN: frontier, latency CDF, per-stage breakdown,
    profile curves, tuner timeline, what-ifs and the explanation."""
    from planner import io
    from planner.io.report import read_pareto, read_request_latencies, read_tuner_runs, write_report
    from planner.report import ReportInputs, build_report

    plan_value = io.load_plan(plan_file)
    request, notes = _request_for(plan_file, plan_value, spec, profiles, hardware, required=False)
    table = io.load_profiles(profiles) if profiles is not None and request is None else None
    inputs = ReportInputs(
        plan=plan_value, request=request, profiles=table,
        frontier=read_pareto(pareto) if pareto else None,
        simulated=read_request_latencies(sim, "simulated") if sim else None,
        measured=read_request_latencies(measured, "measured") if measured else None,
        tuner=read_tuner_runs(tune) if tune else (),
        notes=tuple(notes))
    result = build_report(inputs)
    written = write_report(result, out)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"{len(result.figures)} figures ({', '.join(f.name for f in result.figures)}) as SVG and PNG in "
                  f"{out / 'figures'}; page {written[0]}", highlight=False)


def print_explanation(plan, explanation) -> None:
    from planner.report.html import change_text

    table = Table(title=f"Constraints of the plan for '{plan.pipeline}' ({explanation.objective})",
                  title_justify="left")
    for header in ("constraint", "on", "limit", "plan", "slack", "unit", "status"):
        table.add_column(header, justify="left" if header in ("constraint", "on", "status") else "right")
    for c in explanation.constraints:
        table.add_row(c.kind.value, c.subject or "pipeline", f"{c.limit:.4g}", f"{c.used:.4g}", f"{c.slack:.4g}",
                      c.unit or "-", "[bold]binds[/]" if c.binding else "slack")
    console.print(table)
    cheapest = explanation.cheapest_change
    if cheapest is None:
        console.print("No constraint binds: relaxing them gives no better plan; only other variants or hardware would.")
    else:
        console.print(f"cheapest change that improves the plan: {change_text(cheapest, plan)}", highlight=False)
        for c in explanation.changes:
            if c is not cheapest:
                console.print(f"  also: {change_text(c, plan)}", highlight=False)
    stages = Table(title="Why each stage runs its option and not the next-cheaper one", title_justify="left")
    for header in ("stage", "chosen", "USD/h", "next-cheaper", "USD/h", "what it would break"):
        stages.add_column(header, justify="right" if header == "USD/h" else "left")
    for r in explanation.stages:
        stages.add_row(r.stage, r.chosen, f"{r.chosen_usd_per_hour:.4g}", r.alternative or "none (cheapest)",
                       "-" if r.alternative_usd_per_hour is None else f"{r.alternative_usd_per_hour:.4g}",
                       "; ".join(r.violations) or "-")
    console.print(stages)


@app.command()
def explain(
    plan_file: Path = typer.Argument(..., metavar="PLAN", help="Plan (JSON) from 'pipeplan plan'."),
    spec: Optional[Path] = typer.Option(None, help="The spec the plan was made from; default: found through the "
                                        "plan's provenance."),
    profiles: Optional[Path] = typer.Option(None, help="Profile table; default: the spec's."),
    hardware: Optional[Path] = typer.Option(None, help="Hardware catalog; default: the spec's."),
) -> None:
    """Say why PLAN is what it is: binding constraints, slack, the cheapest improving change, per-stage reasons."""
    from planner import io
    from planner.report.explain import explain as explain_plan

    plan_value = io.load_plan(plan_file)
    request, notes = _request_for(plan_file, plan_value, spec, profiles, hardware, required=True)
    explanation = explain_plan(request, plan_value)
    for note in notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    print_explanation(plan_value, explanation)
