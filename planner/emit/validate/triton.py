"""Triton: parse each config.pbtxt with the ModelConfig protobuf (shipped in tritonclient) and apply
the server's rules the parse does not check (batching, instance kinds, the pipeline's wiring)."""

from __future__ import annotations

import importlib.util
import json
from functools import lru_cache
from pathlib import Path

from planner.emit.validate import ValidatorUnavailable


@lru_cache(maxsize=1)
def _model_config_pb2():
    # tritonclient.grpc's __init__ refuses to import without grpc extras; load the generated module directly.
    spec = importlib.util.find_spec("tritonclient")
    if spec is None or spec.submodule_search_locations is None:
        raise ValidatorUnavailable("Triton config checks need tritonclient and protobuf; `pip install '.[deploy]'`.")
    path = Path(list(spec.submodule_search_locations)[0]) / "grpc" / "model_config_pb2.py"
    try:
        module_spec = importlib.util.spec_from_file_location("pipeplan_triton_model_config_pb2", path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    except ImportError:
        raise ValidatorUnavailable("Triton config checks need protobuf; `pip install '.[deploy]'`.") from None
    return module


def parse(text: str):
    """A ModelConfig message from protobuf text (raises ParseError with the engine's message)."""
    from google.protobuf import text_format

    return text_format.Parse(text, _model_config_pb2().ModelConfig())


def check_repository(repo: Path, gpu_available: bool = False) -> list[str]:
    """Problems of a model repository: unparsable configs and the rules listed in docs/emit.md."""
    from google.protobuf import text_format

    pb2 = _model_config_pb2()
    problems, configs = [], {}
    for config_path in sorted(repo.glob("*/config.pbtxt")):
        name = config_path.parent.name
        try:
            config = parse(config_path.read_text())
        except text_format.ParseError as exc:
            problems.append(f"{config_path}: {exc}")
            continue
        configs[name] = config
        if config.name != name:
            problems.append(f"{config_path}: name '{config.name}' is not the folder's '{name}'")
        if not (config_path.parent / "1" / "model.py").is_file():
            problems.append(f"{config_path.parent}: no 1/model.py for the python backend")
        if config.HasField("dynamic_batching"):
            if config.max_batch_size < 1:
                problems.append(f"{name}: dynamic_batching needs max_batch_size >= 1")
            for p in config.dynamic_batching.preferred_batch_size:
                if not 1 <= p <= config.max_batch_size:
                    problems.append(f"{name}: preferred batch size {p} not in [1, {config.max_batch_size}]")
        for group in config.instance_group:
            if group.count < 1:
                problems.append(f"{name}: instance_group count {group.count} < 1")
            if group.kind == pb2.ModelInstanceGroup.KIND_GPU and not gpu_available:
                problems.append(f"{name}: KIND_GPU on a machine without a GPU (use the _local repository)")
    pipeline_json = repo / "pipeline" / "1" / "pipeline.json"
    if pipeline_json.is_file() and "pipeline" in configs:
        pipeline = json.loads(pipeline_json.read_text())
        declared = {i.name for i in configs["pipeline"].input}
        for stage in pipeline["stages"]:
            if f"{stage['name']}__INPUT" not in declared:
                problems.append(f"pipeline: no input {stage['name']}__INPUT for stage {stage['name']}")
            for unit in stage["units"]:
                if unit["deployment"] not in configs:
                    problems.append(f"pipeline: stage {stage['name']} routes to missing model {unit['deployment']}")
        outputs = {o.name for o in configs["pipeline"].output}
        for sink in pipeline["sinks"]:
            if f"{sink}__OUTPUT" not in outputs:
                problems.append(f"pipeline: no output {sink}__OUTPUT for sink {sink}")
    return problems
