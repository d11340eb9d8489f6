"""Ray Serve application emitted by pipeplan: one deployment per stage (and per challenger or mirror),
plus an ingress that runs the plan's DAG. Everything plan-specific is in pipeline.json beside this file.

Request (POST /, JSON): {"id": "optional key", "inputs": {"<stage>": [item, ...]}}, the items each stage
runs on (one item has the shape the manifest gives the stage's variant). A stage runs once all its
'after' stages are done with the request; each item is one call to the stage's deployment, so
@serve.batch batches items across requests as the plan assumes. A stage given no items passes the
request on. Response: {"outputs": {"<sink stage>": [output, ...]}, "routes": {"<stage>": deployment}}.
Stages do not turn one stage's output into the next one's input (model-specific glue, such as
cropping text boxes from a detection map, is not part of a plan).
"""

import asyncio
import hashlib
import json
import uuid
from pathlib import Path

import numpy as np
from ray import serve

from routing import choose

HERE = Path(__file__).resolve().parent
PIPELINE = json.loads((HERE / "pipeline.json").read_text(encoding="utf-8"))


@serve.deployment
class Stage:
    """One variant under onnxruntime with the planned threads; batch size and timeout from user_config."""

    def __init__(self, deployment: str) -> None:
        import onnxruntime as ort

        spec = PIPELINE["deployments"][deployment]
        path = HERE / spec["model_file"]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != spec["sha256"]:
            raise RuntimeError(f"{path}: sha256 {digest} is not the planned file's {spec['sha256']}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = spec["threads"]
        options.inter_op_num_threads = 1
        providers = ["CUDAExecutionProvider"] if spec["device"] == "cuda" else ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.input_name = spec["input_name"]
        self.dtype = np.dtype(spec["input_dtype"])

    def reconfigure(self, user_config: dict) -> None:
        self.run_batch.set_max_batch_size(user_config["max_batch_size"])
        self.run_batch.set_batch_wait_timeout_s(user_config["batch_wait_timeout_s"])

    @serve.batch(max_batch_size=1, batch_wait_timeout_s=0.0)
    async def run_batch(self, items: list) -> list:
        batch = np.stack([np.asarray(item, dtype=self.dtype) for item in items])
        return list(self.session.run(None, {self.input_name: batch})[0])

    async def __call__(self, item):
        return await self.run_batch(item)


@serve.deployment
class Ingress:
    """Runs the DAG for each request through the stage deployments' handles."""

    def __init__(self, handles: dict) -> None:
        self.handles = handles

    async def run(self, body: dict) -> dict:
        key = str(body.get("id") or uuid.uuid4())
        inputs = body.get("inputs", {})
        done: dict = {}
        routes: dict = {}
        results: dict = {}

        async def stage_task(stage: dict) -> None:
            await asyncio.gather(*(done[p] for p in stage["after"]))
            target, mirrors = choose(stage["units"], key, stage["name"])
            routes[stage["name"]] = target
            items = inputs.get(stage["name"], [])
            for mirror in mirrors:  # a copy of the traffic; the answers are dropped
                for item in items:
                    self.handles[mirror].remote(item)
            results[stage["name"]] = await asyncio.gather(*(self.handles[target].remote(i) for i in items))

        for stage in PIPELINE["stages"]:  # parents first, so every awaited parent task exists
            done[stage["name"]] = asyncio.ensure_future(stage_task(stage))
        await asyncio.gather(*done.values())
        outputs = {s: [np.asarray(r).tolist() for r in results[s]] for s in PIPELINE["sinks"]}
        return {"outputs": outputs, "routes": routes}

    async def __call__(self, request) -> dict:
        return await self.run(await request.json())


app = Ingress.options(name=PIPELINE["ingress"]).bind(
    {name: Stage.options(name=name).bind(name) for name in sorted(PIPELINE["deployments"])})
