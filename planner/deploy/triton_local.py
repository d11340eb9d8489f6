"""Run the tritonserver binary bundled in the ``nvidia-pytriton`` wheel on this machine, on 127.0.0.1.

The wheel carries a real tritonserver (2.51.0 in nvidia-pytriton 0.7.0) with the python backend and a
python stub per Python version. Used as it is it does not start: its libraries sit beside the package
(``nvidia_pytriton.libs``) and the backend directory expects the stub of one Python version. So the
layout is copied into a scratch folder (:func:`prepare_layout`), and the server is started with
``LD_LIBRARY_PATH`` pointing at those libraries and ``PYTHONPATH`` at the site-packages of the
environment the wheel is installed in (the python models import numpy and onnxruntime from there).

That environment is not the project's: the wheel pins numpy < 2 and its stub really needs it (built
against numpy 1, it misreads numpy 2 arrays: "output tensor shape does not match size of output"),
while the project needs numpy >= 2. So it lives in a virtual environment of its own, named by the
interpreter passed in (``.venv-triton`` in CI, made by .ci/run).

The server is stopped by its own pid (never by name: other servers on the machine are not ours).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class TritonUnavailable(RuntimeError):
    """The nvidia-pytriton wheel (and so the tritonserver binary) is not installed."""


@dataclass(frozen=True)
class TritonLayout:
    """A runnable copy of the bundled server: binary, backend folder, library and module paths."""

    binary: Path
    backend_dir: Path
    library_dir: Path
    python_path: str
    python_bin_dir: Path


@dataclass(frozen=True)
class LoadOutcome:
    """What happened when the server was pointed at a repository."""

    ready: bool
    returncode: int | None  # None while it was still running (it became ready)
    log: str
    seconds: float


def _environment(python: Path) -> tuple[Path, Path, str, str]:
    """(server folder, library folder, site-packages, 'X.Y') of the environment ``python`` belongs to."""
    probe = ("import pathlib, sys, sysconfig\n"
             "import pytriton\n"
             "p = pathlib.Path(pytriton.__file__).parent\n"
             "print(p / 'tritonserver'); print(p.parent / 'nvidia_pytriton.libs')\n"
             "print(sysconfig.get_paths()['purelib']); print(f'{sys.version_info[0]}.{sys.version_info[1]}')\n")
    if not Path(python).exists():
        raise TritonUnavailable(f"{python}: no such interpreter; the tritonserver binary comes from the "
                                "nvidia-pytriton wheel, installed in its own environment (see docs/emit.md).")
    result = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise TritonUnavailable(f"{python}: cannot import pytriton there ({result.stderr.strip().splitlines()[-1:]}); "
                                "install it with `pip install nvidia-pytriton==0.7.0 onnxruntime` in that environment.")
    server_dir, library_dir, purelib, version = result.stdout.split()
    return Path(server_dir), Path(library_dir), purelib, version


def prepare_layout(scratch: Path, python: Path) -> TritonLayout:
    """Copy the server of the environment of ``python`` into ``scratch``, with that Python's stub in the
    backend folder. That environment also runs the python models (numpy < 2 for the bundled stub)."""
    server_dir, library_dir, purelib, version = _environment(python)
    stub = server_dir / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise TritonUnavailable(f"nvidia-pytriton has no python backend stub for Python {version} ({stub}).")
    target = scratch / "tritonserver"
    shutil.copytree(server_dir, target, ignore=shutil.ignore_patterns("python_backend_stubs", "__pycache__"))
    shutil.copy2(stub, target / "backends" / "python" / stub.name)
    return TritonLayout(binary=target / "bin" / "tritonserver", backend_dir=target / "backends",
                        library_dir=library_dir, python_path=purelib,
                        python_bin_dir=Path(python).parent)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(layout: TritonLayout) -> dict[str, str]:
    """The environment the copied server runs in (its libraries, and the wheel's Python for the stubs)."""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(layout.library_dir), env.get("LD_LIBRARY_PATH")) if p)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (layout.python_path, env.get("PYTHONPATH")) if p)
    # The stub's embedded interpreter finds its environment through the first python3 on PATH (it
    # does not read PYTHONPATH into sys.path): put the wheel's environment first.
    env["PATH"] = os.pathsep.join(p for p in (str(layout.python_bin_dir), env.get("PATH")) if p)
    env.pop("VIRTUAL_ENV", None)
    return env


def server_command(layout: TritonLayout, repository: Path, http_port: int, grpc_port: int, metrics_port: int,
                   extra: tuple[str, ...] = ()) -> list[str]:
    """The tritonserver command line: everything on 127.0.0.1, exit on any model error."""
    return [
        str(layout.binary), f"--model-repository={repository}", f"--backend-directory={layout.backend_dir}",
        "--http-address=127.0.0.1", f"--http-port={http_port}",
        "--grpc-address=127.0.0.1", f"--grpc-port={grpc_port}",
        "--metrics-address=127.0.0.1", f"--metrics-port={metrics_port}", "--allow-gpu-metrics=false",
        "--exit-on-error=true", "--strict-readiness=true", "--disable-auto-complete-config", *extra,
    ]


class TritonProcess:
    """One tritonserver process on 127.0.0.1 serving ``repository``; stop() ends it by its pid."""

    def __init__(self, layout: TritonLayout, repository: Path, log_path: Path) -> None:
        self.http_port, self.grpc_port, self.metrics_port = free_port(), free_port(), free_port()
        env = server_env(layout)
        command = server_command(layout, repository, self.http_port, self.grpc_port, self.metrics_port)
        self.log_path = log_path
        self._log = open(log_path, "wb")
        # Its own session, so that stop() can end the server and the python stubs it started, by pid.
        self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def wait_ready(self, timeout_s: float) -> LoadOutcome:
        """Poll /v2/health/ready until the server is ready, exits, or ``timeout_s`` passes."""
        begin = time.monotonic()
        while time.monotonic() - begin < timeout_s:
            code = self.process.poll()
            if code is not None:
                return LoadOutcome(False, code, self.read_log(), time.monotonic() - begin)
            try:
                with urllib.request.urlopen(f"{self.url}/v2/health/ready", timeout=1) as response:
                    if response.status == 200:
                        return LoadOutcome(True, None, self.read_log(), time.monotonic() - begin)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        return LoadOutcome(False, self.process.poll(), self.read_log(), time.monotonic() - begin)

    def read_log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM to the server's process group (its pid), SIGKILL after ``timeout_s``; waits for it."""
        try:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=timeout_s)
            # The python stubs share the group; end any that outlived the server.
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        finally:
            self._log.close()

    def group_alive(self) -> bool:
        """Whether any process of the server's group (the server or a stub) still runs."""
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def check_repository(repository: Path, scratch: Path, python: Path, timeout_s: float = 120.0) -> LoadOutcome:
    """Start a server on ``repository``, wait until it is ready (or exits with the engine's error), stop it."""
    layout = prepare_layout(scratch, python)
    server = TritonProcess(layout, repository, scratch / "tritonserver.log")
    try:
        return server.wait_ready(timeout_s)
    finally:
        server.stop()
