"""Run a VariantRunner in a worker process, so that a runtime that crashes or hangs (a segfault in
a provider, an abort in a custom op, a deadlock) ends one variant on one hardware setting, not the
whole profiling run.

One worker process (started with ``spawn``: no state or threads inherited from the session) serves
every request in turn; it keeps its built variants between requests and is started again after a
crash. Requests and replies are small pickled messages over a pipe:

    session -> worker   ("accuracy", model, variant) | ("unit", UnitJob) | ("stop",)
    worker -> session   ("value", float) | ("event", UnitEvent) | ("done",) | ("error", reason)

Every process this module starts is stopped by it, by its own handle: ``close`` asks the worker
to stop and kills it if it does not; a timeout or a crash kills it before a new one starts.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from multiprocessing.connection import Connection
from typing import Any, Iterator

from profiler.errors import VariantError
from profiler.runner import RunnerConfig, UnitEvent, UnitJob, VariantRunner, failure_reason

log = logging.getLogger(__name__)

# How long the session waits for the worker's next message before it stops the worker: loading and
# evaluating a large model or quantising it can take minutes on a small CPU; a point takes at most
# its warm-up plus the round's time budget.
ANSWER_TIMEOUT_S = 900.0
STOP_TIMEOUT_S = 10.0


def _serve(conn: Connection, config: RunnerConfig) -> None:
    """The worker's loop: answer requests until told to stop or the session goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the session's to handle; it stops us
    runner = VariantRunner(config)
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request[0] == "stop":
            return
        try:
            if request[0] == "accuracy":
                conn.send(("value", runner.accuracy(request[1], request[2])))
            else:
                for event in runner.profile_unit(request[1]):
                    conn.send(("event", event))
                conn.send(("done",))
        except Exception as exc:  # noqa: BLE001 - report any failure of one variant to the session
            conn.send(("error", failure_reason(exc)))


def _ignore_sigint():
    try:
        return signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals are not ours to change
        return None


def _restore_sigint(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous)


def _exit_text(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class IsolatedRunner:
    """The VariantRunner interface (accuracy, profile_unit, close), served by a worker process."""

    def __init__(self, config: RunnerConfig, answer_timeout_s: float | None = None) -> None:
        self.config = config
        self.answer_timeout_s = ANSWER_TIMEOUT_S if answer_timeout_s is None else answer_timeout_s
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._busy = False  # a request is out and its reply not fully read

    def accuracy(self, model_name: str, variant_name: str) -> float:
        self._send(("accuracy", model_name, variant_name))
        reply = self._receive(f"evaluating {model_name}/{variant_name}")
        self._busy = False
        return float(reply[1])

    def profile_unit(self, job: UnitJob) -> Iterator[UnitEvent]:
        self._send(("unit", job))
        try:
            while True:
                reply = self._receive(f"measuring {job.model}/{job.variant} on {job.hardware}")
                if reply[0] == "done":
                    self._busy = False
                    return
                yield reply[1]
        finally:
            if self._busy:  # the caller stopped reading mid-unit: the rest of the reply would be stale
                self._kill()

    def close(self) -> None:
        """Ask an idle worker to stop (kill it if it does not within a few seconds); kill a busy one."""
        process, conn = self._process, self._conn
        if process is None:
            return
        if self._busy:
            self._kill()
            return
        self._process = self._conn = None
        try:
            conn.send(("stop",))
        except (OSError, ValueError):
            pass
        process.join(STOP_TIMEOUT_S)
        if process.is_alive():
            process.kill()
            process.join()
        conn.close()

    # ---- the pipe ---------------------------------------------------------------------------

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=_serve, args=(child, self.config), name="pipeplan-profile-worker",
                                  daemon=True)
        # The child inherits an ignored SIGINT, so a Ctrl-C while it starts up is the session's alone.
        previous = _ignore_sigint()
        try:
            process.start()
        finally:
            _restore_sigint(previous)
        child.close()
        self._process, self._conn = process, parent

    def _send(self, message: tuple[Any, ...]) -> None:
        """Send a request, starting a worker first if there is none or the last one died while idle."""
        if self._process is not None and not self._process.is_alive():
            self._kill()
        if self._process is None:
            self._start()
        try:
            self._conn.send(message)
        except OSError:  # it died between the check and the send: one fresh worker, once
            self._kill()
            self._start()
            self._conn.send(message)
        self._busy = True

    def _receive(self, doing: str) -> tuple[Any, ...]:
        """The worker's next message; a crash or silence stops the worker and fails this variant."""
        conn, process = self._conn, self._process
        try:
            ready = conn.poll(self.answer_timeout_s)
            reply = conn.recv() if ready else None
        except (EOFError, OSError):
            reply = None
            ready = True
        if reply is None:
            if ready:
                process.join(STOP_TIMEOUT_S)
                why = f"the worker process died while {doing} ({_exit_text(process.exitcode)})"
            else:
                why = f"no answer within {self.answer_timeout_s:g} s while {doing}; the worker was stopped"
            self._kill()
            raise VariantError(why)
        if reply[0] == "error":
            self._busy = False  # the worker reported and is waiting for the next request
            raise VariantError(reply[1])
        return reply

    def _kill(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        self._busy = False
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join()
        if conn is not None:
            conn.close()
