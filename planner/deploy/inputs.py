"""Real request bodies for a deployed pipeline: the first model's own data, from the model manifest.

The items are the manifest's calibration set of the model (e.g. ``zoo:digits/train``: scikit-learn's
8x8 digit images), so the engine runs on real inputs, not zeros. A request of a stage with fan-out f
carries round(f) items (at least 1), as the plan assumes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from planner.errors import DeployError
from planner.plan import Plan



def real_items(manifest_path: Path, model: str) -> np.ndarray:
    """The model's calibration inputs from the manifest (one row per item)."""
    from profiler import zoo
    from profiler.errors import ProfilerError
    from profiler.manifest import load_manifest

    try:
        manifest = load_manifest(manifest_path)
        found = next((m for m in manifest.models if m.name == model), None)
        if found is None:
            raise DeployError(f"{manifest_path}: model '{model}' (the plan's first stage) is not in the manifest "
                              f"(models: {[m.name for m in manifest.models]}).")
        if not found.calibration:
            raise DeployError(f"{manifest_path}: model '{model}' has no 'calibration' data set, which is where "
                              "load tests take real inputs from; add one (e.g. zoo:digits/train).")
        return np.asarray(zoo.calibration(found.calibration))
    except ProfilerError as exc:
        raise DeployError(str(exc)) from None


def items_per_request(plan: Plan, stage: str) -> int:
    s = next(s for s in plan.stages if s.stage == stage)
    return max(1, int(round(s.fanout)))


def first_stage(plan: Plan) -> str:
    return next(s.stage for s in plan.stages if not s.after)


def triton_bodies(entry: dict, plan: Plan, items_by_stage: dict[str, np.ndarray], count: int = 64) -> list[dict]:
    """KServe-v2 JSON bodies for the emitted 'pipeline' model: input STAGE__INPUT holds the stage's
    fan-out of items ([items, item dims...]), cycling through each stage's real data."""
    declared = {i["name"]: i for i in entry["input"]}
    out = []
    for k in range(count):
        tensors = []
        for stage, items in sorted(items_by_stage.items()):
            name = f"{stage}__INPUT"
            if name not in declared:
                raise DeployError(f"Triton model '{entry['name']}' has no input '{name}' (inputs: {sorted(declared)}); "
                                  "deploy a repository emitted from this plan.")
            n = items_per_request(plan, stage)
            rows = items[[(k * n + j) % len(items) for j in range(n)]]
            tensors.append({"name": name, "shape": list(rows.shape),
                            "datatype": declared[name]["data_type"].removeprefix("TYPE_"),
                            "data": rows.astype(np.float64).ravel().tolist()})
        out.append({"inputs": tensors})
    return out


def ray_bodies(plan: Plan, items_by_stage: dict[str, np.ndarray], count: int = 64) -> list[dict]:
    """Ray Serve app bodies: ``{"inputs": {stage: [item, ...]}}`` with each stage's fan-out of items."""
    out = []
    for k in range(count):
        inputs = {}
        for stage, items in sorted(items_by_stage.items()):
            n = items_per_request(plan, stage)
            inputs[stage] = [items[(k * n + j) % len(items)].tolist() for j in range(n)]
        out.append({"id": f"r{k}", "inputs": inputs})
    return out
