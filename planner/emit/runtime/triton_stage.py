"""Triton python-backend model emitted by pipeplan: one stage's ONNX variant under onnxruntime.

stage.json beside this file names the ONNX file (sha256 checked at load), the input name and dtype,
the intra-op threads and the device. Triton's dynamic batcher forms the batches (config.pbtxt holds
the planned max_batch_size and max_queue_delay_microseconds); execute() runs one batch.
"""

import hashlib
import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        import onnxruntime as ort

        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "stage.json"), encoding="utf-8") as f:
            spec = json.load(f)
        path = os.path.join(here, spec["model_file"])
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if digest != spec["sha256"]:
            raise pb_utils.TritonModelException(f"{path}: sha256 {digest} is not the planned {spec['sha256']}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = spec["threads"]
        options.inter_op_num_threads = 1
        providers = ["CUDAExecutionProvider"] if spec["device"] == "cuda" else ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(path, options, providers=providers)
        self.input_name = spec["input_name"]
        self.output_dtype = np.dtype(spec["output_dtype"])

    def execute(self, requests):
        items = [pb_utils.get_input_tensor_by_name(r, "INPUT").as_numpy() for r in requests]
        outputs = self.session.run(None, {self.input_name: np.concatenate(items)})[0]
        responses, start = [], 0
        for part in items:
            chunk = np.ascontiguousarray(outputs[start:start + len(part)], dtype=self.output_dtype)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT", chunk)]))
            start += len(part)
        return responses
