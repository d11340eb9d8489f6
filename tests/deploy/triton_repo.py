"""A small hand-written Triton repository (numpy python models + ensemble), for lifecycle tests that
must not wait on the emitters: two stages with dynamic batching and instance counts, as a plan sets."""

from __future__ import annotations

from pathlib import Path

MODEL_PY = '''
import time
import numpy as np
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def initialize(self, args):
        {init}

    def execute(self, requests):
        out = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "{inp}").as_numpy()
            time.sleep({sleep_s})
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("{out}", (x * 2.0).astype(np.float32))]))
        return out
'''

CONFIG = '''name: "{name}"
backend: "python"
max_batch_size: {batch}
input [ {{ name: "{inp}" data_type: TYPE_FP32 dims: [ 64 ] }} ]
output [ {{ name: "{out}" data_type: TYPE_FP32 dims: [ 64 ] }} ]
dynamic_batching {{ preferred_batch_size: [ {batch} ] max_queue_delay_microseconds: {delay_us} }}
instance_group [ {{ count: {count} kind: KIND_CPU }} ]
'''

ENSEMBLE = '''name: "pipeline"
platform: "ensemble"
max_batch_size: 1
input [ { name: "RAW" data_type: TYPE_FP32 dims: [ 64 ] } ]
output [ { name: "SCORES" data_type: TYPE_FP32 dims: [ 64 ] } ]
ensemble_scheduling { step [
  { model_name: "pre" model_version: -1 input_map { key: "RAW" value: "RAW" } output_map { key: "FEATS" value: "f" } },
  { model_name: "cls" model_version: -1 input_map { key: "FEATS" value: "f" } output_map { key: "SCORES" value: "SCORES" } } ] }
'''


def write_repo(root: Path, *, init: str = "pass", sleep_s: float = 0.001) -> Path:
    """Write the repository under root/triton; ``init`` is the body of a stage's initialize()."""
    repo = root / "triton"
    for name, inp, out in (("pre", "RAW", "FEATS"), ("cls", "FEATS", "SCORES")):
        (repo / name / "1").mkdir(parents=True)
        (repo / name / "config.pbtxt").write_text(CONFIG.format(name=name, inp=inp, out=out, batch=4, delay_us=1000,
                                                                count=1))
        body = init if name == "cls" else "pass"
        (repo / name / "1" / "model.py").write_text(MODEL_PY.format(init=body, inp=inp, out=out, sleep_s=sleep_s))
    (repo / "pipeline" / "1").mkdir(parents=True)
    (repo / "pipeline" / "config.pbtxt").write_text(ENSEMBLE)
    return root


def body(items: int = 1) -> dict:
    return {"inputs": [{"name": "RAW", "shape": [items, 64], "datatype": "FP32", "data": [0.5] * (64 * items)}]}
