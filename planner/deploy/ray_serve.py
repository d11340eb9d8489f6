"""Deploy an emitted Ray Serve application: on a local Ray head pipeplan starts, or an existing cluster.

Local head: ``ray start --head --block`` in its own session, so the whole cluster is one process
tree stopped by its pid (``ray stop`` would kill every Ray on the machine: never used). Fixed ports
outside Ray's worker range (10002-19999 by default, moved to 30000-30999 here): GCS 26379, dashboard
28265, HTTP from the emitted config or ``--port``. The local head runs with ``RAY_AUTH_MODE=disabled``
(it listens on 127.0.0.1 only, and token mode writes ~/.ray/auth_token, which outlives the run);
with ``--address`` nothing local starts, the caller's environment, auth settings included, reaches
``serve deploy`` unchanged, the dashboard's REST calls carry Ray's own auth header (token mode), and
``undeploy`` removes only this application (the cluster and its other applications keep running).

``serve deploy`` is submitted with the app's folder as ``runtime_env.working_dir``; readiness is the
application's status RUNNING in the dashboard's REST API. :func:`patch_config` makes the light
update ``pipeplan apply`` sends (only ``num_replicas`` and ``user_config`` change).
"""

from __future__ import annotations

import copy
import json
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
    """The emitted config made submittable: the app folder as working_dir, HTTP on 127.0.0.1:port.

    ``serve deploy`` uploads nothing: a working_dir must be a remote URI or a ``local://`` URI of a
    folder that exists on every node (Ray 2.60 refuses a plain path). The app folder is on this
    machine, so it is named ``local://<absolute path>``: right for the local head, and for an
    existing cluster (``--address``) whose nodes see the same folder.
    """
    out = copy.deepcopy(config)
    options = dict(out.get("http_options") or {})
    options["host"] = "127.0.0.1"
    if http_port is not None:
        options["port"] = http_port
    out["http_options"] = options
    for app in out["applications"]:
        app["runtime_env"] = {**(app.get("runtime_env") or {}), "working_dir": f"local://{working_dir.resolve()}"}
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


def auth_headers(external: bool) -> dict[str, str]:
    """Headers for the dashboard's REST API: none for the local head (auth disabled); for an existing
    cluster, Ray's own token header when the caller's environment enables token auth."""
    if not external:
        return {}
    from ray._private.authentication.http_token_authentication import get_auth_headers_if_auth_enabled

    return dict(get_auth_headers_if_auth_enabled({}))


def _app_status(dashboard: str, name: str, headers: dict[str, str]) -> tuple[str, float, str]:
    answer = call("GET", f"{dashboard}/api/serve/applications/", timeout_s=5.0, headers=headers)
    if answer.status in (401, 403):
        raise DeployError(f"{dashboard}: the Ray cluster refused pipeplan's REST calls (HTTP {answer.status}: "
                          f"{answer.text()[:200]}); for a cluster with token auth run pipeplan with "
                          "RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
                          "~/.ray/auth_token), as for 'serve deploy'.")
    if not answer.ok:
        return "UNREACHABLE", -1.0, answer.text()
    app = ((answer.json() or {}).get("applications") or {}).get(name) or {}
    return app.get("status", "NOT_STARTED"), float(app.get("last_deployed_time_s") or -1.0), app.get("message", "")


def submit(dashboard: str, config: dict, folder: Path, timeout_s: float, headers: dict[str, str]) -> float:
    """``serve deploy`` the config and wait until every application is RUNNING again; seconds taken."""
    path = folder / "deploy_config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=True), encoding="utf-8")
    names = [a["name"] for a in config["applications"]]
    before = {n: _app_status(dashboard, n, headers)[1] for n in names}
    begin = time.monotonic()
    done = subprocess.run([_ray_bin("serve"), "deploy", "--address", dashboard, str(path)], capture_output=True,
                          text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise DeployError(f"serve deploy refused {path}: {(done.stderr or done.stdout).strip()[-1500:]}")
    while time.monotonic() - begin < timeout_s:
        states = {n: _app_status(dashboard, n, headers) for n in names}
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
        submit(dashboard, final, folder, ready_timeout_s, auth_headers(address is not None))
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


def check_same_models(config: dict, plan: Plan) -> None:
    """Refuse a plan whose variants differ from the running app's (they need other model files)."""
    for app in config["applications"]:
        working_dir = Path(app["runtime_env"]["working_dir"].removeprefix("local://"))
        try:
            running = json.loads((working_dir / "pipeline.json").read_text(encoding="utf-8"))["deployments"]
        except (OSError, ValueError, KeyError):
            continue  # no record of the variants: batching and replicas are all apply changes anyway
        changed = [f"{s.stage}: {running[s.stage]['variant']} -> {s.variant}" for s in plan.stages
                   if s.stage in running and running[s.stage].get("variant") != s.variant]
        if changed:
            raise DeployError(f"the new plan changes variants ({'; '.join(changed)}); 'pipeplan apply' changes "
                              "batching and replicas of the same models. Deploy the new plan instead.")


def apply(d: Deployment, plan: Plan, timeout_s: float = 180.0) -> float:
    """Light update of the running app to ``plan``'s replicas and batching; seconds until RUNNING."""
    config = yaml.safe_load((d.folder / "deploy_config.yaml").read_text(encoding="utf-8"))
    check_same_models(config, plan)
    return submit(d.admin_url, patch_config(config, plan), d.folder, timeout_s, auth_headers(d.process is None))


def remove_apps(dashboard: str, names: list[str], headers: dict[str, str], timeout_s: float = 60.0) -> bool:
    """Remove the named applications from an existing cluster, leaving its others running: the
    declarative config is PUT again without them (DELETE, which ends Serve, only when none is left)."""
    answer = call("GET", f"{dashboard}/api/serve/applications/", timeout_s=10.0, headers=headers)
    if not answer.ok:
        return False
    current = answer.json() or {}
    apps = current.get("applications") or {}
    keep = [a["deployed_app_config"] for n, a in sorted(apps.items())
            if n not in names and a.get("deployed_app_config")]
    if keep:
        body = {k: v for k, v in {"proxy_location": current.get("proxy_location"),
                                  "http_options": current.get("http_options"), "applications": keep}.items() if v}
        answer = call("PUT", f"{dashboard}/api/serve/applications/", body, timeout_s=timeout_s, headers=headers)
    else:
        answer = call("DELETE", f"{dashboard}/api/serve/applications/", timeout_s=timeout_s, headers=headers)
    return answer.ok


def stop(d: Deployment) -> bool:
    """Stop the local head by its pid; on an existing cluster remove only this deployment's applications."""
    if d.process is None:
        config = yaml.safe_load((d.folder / "deploy_config.yaml").read_text(encoding="utf-8"))
        return remove_apps(d.admin_url, [a["name"] for a in config["applications"]], auth_headers(True))
    gone = stop_group(d.process, timeout_s=30.0)
    if d.scratch:
        shutil.rmtree(d.scratch, ignore_errors=True)
    return gone
