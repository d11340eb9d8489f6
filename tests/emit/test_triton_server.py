"""A real tritonserver (from the nvidia-pytriton wheel, in its own environment) loads the emitted
repository, serves one pipeline request through every stage, and refuses a broken repository.

The server binds 127.0.0.1 on free ports and is stopped by its own pid; nothing is left running.
The environment is PIPEPLAN_TRITON_PYTHON, else .venv-triton beside the checkout (.ci/run makes it).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from planner.deploy.triton_local import TritonProcess, prepare_layout
from tests.emit.test_validators import emit_example
from tests.fixtures import REPO

PYTHON = Path(os.environ.get("PIPEPLAN_TRITON_PYTHON", REPO / ".venv-triton" / "bin" / "python"))
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not PYTHON.exists(), reason=f"no tritonserver environment at {PYTHON} "
                                 "(python3 -m venv .venv-triton && .venv-triton/bin/pip install "
                                 "nvidia-pytriton==0.7.0 onnxruntime)")]


def _infer(server: TritonProcess, inputs: dict[str, np.ndarray]) -> dict:
    body = {"inputs": [{"name": f"{stage}__INPUT", "shape": list(x.shape), "datatype": "FP32",
                        "data": x.ravel().tolist()} for stage, x in inputs.items()]}
    request = urllib.request.Request(f"{server.url}/v2/models/pipeline/infer", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return {o["name"]: o["shape"] for o in json.loads(response.read())["outputs"]}


def _serve(tmp_path: Path, repo: Path, inputs: dict[str, np.ndarray]) -> dict:
    server = TritonProcess(prepare_layout(tmp_path / "server", PYTHON), repo, tmp_path / "tritonserver.log")
    try:
        outcome = server.wait_ready(timeout_s=180)
        assert outcome.ready, outcome.log[-4000:]
        return _infer(server, inputs)
    finally:
        server.stop()
        assert not server.group_alive(), "a tritonserver process outlived stop()"


def test_tritonserver_runs_the_ocr_pipeline(tmp_path):
    pytest.importorskip("rapidocr_onnxruntime")
    out = emit_example("ocr", tmp_path / "out", tmp_path / "cache")
    rng = np.random.default_rng(0)
    shapes = {"detect": (1, 3, 480, 640), "angle": (10, 3, 48, 192), "recognise": (10, 3, 48, 320)}
    outputs = _serve(tmp_path, out / "triton" / "model_repository",
                     {s: rng.random(shape, dtype=np.float32) for s, shape in shapes.items()})
    assert list(outputs) == ["recognise__OUTPUT"]
    assert outputs["recognise__OUTPUT"][0] == 10 and outputs["recognise__OUTPUT"][-1] == 6625


def test_tritonserver_runs_the_digits_pipeline(tmp_path):
    pytest.importorskip("torch")
    out = emit_example("digits", tmp_path / "out", tmp_path / "cache")
    repo = out / "triton" / "model_repository"
    # 200 pipeline instances are what the plan's load needs; two are enough to check the repository here.
    config = repo / "pipeline" / "config.pbtxt"
    config.write_text(config.read_text().replace("count: 200", "count: 2"))
    rng = np.random.default_rng(0)
    outputs = _serve(tmp_path, repo, {s: rng.random((5, 1, 8, 8), dtype=np.float32) for s in ("read", "verify")})
    assert outputs == {"verify__OUTPUT": [5, 10]}


def test_tritonserver_refuses_a_broken_repository(tmp_path):
    pytest.importorskip("rapidocr_onnxruntime")
    out = emit_example("ocr", tmp_path / "out", tmp_path / "cache")
    repo = tmp_path / "broken"
    shutil.copytree(out / "triton" / "model_repository", repo)
    config = repo / "angle" / "config.pbtxt"
    text = config.read_text()  # a preferred batch size above max_batch_size (the server refuses it)
    text = (text.replace("dynamic_batching {", "dynamic_batching { preferred_batch_size: [ 4096 ]", 1)
            if "dynamic_batching {" in text else text + "dynamic_batching { preferred_batch_size: [ 4096 ] }\n")
    config.write_text(text)
    server = TritonProcess(prepare_layout(tmp_path / "server", PYTHON), repo, tmp_path / "tritonserver.log")
    try:
        outcome = server.wait_ready(timeout_s=120)
    finally:
        server.stop()
    assert not outcome.ready and outcome.returncode not in (None, 0)
    assert "preferred" in outcome.log and "angle" in outcome.log
    assert not server.group_alive()
