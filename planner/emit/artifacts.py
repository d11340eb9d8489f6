"""Find each planned variant's ONNX file through the model manifest, with the profiler's own code.

The profiler builds or locates variants (zoo members, int8 and fp16 versions) into a cache; emitting
reuses exactly that (:class:`profiler.runner.VariantRunner`), so the file deployed is the file that was
measured. The OCR zoo ships its models inside rapidocr-onnxruntime (no torch); the digits zoo trains
with torch on first use, then reads the cache.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from planner.emit.base import HardwarePlacement, VariantArtifact, units
from planner.errors import EmitError
from planner.plan import Plan
from pipeplan_files.errors import FileError
from profiler.errors import ProfilerError


def _signature(path: Path) -> tuple[str, tuple[int, ...], str, str, tuple[int, ...], str]:
    """(input name, (), input dtype, output name, output item dims, output dtype) of an ONNX file."""
    try:
        import onnx
        from onnx.helper import tensor_dtype_to_np_dtype
    except ImportError:
        raise EmitError("reading a variant's inputs and outputs needs the onnx package; "
                        "`pip install '.[profile]'`.") from None
    model = onnx.load(str(path), load_external_data=False)
    initialisers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initialisers]

    def describe(value) -> tuple[str, tuple[int, ...], str]:
        tensor = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
        return value.name, dims[1:], tensor_dtype_to_np_dtype(tensor.elem_type).name

    in_name, _, in_dtype = describe(inputs[0])
    out_name, out_dims, out_dtype = describe(model.graph.output[0])
    return in_name, (), in_dtype, out_name, out_dims, out_dtype


def resolve(plan: Plan, manifest_path: Path, cache_dir: Path) -> tuple[dict[tuple[str, str], VariantArtifact],
                                                                     dict[str, HardwarePlacement]]:
    """Every (model, variant) the plan runs -> its file and signature; every hardware name -> placement."""
    try:
        from profiler.manifest import load_manifest
        from profiler.runner import RunnerConfig, VariantRunner
    except ImportError as exc:
        raise EmitError(f"finding the variants' model files needs the profiler's runtimes ({exc}); "
                        "`pip install '.[profile]'`.") from None

    try:
        manifest = load_manifest(manifest_path)
    except ProfilerError as exc:
        raise EmitError(str(exc)) from None
    runner = VariantRunner(RunnerConfig(manifest=manifest, manifest_dir=manifest_path.resolve().parent,
                                        cache_dir=cache_dir, settings=manifest.method.settings(False)))
    models = {m.name: m for m in manifest.models}
    artifacts: dict[tuple[str, str], VariantArtifact] = {}
    for unit in units(plan):
        key = (unit.model, unit.variant)
        if key in artifacts:
            continue
        model = models.get(unit.model)
        if model is None:
            raise EmitError(f"stage '{unit.stage}': model '{unit.model}' is not in the manifest {manifest_path} "
                            f"(models: {sorted(models)}); pass the manifest the profile table was made from.")
        variant = next((v for v in model.variants if v.name == unit.variant), None)
        if variant is None:
            raise EmitError(f"stage '{unit.stage}': variant '{unit.variant}' is not a variant of model "
                            f"'{unit.model}' in {manifest_path} (variants: {[v.name for v in model.variants]}).")
        try:
            built = runner.artifact(model, variant)
        except ImportError as exc:
            raise EmitError(f"stage '{unit.stage}', variant '{unit.variant}': building its model file needs a "
                            f"package that is not installed ({exc}); `pip install '.[profile]'`.") from None
        except (ProfilerError, FileError) as exc:
            raise EmitError(f"stage '{unit.stage}', variant '{unit.variant}': its model file could not be built "
                            f"or found ({exc}).") from None
        if built.path is None:
            raise EmitError(f"stage '{unit.stage}': variant '{unit.variant}' is a torch module, not an ONNX file; "
                            "the emitted engines run ONNX through onnxruntime. Export it to ONNX and list it "
                            "in the manifest as an 'onnx' source.")
        data = built.path.read_bytes()
        in_name, _, in_dtype, out_name, out_dims, out_dtype = _signature(built.path)
        item = variant.input or model.input
        artifacts[key] = VariantArtifact(
            model=unit.model, variant=unit.variant, path=built.path, sha256=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data), input_name=item.name or in_name, input_shape=tuple(item.shape),
            input_dtype=in_dtype,
            output_name=out_name, output_shape=out_dims, output_dtype=out_dtype)
    placements = {h.name: HardwarePlacement(device=h.device.value, threads=h.threads) for h in manifest.hardware}
    return artifacts, placements
