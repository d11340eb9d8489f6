"""The open-loop sender against a tiny HTTP server this test starts on 127.0.0.1."""

from __future__ import annotations

import http.server
import threading
import time

import numpy as np
import pytest

from planner.errors import DeployError
from planner.loadgen import Bounds, Outcome, Target, check_url, replay
from planner.loadgen.result import CSV_HEADER, requests_csv_text, result_to_json, send_error, summarise
from planner.loadgen.sender import OUTCOME_CODES
from planner.sim import SimConfig, simulate
from planner.sim.result import requests_csv_text as sim_csv
from planner.traces import Trace
from tests.fixtures import plan_of, stage

SERVICE_S = 0.05


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received: list[tuple[float, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((time.monotonic(), body))
        time.sleep(SERVICE_S)  # slower than the gaps: a closed loop would fall behind
        code = 500 if body == b'{"fail":true}' else 200
        payload = b'{"ok":true}'
        self.send_response(code)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    _Handler.received = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/infer"
    httpd.shutdown()
    httpd.server_close()


def test_open_loop_keeps_the_schedule_while_answers_are_slow(server):
    # 40 requests 10 ms apart, each answered after 50 ms: open loop sends all within ~0.4 s.
    trace = Trace(np.arange(40) * 10.0, 400.0, name="even")
    result = replay(Target(server, (b'{"x":1}',)), trace, Bounds())
    assert result.requests == 40
    assert not result.failed.any()
    assert np.all(result.latency_ms >= SERVICE_S * 1000 * 0.9)
    err = send_error(result)
    assert err.p99_ms < 10.0, f"generator fell behind its schedule: {err}"
    got = [t for t, _ in _Handler.received]
    assert max(got) - min(got) < 0.39 + 0.1  # not 40 x 50 ms, as a closed loop would take


def test_bounds_failures_and_the_simulators_columns(server):
    trace = Trace(np.arange(20) * 5.0, 100.0, name="t")
    bodies = (b'{"x":1}', b'{"fail":true}')
    result = replay(Target(server, bodies), trace, Bounds(max_requests=6))
    assert result.requests == 6
    assert list(result.status) == [200, 500] * 3
    assert list(result.failed) == [False, True] * 3
    summary = summarise(result, slo_ms=1000.0)
    assert summary.dropped == 3 and summary.completed == 3 and summary.p99_ms == float("inf")
    text = requests_csv_text(result)
    assert text.splitlines()[0] == CSV_HEADER
    simulated = sim_csv(simulate(plan_of(stage("s")), trace, SimConfig())).splitlines()
    assert CSV_HEADER.split(",")[:4] == simulated[0].split(",")
    assert [r.split(",")[1] for r in text.splitlines()[1:]] == [r.split(",")[1] for r in simulated[1:7]]
    first = text.splitlines()[1].split(",")
    assert first[0] == "0" and first[3] == "0" and first[5] == "200" and first[6] == Outcome.OK.value
    assert text.splitlines()[2].split(",")[2] == ""  # a failure has no latency, like a dropped simulated request
    assert '"http_error": 3' in result_to_json(result, 1000.0)

    timed = replay(Target(server, (b'{"x":1}',)), trace, Bounds(duration_s=0.03))
    assert timed.requests == 6  # arrivals at 0, 5, ..., 25 ms fall before 30 ms


def test_refused_connections_are_recorded_not_raised():
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = replay(Target(f"http://127.0.0.1:{port}/", (b"{}",)), Trace(np.array([0.0, 1.0]), 2.0), Bounds())
    assert list(result.outcome) == [OUTCOME_CODES[Outcome.CONNECTION_ERROR]] * 2
    assert np.isnan(result.latency_ms).all()


def test_loopback_only_unless_the_host_is_named():
    assert check_url("http://127.0.0.1:8000/")
    assert check_url("http://localhost:8000/v2/models/p/infer")
    assert check_url("http://[::1]:8000/")
    with pytest.raises(DeployError, match="--allow-host example.org"):
        check_url("http://example.org:8000/")
    assert check_url("http://example.org:8000/", allow_host="example.org")
    with pytest.raises(DeployError, match="scheme"):
        check_url("ftp://127.0.0.1/")


def test_bounds_are_checked():
    with pytest.raises(DeployError, match="--max-requests"):
        Bounds(max_requests=0)
    with pytest.raises(DeployError, match="--duration-s"):
        Bounds(duration_s=-1)
