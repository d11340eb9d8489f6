"""``pipeplan demo``: the whole job on the bundled examples, offline, in a few minutes on 2 cores.

profile (a small live part of the OCR zoo) -> plan every bundled example from its committed
profiles -> verify the measured OCR plan on a generated bursty trace -> tune over that trace ->
emit configs for every engine -> one HTML report. Everything lands in ``--out`` at the end, all or
nothing (a folder pipeplan wrote is replaced whole); at the end it prints where everything is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import typer
from rich.table import Table

from planner.cli.common import app, console
from planner.cli.plan import PARETO_HEADER, frontier_table, pareto_rows, print_plan
from planner.errors import PipeplanError
from planner.plan import Plan, plan_to_json

if TYPE_CHECKING:
    from planner.solve import PlanRequest

# The example the later steps work on: the measured 3-stage OCR pipeline.
MAIN_EXAMPLE = "ocr.yaml"
LIVE_MANIFEST = "demo.manifest.yaml"
# The bursty trace: a two-state MMPP whose low and high rates straddle the spec's rate, long enough
# for a p99 claim (LoadGen's 459 requests above the p99 need ~46,000; the SLO check needs far fewer).
TRACE_S = 600.0
LOW_SHARE, HIGH_SHARE = 0.7, 1.6  # mean (0.7 x 60 + 1.6 x 30) / 90 = 1.0 x the spec rate
MEAN_LOW_S, MEAN_HIGH_S = 60.0, 30.0
SEED = 0


@dataclass(frozen=True)
class Planned:
    """One bundled example, planned: its optimal plan and cost-accuracy frontier."""

    heading: str | None  # None for a measured example; the SYNTHETIC banner otherwise
    spec_path: Path
    request: PlanRequest
    plan: Plan
    points: list[Plan]


def _is_pipeline_spec(path: Path) -> bool:
    """A YAML mapping with stages (catalogs and model manifests sit in configs/ too); unparseable files
    count, so that loading them reports the error."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return True
    return isinstance(data, dict) and "stages" in data


def example_specs(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.glob("*.yaml")) if _is_pipeline_spec(p)]


def _profiles_label(request) -> str:
    """Says whether a plan rests on measured or synthetic profiles (the table's own 'synthetic' header)."""
    if request.profiles.metadata.get("synthetic", "").lower() == "true":
        return f"[bold yellow]SYNTHETIC profiles, not measured[/] ({request.sources.profiles})"
    return f"measured profiles ({request.sources.profiles})"


def _named(spec_path: Path, exc: PipeplanError) -> PipeplanError:
    text = str(exc)
    return type(exc)(text if text.startswith(str(spec_path)) else f"{spec_path}: {text}")


class _Steps:
    """The progress display: one numbered line per step with its time, a spinner while it runs."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0
        self.started = time.perf_counter()

    def run(self, title: str, work: Callable[[], object]):
        self.done += 1
        console.rule(f"[bold]{self.done}/{self.total} {title}[/]", align="left")
        start = time.perf_counter()
        with console.status(f"{title} ..."):
            value = work()
        console.print(f"[dim]{title}: {time.perf_counter() - start:.1f} s (total {self.elapsed_s():.0f} s)[/]")
        return value

    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started


def _profile_live(manifest: Path, stage: Path, cache_dir: Path):
    from profiler.session import profile_manifest
    from profiler.table_io import write_profile_table

    folder = stage / "profile"
    folder.mkdir()
    result = profile_manifest(manifest, folder / "checkpoint.jsonl", cache_dir, quick=True, isolate=True)
    if result.table is None:
        raise PipeplanError(f"{manifest}: no point could be measured ({len(result.failures)} failed: "
                            + "; ".join(f.reason for f in result.failures[:2]) + ").")
    write_profile_table(result.table, folder / "anglecls.quick.csv")
    (folder / "checkpoint.jsonl").unlink(missing_ok=True)
    table = Table(title=f"measured now on this machine ({manifest.name}, --quick: 1 s per point)",
                  title_justify="left")
    for header in ("variant", "hardware", "batch", "p50 (ms)", "p99 (ms)", "items/s", "accuracy", "stable"):
        table.add_column(header, justify="left" if header in ("variant", "hardware") else "right")
    for r in result.table.rows:
        table.add_row(r.variant, r.hardware, str(r.batch_size), f"{r.latency_p50_ms:.3f}", f"{r.latency_p99_ms:.3f}",
                      f"{r.throughput_rps:.0f}", f"{r.accuracy:.4f}", "yes" if r.stable else "no")
    console.print(table)
    for f in result.failures:
        console.print(f"[yellow]failed:[/] {f.model}/{f.variant} on {f.hardware}: {f.reason}", highlight=False)
    return result


def _plan_all(configs: Path, stage: Path) -> list[Planned]:
    from planner import io
    from planner.optimize import frontier, make_plan

    synthetic = configs / "synthetic"
    groups = [(configs, stage / "plans", None),
              (synthetic, stage / "plans" / "synthetic",
               f"SYNTHETIC examples: profiles generated from a stated model, not measured (see {synthetic / 'README.md'})")]
    planned = []
    for folder, target, heading in groups:
        specs = example_specs(folder)
        if specs:
            target.mkdir(parents=True)
        for spec_path in specs:
            try:
                request = io.load_request(spec_path)
                plan = make_plan(request)
                points = frontier(request)
            except PipeplanError as exc:
                raise _named(spec_path, exc) from None
            (target / f"{spec_path.stem}.plan.json").write_text(plan_to_json(plan), encoding="utf-8")
            (target / f"{spec_path.stem}.pareto.csv").write_text(io.csv_text(PARETO_HEADER, pareto_rows(points)),
                                                                 encoding="utf-8")
            planned.append(Planned(heading, spec_path, request, plan, points))
    shown = set()
    for p in planned:
        if p.heading and p.heading not in shown:
            console.rule(f"[bold yellow]{p.heading}[/]")
            shown.add(p.heading)
        console.print(f"[bold]{p.spec_path}[/]: {_profiles_label(p.request)}", highlight=False)
        print_plan(p.plan, None, p.request.profiles)
        console.print(frontier_table(p.points))
    return planned


def _bursty_trace(rate_rps: float, stage: Path):
    import numpy as np

    from planner import traces
    from planner.io.traces import trace_to_csv_text

    trace = traces.mmpp(LOW_SHARE * rate_rps, HIGH_SHARE * rate_rps, MEAN_LOW_S, MEAN_HIGH_S, TRACE_S,
                        np.random.default_rng(SEED))
    (stage / "trace").mkdir()
    (stage / "trace" / "bursty.csv").write_text(trace_to_csv_text(trace), encoding="utf-8")
    s = traces.describe(trace)
    console.print(f"MMPP {LOW_SHARE:g}x / {HIGH_SHARE:g}x the spec's {rate_rps:g} rps (mean sojourns "
                  f"{MEAN_LOW_S:g} s / {MEAN_HIGH_S:g} s), {TRACE_S:g} s: {trace.requests} requests, mean "
                  f"{s.mean_rps:.2f} rps, peak {s.peak_rps:g} rps in the busiest second", highlight=False)
    return trace


def _verify(request, trace, stage: Path, name: str):
    from planner.errors import InfeasibleError
    from planner.verify import verify_plan

    try:
        plan, report = verify_plan(request, trace, seed=SEED)
    except InfeasibleError as exc:
        console.print(f"[yellow]no plan verified on the bursty trace:[/] {exc}", highlight=False)
        return None
    from planner.verifyreport import report_to_json

    (stage / "verify").mkdir()
    (stage / "verify" / f"{name}.verified.plan.json").write_text(plan_to_json(plan), encoding="utf-8")
    (stage / "verify" / f"{name}.verify.json").write_text(report_to_json(report), encoding="utf-8")
    from planner.cli.plan import print_verification

    print_verification(report)
    return plan


def _tune(request, trace, stage: Path) -> None:
    from planner import io
    from planner.tuner import PlanBook, PolicyKind, TuneSettings, compare, compare_rows
    from planner.tuner.report import COMPARE_HEADER, compare_csv_rows, summary_json, timeline_header, timeline_rows

    folder = stage / "tune"
    folder.mkdir()

    def write(result) -> None:
        target = folder / result.summary.policy
        target.mkdir()
        (target / "timeline.csv").write_text(io.csv_text(timeline_header(result), timeline_rows(result)),
                                             encoding="utf-8")
        (target / "summary.json").write_text(summary_json(result, {"trace_file": "bursty.csv", "scale": 1.0}),
                                             encoding="utf-8")

    kinds = (PolicyKind.ORACLE, PolicyKind.PREDICTIVE, PolicyKind.REACTIVE, PolicyKind.STATIC_PEAK)
    results = compare(PlanBook(request), trace, kinds, TuneSettings(seed=SEED), on_result=write)
    rows = compare_rows(request.spec, results)
    (folder / "compare.csv").write_text(io.csv_text(COMPARE_HEADER, compare_csv_rows(rows)), encoding="utf-8")
    from planner.cli.tune import _tune_table

    console.print(_tune_table(results, rows))


def _emit(planned: list[Planned], stage: Path, cache_dir: Path, shown: Callable[[Path], Path]) -> list[str]:
    from planner.cli.emit import emit_plan, print_results
    from planner.emit import EmitTarget

    made = []
    (stage / "emit").mkdir()
    for p in planned:
        if p.heading:  # synthetic catalogs have no model files to deploy
            continue
        manifest = p.spec_path.with_name(f"{p.spec_path.stem}.manifest.yaml")
        settings = p.spec_path.with_name("deploy.example.yaml")
        if not manifest.is_file():
            console.print(f"{p.spec_path.name}: no model manifest beside it, so no model files to deploy", highlight=False)
            continue
        plan_path = stage / "plans" / f"{p.spec_path.stem}.plan.json"
        out = stage / "emit" / p.spec_path.stem
        try:
            results = emit_plan(plan_path, EmitTarget.ALL, out, manifest, settings if settings.is_file() else None,
                                None, None, cache_dir)
        except PipeplanError as exc:
            console.print(f"[yellow]{p.spec_path.name}: emit skipped:[/] {exc}", highlight=False)
            continue
        console.print(f"[bold]{p.spec_path.name}[/]:", highlight=False)
        print_results(results, shown(out))
        made.append(p.spec_path.stem)
    return made


def _report(main: Planned, plan, trace, stage: Path) -> Path:
    from planner.io.report import read_tuner_runs, write_report
    from planner.report import ReportInputs, build_report
    from planner.report.build import frontier_points
    from planner.report.inputs import RequestLatencies
    from planner.sim import SimConfig, simulate

    sim = simulate(plan, trace, SimConfig(seed=SEED))
    tuner = read_tuner_runs(stage / "tune") if (stage / "tune").is_dir() else ()
    report = build_report(ReportInputs(
        plan=plan, request=main.request, frontier=frontier_points(main.points),
        simulated=RequestLatencies.from_sim(sim, "simulated on the demo's bursty trace"), tuner=tuner))
    write_report(report, stage / "report")
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"{len(report.figures)} figures: {', '.join(f.name for f in report.figures)}", highlight=False)
    return stage / "report" / "report.html"


def _missing_profile_extra() -> str | None:
    """Why the steps that touch model files cannot run here (the 'profile' extra is not installed), or None."""
    import importlib.util

    absent = [m for m in ("onnxruntime", "onnx", "rapidocr_onnxruntime") if importlib.util.find_spec(m) is None]
    return (f"{', '.join(absent)} not installed (pip install '.[profile]' installs them)" if absent else None)


@app.command()
def demo(
    configs: Path = typer.Option(Path("configs"), help="Folder with the example specs (the repository's configs/); "
                                 "specs in its synthetic/ sub-folder are planned after them."),
    out: Path = typer.Option(Path("reports/demo"), help="Folder for everything the demo makes (replaced as a "
                             "whole, at the end; its parent must exist)."),
    profile: bool = typer.Option(True, "--profile/--no-profile", help="Profile a small part of the OCR zoo live "
                                 "first (needs the 'profile' extra)."),
    cache_dir: Path = typer.Option(Path(".pipeplan-cache"), "--cache-dir", help="Built and quantised variants."),
    main_spec: Optional[str] = typer.Option(None, "--example", help="The example the verify, tune and report steps "
                                            f"use (a file name in CONFIGS); default: {MAIN_EXAMPLE}, else the first."),
) -> None:
    """The whole job on the bundled examples, offline: profile live -> plan every example -> verify on a
    bursty trace -> tune over it -> emit for every engine -> HTML report. Writes everything to OUT."""
    from pipeplan_files.write import atomic_folder

    if not example_specs(configs):
        raise PipeplanError(f"{configs}: no pipeline specs found; the examples ship with the repository, not the "
                            "installed package: run from the repository root or pass --configs.")
    if main_spec is not None and not (configs / main_spec).is_file():
        raise PipeplanError(f"--example: no {configs / main_spec}; give the file name of one of the specs in {configs}.")
    live = configs / LIVE_MANIFEST
    missing = _missing_profile_extra()
    if profile and (missing or not live.is_file()):
        console.print(f"[yellow]no live profile:[/] {missing or f'no {live} (it ships with the repository)'}; "
                      "the plans use the committed profiles", highlight=False)
        profile = False
    steps = _Steps(6 if profile else 5)
    with atomic_folder(out) as stage:
        final = lambda p: out / p.relative_to(stage)  # where a staged file will be once the demo is done
        if profile:
            steps.run("profile a small part of the OCR zoo live", lambda: _profile_live(live, stage, cache_dir))
        planned = steps.run("plan every bundled example (committed profiles)", lambda: _plan_all(configs, stage))
        measured = [p for p in planned if p.heading is None] or planned
        wanted = configs / (main_spec or MAIN_EXAMPLE)
        main = next((p for p in measured if p.spec_path == wanted), measured[0])
        main_path = main.spec_path
        trace = _bursty_trace(main.request.spec.arrival_rps, stage)
        verified = steps.run(f"verify the {main_path.stem} plan on a bursty trace (simulation)",
                             lambda: _verify(main.request, trace, stage, main_path.stem))
        steps.run(f"tune {main_path.stem} over the bursty trace (policies vs the hindsight oracle)",
                  lambda: _tune(main.request, trace, stage))
        if missing:
            console.print(f"[yellow]no deployment files:[/] {missing}", highlight=False)
            emitted = steps.run("emit deployment configs for every engine", lambda: [])
        else:
            emitted = steps.run("emit deployment configs for every engine",
                                lambda: _emit(planned, stage, cache_dir, final))
        page = final(steps.run(f"write the report of the {main_path.stem} plan",
                               lambda: _report(main, verified or main.plan, trace, stage)))
    where = Table(title=f"pipeplan demo: everything is in {out} ({steps.elapsed_s():.0f} s)", title_justify="left")
    where.add_column("what")
    where.add_column("where")
    if profile:
        where.add_row("live profile (quick)", str(out / "profile" / "anglecls.quick.csv"))
    where.add_row("plans and frontiers", f"{out / 'plans'}/NAME.plan.json, NAME.pareto.csv (synthetic/ for synthetic)")
    where.add_row("bursty trace", str(out / "trace" / "bursty.csv"))
    if verified is not None:
        where.add_row("verified plan", str(out / "verify" / f"{main_path.stem}.verified.plan.json"))
    where.add_row("tuner timelines", f"{out / 'tune'}/POLICY/timeline.csv, compare.csv")
    for name in emitted:
        where.add_row(f"deployment files ({name})", f"{out / 'emit' / name}/<engine>/")
    where.add_row("HTML report", str(page))
    console.print(where)
