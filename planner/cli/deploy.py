"""``pipeplan deploy``, ``undeploy``, ``loadtest`` and ``apply``: a plan on a real engine, and load on it.

Thin: each command parses, calls planner.deploy / planner.loadgen, writes files atomically, prints.
The deploy folder (``--out``) holds the emitted files, the engine's log, ``request.json`` (real
inputs for the first model) and ``deployment.json`` (pids and ports, read by the other commands).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from planner.cli.common import app, console, positive, read_trace_arg, trace_format_option
from planner.errors import DeployError
from planner.traces import TraceFormat

REPO = Path(__file__).resolve().parents[1]


class EngineName(str, Enum):
    TRITON = "triton"
    RAY_SERVE = "ray-serve"


def _emit(plan_file: Path, manifest: Path, engine: EngineName, out: Path, cache_dir: Path) -> Path:
    """Emit the plan for ``engine`` into ``out`` with the emitters' own edge (planner.cli.emit)."""
    from planner.cli.emit import emit_plan
    from planner.emit import EmitTarget

    emit_plan(plan_file, EmitTarget(engine.value), out, manifest, None, None, None, cache_dir)
    return out


def _bodies(deployment, plan, manifest: Optional[Path]) -> Optional[list[dict]]:
    from planner.deploy import inputs, triton
    from planner.deploy.state import EngineKind

    if manifest is None:
        return None
    items = {s.stage: inputs.real_items(manifest, s.model) for s in plan.stages}
    if deployment.engine is EngineKind.TRITON:
        return inputs.triton_bodies(triton.entry_config(deployment), plan, items)
    return inputs.ray_bodies(plan, items)


@app.command()
def deploy(
    plan_file: Path = typer.Argument(..., metavar="PLAN", help="Plan (JSON) from 'pipeplan plan'."),
    engine: EngineName = typer.Option(..., "--engine", help="Engine to run the plan on."),
    out: Path = typer.Option(Path("deploy"), "--out", help="Deploy folder: emitted files, logs, state."),
    emitted: Optional[Path] = typer.Option(None, "--emitted", help="Folder 'pipeplan emit' wrote (default: emit "
                                           "the plan into OUT/emitted, which needs --manifest)."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="Model manifest: model files for the "
                                            "emitters, and real inputs for OUT/request.json."),
    address: Optional[str] = typer.Option(None, "--address", help="ray-serve: dashboard address of an existing "
                                          "Ray cluster (http://HOST:8265); nothing local is started."),
    port: Optional[int] = typer.Option(None, "--port", help="HTTP port of the engine on 127.0.0.1."),
    num_cpus: Optional[int] = typer.Option(None, "--num-cpus", help="ray-serve: logical CPUs of the local head."),
    triton_python: Path = typer.Option(REPO / ".venv-triton" / "bin" / "python", "--triton-python",
                                       help="Python of the environment with nvidia-pytriton (numpy<2)."),
    ready_timeout_s: float = typer.Option(180.0, "--ready-timeout-s", callback=positive, help="Give up (and stop) after this long."),
    cache_dir: Path = typer.Option(Path(".pipeplan-cache"), "--cache-dir", help="Built variants (as for emit)."),
) -> None:
    """Start PLAN on a local engine (or an existing Ray cluster) and wait until it serves."""
    from planner import io
    from planner.deploy import ray_serve, triton
    from planner.deploy.state import STATE_FILE, state_to_json

    plan = io.load_plan(plan_file)
    if (out / STATE_FILE).exists():
        raise DeployError(f"{out / STATE_FILE}: a deployment is already recorded here; stop it with "
                          f"'pipeplan undeploy {out}' or choose another --out.")
    if address is not None and engine is not EngineName.RAY_SERVE:
        raise DeployError("--address names an existing Ray cluster; it goes with --engine ray-serve.")
    out.mkdir(parents=True, exist_ok=True)
    source = emitted if emitted is not None else None
    if source is None:
        if manifest is None:
            raise DeployError("pass --emitted DIR (a folder 'pipeplan emit' wrote) or --manifest M (to emit "
                              "the plan here first).")
        source = _emit(plan_file, manifest, engine, out / "emitted", cache_dir)
    if engine is EngineName.TRITON:
        running = triton.start(source, out, triton_python.absolute(), str(plan_file), port, ready_timeout_s)
    else:
        running = ray_serve.start(source, out, str(plan_file), address, port, num_cpus, ready_timeout_s)
    try:
        io.write_text_atomic(out / STATE_FILE, state_to_json(running))
        bodies = _bodies(running, plan, manifest)
        if bodies is not None:
            io.write_text_atomic(out / "request.json", json.dumps({"bodies": bodies}) + "\n")
    except BaseException:
        (triton.stop if engine is EngineName.TRITON else ray_serve.stop)(running)
        (out / STATE_FILE).unlink(missing_ok=True)
        raise
    who = f"pid {running.process.pid}" if running.process else f"cluster {address}"
    console.print(f"{engine.value} serving '{plan.pipeline}' at {running.infer_url} ({who}); state in "
                  f"{out / STATE_FILE}", highlight=False)
    if (out / "request.json").exists():
        console.print(f"load it: pipeplan loadtest {running.infer_url} --body {out / 'request.json'} --trace T",
                      highlight=False)
    console.print(f"stop it: pipeplan undeploy {out}", highlight=False)


@app.command()
def undeploy(folder: Path = typer.Argument(Path("deploy"), help="The deploy folder ('pipeplan deploy --out').")) -> None:
    """Stop the engine a 'pipeplan deploy' started, by its pid (an existing cluster is left running)."""
    from planner.deploy import ray_serve, triton
    from planner.deploy.state import EngineKind, load_state

    running = load_state(folder)
    stop = triton.stop if running.engine is EngineKind.TRITON else ray_serve.stop
    if not stop(running):
        if running.process is None:
            raise DeployError(f"{running.admin_url}: the Ray cluster did not remove this deployment's application; "
                              f"check 'serve status --address {running.admin_url}' and run undeploy again.")
        raise DeployError(f"process group {running.process.pid} did not stop after SIGKILL; check it with "
                          f"'ps -g {running.process.pid}'.")
    running.state_path.unlink(missing_ok=True)
    console.print(f"stopped {running.engine.value}" + (f" (pid {running.process.pid})" if running.process else ""),
                  highlight=False)


@app.command()
def loadtest(
    url: str = typer.Argument(..., help="Endpoint a request is POSTed to (printed by 'pipeplan deploy')."),
    trace: Path = typer.Option(..., "--trace", help="Arrival trace to replay open-loop."),
    body: Path = typer.Option(..., "--body", help="Request body JSON (deploy writes OUT/request.json: real inputs)."),
    max_requests: Optional[int] = typer.Option(None, "--max-requests", min=1, help="Send at most this many requests."),
    duration_s: Optional[float] = typer.Option(None, "--duration-s", callback=positive, help="Send for at most this many seconds."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the result summary here (JSON)."),
    requests_out: Optional[Path] = typer.Option(None, "--requests", help="Per-request CSV (the simulator's columns "
                                                "first, then send_ms, status, outcome)."),
    slo_ms: float = typer.Option(1000.0, "--slo-ms", callback=positive, help="SLO for the attainment figure."),
    request_timeout_s: float = typer.Option(30.0, "--request-timeout-s", callback=positive, help="A request unanswered this long fails."),
    allow_host: Optional[str] = typer.Option(None, "--allow-host", help="Allow this non-loopback host as target."),
    trace_format: TraceFormat = trace_format_option("Format of --trace."),
) -> None:
    """Replay TRACE open-loop against URL and record every request's send time, latency and status."""
    from planner import io
    from planner.loadgen import Bounds, Target, check_url, read_bodies, replay
    from planner.loadgen.result import requests_csv_text, result_to_json, send_error, summarise

    target = Target(check_url(url, allow_host), read_bodies(body))
    bounds = Bounds(max_requests=max_requests, duration_s=duration_s, request_timeout_s=request_timeout_s)
    arrivals = read_trace_arg(trace, trace_format, 0)
    result = replay(target, arrivals, bounds)
    if out:
        io.write_text_atomic(out, result_to_json(result, slo_ms, {"file": trace.name}))
    if requests_out:
        io.write_text_atomic(requests_out, requests_csv_text(result))
    s, e = summarise(result, slo_ms), send_error(result)
    console.print(f"{s.requests} requests ({s.dropped} failed) | p50 {s.p50_ms:.2f} / p95 {s.p95_ms:.2f} / p99 "
                  f"{s.p99_ms:.2f} ms | generator send error p50 {e.p50_ms:.2f} / p99 {e.p99_ms:.2f} / max "
                  f"{e.max_ms:.2f} ms", highlight=False)


@app.command()
def apply(
    plan_file: Path = typer.Argument(..., metavar="NEWPLAN", help="The plan to switch the deployment to."),
    folder: Path = typer.Option(Path("deploy"), "--deployment", help="The deploy folder of the running plan."),
    probe_rps: float = typer.Option(50.0, "--probe-rps", callback=positive, help="Probe load during the switch (requests/s)."),
    settle_s: float = typer.Option(2.0, "--settle-s", callback=positive, help="Probe this long before and after the switch."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the switch report here (JSON)."),
) -> None:
    """Switch a running deployment to NEWPLAN in place; report the switch time and failed requests."""
    from planner import io
    from planner.deploy import ray_serve, switch, triton
    from planner.deploy.state import EngineKind, load_state, state_to_json
    from planner.loadgen import Target, read_bodies

    plan = io.load_plan(plan_file)
    running = load_state(folder)
    target = Target(running.infer_url, read_bodies(folder / "request.json"))
    action = (lambda: triton.apply(running, plan)) if running.engine is EngineKind.TRITON else \
        (lambda: ray_serve.apply(running, plan))
    _, report = switch.measure(target, probe_rps, settle_s, action)
    from dataclasses import replace

    io.write_text_atomic(running.state_path, state_to_json(replace(running, plan_file=str(plan_file))))
    if out:
        io.write_text_atomic(out, json.dumps(asdict(report), indent=2, sort_keys=True) + "\n")
    console.print(f"switched to {plan_file} in {report.switch_s:.2f} s | probe {report.probe_rps:g} rps: "
                  f"{report.failed_during} of {report.requests_during} requests failed during the switch, "
                  f"{report.failed} of {report.requests} overall | p99 before {report.p99_before_ms:.1f} / "
                  f"during {report.p99_during_ms:.1f} / after {report.p99_after_ms:.1f} ms", highlight=False)
