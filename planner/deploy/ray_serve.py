"""Deploy an emitted Ray Serve application: on a local Ray head pipeplan starts, or an existing cluster.

Local head: ``ray start --head --block`` in its own session, so the whole cluster is one process
tree stopped by its pid (``ray stop`` would kill every Ray on the machine: never used). Fixed ports
outside Ray's worker range (10002-19999 by default, moved to 30000-30999 here): GCS 26379, dashboard
28265, HTTP from the emitted config or ``--port``. The local head runs with ``RAY_AUTH_MODE=disabled``
(it listens on 127.0.0.1 only, and token mode writes ~/.ray/auth_token, which outlives the run);
with ``--address`` nothing local starts and the caller's environment, auth settings included,
reaches ``serve deploy`` unchanged.

``serve deploy`` is submitted with the app's folder as ``runtime_env.working_dir``; readiness is the
application's status RUNNING in the dashboard's REST API. :func:`patch_config` makes the light
update ``pipeplan apply`` sends (only ``num_replicas`` and ``user_config`` change).
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from planner.deploy.http import call
from planner.deploy.process import ProcessRef, group_alive, spawn, stop_group
from planner.deploy.state import Deployment, EngineKind
from planner.errors import DeployError
from planner.plan import Plan

GCS_PORT = 26379
DASHBOARD_PORT = 28265
WORKER_PORTS = (30000, 30999)
CONFIG_FILE = "serve_config.yaml"
LOG_FILE = "ray-head.log"


def find_app(emitted: Path) -> Path:
    for candidate in (emitted / "ray-serve", emitted):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise DeployError(f"{emitted}: no Ray Serve config ({CONFIG_FILE}) here or in {emitted / 'ray-serve'}; write "
                      f"one with 'pipeplan emit PLAN --target ray-serve --out {emitted}'.")


def deploy_config(config: dict, working_dir: Path, http_port: int | None) -> dict:
    """The emitted config made submittable: the app folder as working_dir, HTTP on 127.0.0.1:port."""
    out = copy.deepcopy(config)
    options = dict(out.get("http_options") or {})
    options["host"] = "127.0.0.1"
    if http_port is not None:
        options["port"] = http_port
    out["http_options"] = options
    for app in out["applications"]:
        app["runtime_env"] = {**(app.get("runtime_env") or {}), "working_dir": str(working_dir)}
    return out


def patch_config(config: dict, plan: Plan) -> dict:
    """``config`` with each stage deployment's replicas and batching from ``plan`` (a light update)."""
    out = copy.deepcopy(config)
    stages = {s.stage: s for s in plan.stages}
    deployments = {d["name"]: d for app in out["applications"] for d in app.get("deployments", [])}
    missing = sorted(set(stages) - set(deployments))
    if missing:
        raise DeployError(f"the new plan's stages {missing} are not deployments of the running application "
                          f"({sorted(deployments)}); deploy the new plan instead.")
    for name, s in stages.items():
        d = deployments[name]
        if "autoscaling_config" not in d:
            d["num_replicas"] = s.replicas
        d["max_ongoing_requests"] = s.batch_size
        d["user_config"] = {**(d.get("user_config") or {}), "max_batch_size": s.batch_size,
                            "batch_wait_timeout_s": s.batch_timeout_ms / 1000.0}
    return out


def _ray_bin(name: str) -> str:
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if found is None:
        raise DeployError(f"'{name}' not found; Ray Serve deploys need `pip install '.[deploy]'` (ray[serve]).")
    return found


def start_head(folder: Path, num_cpus: int | None, timeout_s: float = 90.0) -> tuple[ProcessRef, str, str]:
    """Start a local Ray head; (process, dashboard URL, temp dir). Stops it again on any failure."""
    temp_dir = tempfile.mkdtemp(prefix="pp-ray-")  # short: Ray's socket paths must fit 107 bytes
    command = [_ray_bin("ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
               f"--port={GCS_PORT}", f"--dashboard-port={DASHBOARD_PORT}", "--dashboard-host=127.0.0.1",
               "--include-dashboard=true", f"--min-worker-port={WORKER_PORTS[0]}",
               f"--max-worker-port={WORKER_PORTS[1]}", f"--temp-dir={temp_dir}", "--disable-usage-stats"]
    if num_cpus is not None:
        command.append(f"--num-cpus={num_cpus}")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    _, ref = spawn(command, env, folder / LOG_FILE)
    dashboard = f"http://127.0.0.1:{DASHBOARD_PORT}"
    try:
        begin = time.monotonic()
        while call("GET", f"{dashboard}/api/version", timeout_s=1.0).status != 200:
            if not group_alive(ref):
                raise DeployError(f"ray start exited (log {folder / LOG_FILE}); is another Ray using port "
                                  f"{GCS_PORT} or {DASHBOARD_PORT}?")
            if time.monotonic() - begin > timeout_s:
                raise DeployError(f"the Ray dashboard did not answer within {timeout_s:g} s (log {folder / LOG_FILE}).")
            time.sleep(0.5)
    except BaseException:
        stop_group(ref)
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    return ref, dashboard, temp_dir


def _app_status(dashboard: str, name: str) -> tuple[str, float, str]:
    answer = call("GET", f"{dashboard}/api/serve/applications/", timeout_s=5.0)
    if not answer.ok:
        return "UNREACHABLE", -1.0, answer.text()
    app = ((answer.json() or {}).get("applications") or {}).get(name) or {}
    return app.get("status", "NOT_STARTED"), float(app.get("last_deployed_time_s") or -1.0), app.get("message", "")


def submit(dashboard: str, config: dict, folder: Path, timeout_s: float) -> float:
    """``serve deploy`` the config and wait until every application is RUNNING again; seconds taken."""
    path = folder / "deploy_config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=True), encoding="utf-8")
    names = [a["name"] for a in config["applications"]]
    before = {n: _app_status(dashboard, n)[1] for n in names}
    begin = time.monotonic()
    done = subprocess.run([_ray_bin("serve"), "deploy", "--address", dashboard, str(path)], capture_output=True,
                          text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise DeployError(f"serve deploy refused {path}: {(done.stderr or done.stdout).strip()[-1500:]}")
    while time.monotonic() - begin < timeout_s:
        states = {n: _app_status(dashboard, n) for n in names}
        failed = {n: s for n, s in states.items() if s[0] in ("DEPLOY_FAILED", "UNHEALTHY")}
        if failed:
            raise DeployError(f"Ray Serve could not run the application: {failed}")
        if all(s[0] == "RUNNING" and s[1] != before[n] for n, s in states.items()):
            return time.monotonic() - begin
        time.sleep(0.25)
    raise DeployError(f"the Ray Serve application was not RUNNING after {timeout_s:g} s ({states}); a plan "
                      "asking for more CPUs or GPUs than the cluster has waits forever: check its replicas.")


def start(emitted: Path, folder: Path, plan_file: str, address: str | None, http_port: int | None,
          num_cpus: int | None = None, ready_timeout_s: float = 180.0) -> Deployment:
    """Deploy the emitted app (starting a local head unless ``address``); return once it is RUNNING."""
    app_dir = find_app(emitted).resolve()
    config = yaml.safe_load((app_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    folder.mkdir(parents=True, exist_ok=True)
    ref, temp_dir = None, None
    if address is None:
        ref, dashboard, temp_dir = start_head(folder, num_cpus)
    else:
        dashboard = address
    try:
        final = deploy_config(config, app_dir, http_port)
        submit(dashboard, final, folder, ready_timeout_s)
    except BaseException:
        if ref is not None:
            stop_group(ref)
            shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    port = final["http_options"]["port"]
    prefix = final["applications"][0].get("route_prefix", "/")
    deployments = tuple(d["name"] for a in final["applications"] for d in a.get("deployments", []))
    ports = {"http": port, "dashboard": DASHBOARD_PORT, "gcs": GCS_PORT} if ref else {"http": port}
    return Deployment(engine=EngineKind.RAY_SERVE, infer_url=f"http://127.0.0.1:{port}{prefix}", admin_url=dashboard,
                      folder=folder.resolve(), process=ref, ports=ports, models=deployments, plan_file=plan_file,
                      scratch=temp_dir)


def apply(d: Deployment, plan: Plan, timeout_s: float = 180.0) -> float:
    """Light update of the running app to ``plan``'s replicas and batching; seconds until RUNNING."""
    config = yaml.safe_load((d.folder / "deploy_config.yaml").read_text(encoding="utf-8"))
    return submit(d.admin_url, patch_config(config, plan), d.folder, timeout_s)


def stop(d: Deployment) -> bool:
    if d.process is None:
        return True
    gone = stop_group(d.process, timeout_s=30.0)
    if d.scratch:
        shutil.rmtree(d.scratch, ignore_errors=True)
    return gone
