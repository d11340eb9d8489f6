"""``pipeplan profile`` and ``pipeplan profile-import``: measure models, or import Triton measurements.

The profiler (and with it onnxruntime/torch) is imported inside the commands, so other commands stay light.
"""

from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from planner.cli.common import app, console, err_console, positive


@app.command()
def profile(
    manifest: Path = typer.Argument(..., help="Model manifest (YAML), see docs/formats.md."),
    out: Path = typer.Option(..., help="Profile table to write: .parquet or .csv."),
    quick: bool = typer.Option(False, "--quick", help="Short windows (fewer samples; more rows flagged unstable)."),
    hardware: Optional[list[str]] = typer.Option(None, "--hardware", help="Only these hardware settings of the manifest (repeatable)."),
    checkpoint: Optional[Path] = typer.Option(None, help="Resume file; default: OUT with '.checkpoint.jsonl' appended."),
    cache_dir: Path = typer.Option(Path(".pipeplan-cache"), "--cache-dir", help="Where built and quantised variants are kept."),
    fresh: bool = typer.Option(False, "--fresh", help="Discard the checkpoint and measure everything again."),
    early_stop: bool = typer.Option(False, "--early-stop", help="Stop a batch sweep when throughput gains < 5% over 4 steps."),
    isolate: bool = typer.Option(True, "--isolate/--in-process", help="Run the models in a worker process, so a "
                                 "runtime crash or hang fails one variant, not the run (default), or in this process."),
) -> None:
    """Measure every variant of MANIFEST per hardware setting and batch size; write the profile table.

    A rerun after a crash or Ctrl-C continues from the checkpoint; failed variants are reported
    and tried again.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from planner import io
    from profiler.errors import ProfilerError
    from profiler.session import profile_manifest
    from profiler.table_io import write_profile_table

    checkpoint = checkpoint or out.with_name(out.name + ".checkpoint.jsonl")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        # --out is checked before hours of measuring; the table is written only when all is done.
        with io.outputs({"--out": out}, stdout_ok=False) as files:
            with Progress(*columns, console=err_console, transient=False) as bar:
                task = bar.add_task("profiling", total=None)

                def on_progress(p) -> None:
                    bar.update(task, completed=p.done, total=p.total, description=p.label[:60].ljust(60))

                result = profile_manifest(manifest, checkpoint, cache_dir, quick=quick,
                                          hardware=tuple(hardware) if hardware else None, fresh=fresh,
                                          on_progress=on_progress, early_stop=early_stop or None, isolate=isolate)
            if result.table is None:
                raise ProfilerError(f"{manifest}: no point could be measured; see the failures above "
                                    f"({len(result.failures)} failed).")
            files.write(out, lambda tmp: write_profile_table(result.table, tmp))
    except KeyboardInterrupt:
        err_console.print(f"interrupted: every finished measurement is in {checkpoint}; run the same command "
                          f"again to continue ({out} was not written).", highlight=False)
        raise typer.Exit(130) from None
    for f in result.failures:
        err_console.print(f"[yellow]failed:[/] {f.model}/{f.variant} on {f.hardware}: {f.reason}", highlight=False)
    console.print(
        f"{len(result.table.rows)} rows written to {out} ({result.measured_rounds} point-rounds measured now, "
        f"{result.resumed_rounds} resumed, {result.unstable_points} unstable, {len(result.failures)} failed)",
        highlight=False,
    )


def _accuracies(items: Optional[list[str]]) -> dict[str, float]:
    """--accuracy-of VARIANT=ACCURACY pairs; a malformed one is refused, not skipped."""
    from profiler.errors import ProfilerError

    values: dict[str, float] = {}
    for item in items or ():
        name, sep, number = item.partition("=")
        try:
            value = float(number)
        except ValueError:
            value = math.nan
        if not sep or not name or not 0 < value <= 1:
            raise ProfilerError(f"--accuracy-of {item!r}: expected VARIANT=ACCURACY with an accuracy in (0, 1].")
        values[name] = value
    return values


class ImportFormat(str, Enum):
    PERF_ANALYZER = "perf-analyzer"
    MODEL_ANALYZER = "model-analyzer"


@app.command("profile-import")
def profile_import(
    kind: ImportFormat = typer.Argument(..., help="perf-analyzer (-f CSV) or model-analyzer (metrics-model-inference.csv)."),
    csv_path: Path = typer.Argument(..., help="The CSV to import."),
    out: Path = typer.Option(..., help="Profile table to write: .parquet or .csv."),
    hardware: str = typer.Option(..., help="Hardware catalog name these numbers were measured on, e.g. gpu-t4."),
    accuracy: Optional[float] = typer.Option(None, callback=positive, help="Accuracy of every imported variant."),
    accuracy_of: Optional[list[str]] = typer.Option(None, "--accuracy-of", help="VARIANT=ACCURACY (repeatable; model-analyzer)."),
    model: Optional[str] = typer.Option(None, help="Model name (perf-analyzer)."),
    variant: Optional[str] = typer.Option(None, help="Variant name (perf-analyzer)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="The -b batch size of the run (perf-analyzer)."),
    concurrency: Optional[float] = typer.Option(None, callback=positive,
                                                help="Take this concurrency level; default: the lowest measured."),
) -> None:
    """Turn perf_analyzer or Model Analyzer measurements into a profile table."""
    from planner import io
    from profiler.errors import ProfilerError
    from profiler.imports import import_model_analyzer, import_perf_analyzer
    from profiler.table_io import write_profile_table

    with io.outputs({"--out": out}, stdout_ok=False) as files:
        try:
            text = csv_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfilerError(f"{csv_path}: cannot read the file ({exc}).") from None
        if kind is ImportFormat.PERF_ANALYZER:
            if None in (model, variant, batch_size, accuracy):
                raise ProfilerError("perf-analyzer import needs --model, --variant, --batch-size and --accuracy "
                                    "(the CSV does not record them).")
            table = import_perf_analyzer(text, str(csv_path), model, variant, hardware, batch_size, accuracy, concurrency)
        else:
            values = _accuracies(accuracy_of) or accuracy
            if values is None:
                raise ProfilerError("model-analyzer import needs --accuracy or --accuracy-of VARIANT=VALUE.")
            table = import_model_analyzer(text, str(csv_path), hardware, values, concurrency)
        files.write(out, lambda tmp: write_profile_table(table, tmp))
    console.print(f"{len(table.rows)} rows imported to {out}", highlight=False)
