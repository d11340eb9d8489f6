"""``pipeplan emit``: turn a plan into the deployment files of Ray Serve, Triton, KServe, Seldon, Kubernetes."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from planner.cli.common import app, console
from planner.emit import EmitTarget
from planner.errors import PipeplanError


def emit_plan(plan: Path, target: EmitTarget, out: Path, manifest: Optional[Path], settings: Optional[Path],
              image: Optional[str], storage_uri: Optional[str], cache_dir: Path):
    """Load, emit and write (atomically); returns the results. Shared by ``emit`` and ``demo``."""
    from planner.emit import emit
    from planner.io.emit import load_inputs, load_settings
    from planner.io.emit import write_results

    inputs = load_inputs(plan, manifest, load_settings(settings, image, storage_uri), cache_dir)
    results = emit(inputs, target)
    write_results(results, out)
    return results


def print_results(results, out: Path) -> None:
    for r in results:
        console.print(f"[bold]{r.target}[/]: {len(r.files)} files, {len(r.artifacts)} model files -> "
                      f"{out / r.files[0].path.parts[0]}", highlight=False)
    for note in dict.fromkeys(n for r in results for n in r.notes):
        console.print(f"[yellow]note:[/] {note}", highlight=False)


@app.command("emit")
def emit_command(
    plan: Path = typer.Argument(..., help="A plan (JSON) from 'pipeplan plan --out'."),
    target: EmitTarget = typer.Option(EmitTarget.ALL, "--target", help="Engine to emit for, or all."),
    out: Path = typer.Option(..., "--out", help="Output folder (replaced as a whole, atomically)."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="The model manifest the plan's profiles were "
                                            "measured from: where each variant's ONNX file comes from."),
    settings: Optional[Path] = typer.Option(None, "--settings", help="Deploy-settings file (YAML, docs/emit.md)."),
    image: Optional[str] = typer.Option(None, "--image", help="Stage container image (k8s); overrides the settings."),
    storage_uri: Optional[str] = typer.Option(None, "--storage-uri", help="Where storage/ is uploaded (kserve, "
                                              "seldon, k8s); overrides the settings."),
    cache_dir: Path = typer.Option(Path(".pipeplan-cache"), "--cache-dir", help="Built variants (as for profile)."),
    check: bool = typer.Option(False, "--check", help="Then run the offline validators (the 'deploy' extra)."),
    schemas: Optional[Path] = typer.Option(None, "--schemas", help="CRD folder for --check (kserve/, seldon/)."),
) -> None:
    """Write the deployment files of PLAN for one engine or all of them."""
    results = emit_plan(plan, target, out, manifest, settings, image, storage_uri, cache_dir)
    print_results(results, out)
    if check:
        from planner.emit.validate.run import check_output

        failed = False
        for outcome in check_output(out, schemas):
            if outcome.skipped:
                console.print(f"[yellow]skipped[/] {outcome.name}: {outcome.skipped}", highlight=False)
            elif outcome.problems:
                failed = True
                console.print(f"[bold red]failed[/] {outcome.name}:", highlight=False)
                for problem in outcome.problems:
                    console.print(f"  {problem}", highlight=False)
            else:
                console.print(f"[green]passed[/] {outcome.name}", highlight=False)
        if failed:
            raise typer.Exit(code=1)


def demo_emit(spec_path: Path, plan_path: Path, out: Path) -> None:
    """The demo's emit step: a spec with a manifest beside it (NAME.manifest.yaml) is emitted for every
    engine with the example deploy settings; what cannot be built here is said, not failed."""
    manifest = spec_path.with_name(f"{spec_path.stem}.manifest.yaml")
    settings = spec_path.with_name("deploy.example.yaml")
    if not manifest.is_file():
        console.print(f"no deployment files: no model manifest {manifest.name} beside {spec_path.name}, so its "
                      "variants have no model files to deploy", highlight=False)
        return
    try:
        results = emit_plan(plan_path, EmitTarget.ALL, out, manifest, settings if settings.is_file() else None,
                            None, None, Path(".pipeplan-cache"))
    except PipeplanError as exc:
        console.print(f"[yellow]emit skipped for {spec_path.name}:[/] {exc}", highlight=False)
        return
    console.print(f"deployment files for {', '.join(r.target for r in results)} -> {out} "
                  f"(see the notes with `pipeplan emit {plan_path} --out DIR --manifest {manifest}`)", highlight=False)
