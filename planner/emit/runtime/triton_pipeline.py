"""Triton python-backend (BLS) model emitted by pipeplan: runs the plan's DAG over the stage models.

Inputs: STAGE__INPUT, the items of each stage ([items, item dims...]). A stage runs once its 'after'
stages are done; each item is one request to the stage's model, so Triton's dynamic batcher batches
items across requests as the plan assumes. A share of requests goes to a challenger model, and a
mirror model gets a copy of every item (answers dropped), as pipeline.json says. Outputs:
SINK__OUTPUT for each sink stage. One request runs per instance at a time, so config.pbtxt gives this
model as many instances as requests the plan can have in flight.
"""

import asyncio
import json
import os
import uuid

import numpy as np
import triton_python_backend_utils as pb_utils

from routing import choose


class TritonPythonModel:
    def initialize(self, args):
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "pipeline.json"), encoding="utf-8") as f:
            self.pipeline = json.load(f)

    async def _item(self, model, item):
        request = pb_utils.InferenceRequest(model_name=model, requested_output_names=["OUTPUT"],
                                            inputs=[pb_utils.Tensor("INPUT", item[None])])
        response = await request.async_exec()
        if response.has_error():
            raise pb_utils.TritonModelException(f"{model}: {response.error().message()}")
        return pb_utils.get_output_tensor_by_name(response, "OUTPUT").as_numpy()[0]

    async def _run(self, request):
        key = str(uuid.uuid4())
        done, results = {}, {}

        async def stage_task(stage):
            await asyncio.gather(*(done[p] for p in stage["after"]))
            tensor = pb_utils.get_input_tensor_by_name(request, f"{stage['name']}__INPUT")
            items = [] if tensor is None else list(tensor.as_numpy())
            target, mirrors = choose(stage["units"], key, stage["name"])
            for mirror in mirrors:  # a copy of the traffic; the answers are dropped
                for item in items:
                    asyncio.ensure_future(self._item(mirror, item))
            results[stage["name"]] = await asyncio.gather(*(self._item(target, i) for i in items))

        for stage in self.pipeline["stages"]:  # parents first
            done[stage["name"]] = asyncio.ensure_future(stage_task(stage))
        await asyncio.gather(*done.values())
        tensors = []
        for sink in self.pipeline["sinks"]:
            spec = self.pipeline["outputs"][sink]
            rows = results[sink]
            array = np.stack(rows) if rows else np.zeros([0] + [max(d, 0) for d in spec["shape"]], spec["dtype"])
            tensors.append(pb_utils.Tensor(f"{sink}__OUTPUT", np.ascontiguousarray(array, dtype=spec["dtype"])))
        return pb_utils.InferenceResponse(tensors)

    async def execute(self, requests):
        return list(await asyncio.gather(*(self._run(r) for r in requests)))
