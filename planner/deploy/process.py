"""Start an engine detached in its own session and stop it later by its pid, even from another process.

An engine outlives ``pipeplan deploy`` (``loadtest`` and ``apply`` talk to it afterwards), so the
handle that stops it is a :class:`ProcessRef`: the pid of the session leader plus its start time
(field 22 of /proc/PID/stat). The start time guards against pid reuse: a pid that now belongs to
another program is never signalled. The whole process group (the engine and the children it
started: python stubs, raylets, workers) is signalled by that pid; nothing is looked up by name.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessRef:
    """A process group pipeplan started: leader pid and the leader's start time (clock ticks since boot)."""

    pid: int
    start_ticks: int


def start_ticks(pid: int) -> int | None:
    """The process's start time from /proc, or None if no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def spawn(command: list[str], env: dict[str, str], log_path: Path, cwd: Path | None = None) -> tuple[subprocess.Popen, ProcessRef]:
    """Start ``command`` in a new session (its own process group), output to ``log_path``."""
    with open(log_path, "ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, cwd=cwd)
    ticks = start_ticks(process.pid)
    return process, ProcessRef(process.pid, ticks if ticks is not None else -1)


def _reap(pid: int) -> None:
    """Collect the leader if it is our own child (else a zombie keeps the group 'alive')."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def group_alive(ref: ProcessRef) -> bool:
    """Whether any process of the group still runs."""
    _reap(ref.pid)
    try:
        os.killpg(ref.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_ours(ref: ProcessRef) -> bool:
    """The leader is gone (its group may linger) or is still the very process that was started."""
    ticks = start_ticks(ref.pid)
    return ticks is None or ticks == ref.start_ticks


def stop_group(ref: ProcessRef, timeout_s: float = 20.0) -> bool:
    """SIGTERM the group, SIGKILL what is left after ``timeout_s``; True once nothing of it runs.

    A pid that was reused by another program (start time differs) is left alone: returns True,
    since what pipeplan started is gone.
    """
    if not is_ours(ref):
        log.warning("pid %d now belongs to another process; the engine it named is gone", ref.pid)
        return True
    strays = _descendants(ref.pid)  # children that left the group (setsid) are still in the tree
    for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(ref.pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not group_alive(ref):
                break
            time.sleep(0.1)
        if not group_alive(ref):
            break
    _kill_strays(strays)
    return not group_alive(ref)


def _descendants(pid: int) -> list:
    """The leader's process tree now (psutil handles, which check the pid's identity before signalling)."""
    try:
        import psutil

        return psutil.Process(pid).children(recursive=True)
    except Exception:  # no psutil, or the leader is gone: the group signal is all there is
        return []


def _kill_strays(processes: list) -> None:
    import contextlib

    for p in processes:
        with contextlib.suppress(Exception):
            if p.is_running():
                p.kill()
    for p in processes:
        with contextlib.suppress(Exception):
            p.wait(timeout=5)
