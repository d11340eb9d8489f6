"""Generated variants: onnxruntime int8 quantisation (dynamic, and static QDQ with a calibration set)
and float16 conversion of ONNX models.

Results are cached by content: the same base file, mode and calibration give the same file, so a
resumed run does not quantise or convert again. Quantisation and fp16 can lose accuracy and can be
slower; the profile shows both because a generated variant is evaluated and timed like any other.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np

from profiler.errors import VariantError, first_line
from profiler.manifest import QuantMode
from pipeplan_files.write import atomic_target

log = logging.getLogger(__name__)

# Part of the cache key: bump when the quantisation recipe changes, so old files are not reused.
RECIPE_VERSION = 2
# Part of the fp16 cache key: bump when the float16 conversion recipe changes.
FP16_RECIPE_VERSION = 1


def _digest(path: Path, *extra: str) -> str:
    h = hashlib.sha256(path.read_bytes())
    for part in extra:
        h.update(part.encode())
    return h.hexdigest()[:16]


def quantize(base: Path, mode: QuantMode, cache_dir: Path, calibration: np.ndarray | None = None,
             input_name: str | None = None) -> Path:
    """Write (or reuse) the int8 version of ``base``; returns its path.

    Static mode needs ``calibration`` (items stacked on axis 0; fed one batch of up to 32 at a time).
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    base, cache_dir = base.resolve(), cache_dir.resolve()
    cal_key = "" if calibration is None else hashlib.sha256(np.ascontiguousarray(calibration).tobytes()).hexdigest()
    out = cache_dir / f"{base.stem}.{mode.value}-int8.{_digest(base, mode.value, cal_key, str(RECIPE_VERSION))}.onnx"
    if out.exists():
        return out
    if mode is QuantMode.STATIC and (calibration is None or len(calibration) == 0):
        raise VariantError(f"{base}: static quantisation needs a calibration set; set 'calibration' on the model.")
    cache_dir.mkdir(parents=True, exist_ok=True)
    # onnxruntime's quantisation tools drop scratch files (sym_shape_infer_temp.onnx, *.data) in the
    # working directory on some paths; run them inside the scratch folder so nothing leaks.
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp, contextlib.chdir(tmp):
        lifted = Path(tmp) / "lifted.onnx"
        _lift_constants(base, lifted)
        prepared = Path(tmp) / "prepared.onnx"
        try:
            quant_pre_process(str(lifted), str(prepared), skip_symbolic_shape=False)
        except Exception as exc:  # pre-processing is an optimisation; quantise the raw model instead
            log.info("quant_pre_process failed for %s (%s); quantising the model as is", base, exc)
            shutil.copyfile(lifted, prepared)
        result = Path(tmp) / "quantized.onnx"
        root = logging.getLogger()
        root.addFilter(_drop_preprocessing_advice)
        try:
            if mode is QuantMode.DYNAMIC:
                quantize_dynamic(str(prepared), str(result), weight_type=QuantType.QUInt8)
            else:
                name = input_name or _first_input(prepared)
                # Per-channel QDQ needs DequantizeLinear's 'axis' (opset 13); older models get per-tensor.
                quantize_static(str(prepared), str(result), _Reader(name, calibration),
                                quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                                weight_type=QuantType.QInt8, per_channel=_opset(prepared) >= 13)
        except VariantError:
            raise
        except Exception as exc:
            raise VariantError(f"{base}: {mode.value} int8 quantisation failed ({first_line(exc)}).") from None
        finally:
            root.removeFilter(_drop_preprocessing_advice)
        _copy_metadata(base, result)
        shutil.move(str(result), out)  # same folder, so the finished file appears at once
    return out


def _drop_preprocessing_advice(record: logging.LogRecord) -> bool:
    """onnxruntime's quantiser advises pre-processing on the root logger (we have just done it, or it
    failed and was logged); keep that advice out of the user's progress output."""
    return not record.getMessage().startswith("Please consider")


def to_fp16(base_path: Path, out_dir: Path, keep_io_types: bool = True) -> Path:
    """Write (or reuse) the float16 version of the ONNX model ``base_path`` in ``out_dir``; returns its path.

    Uses onnxruntime's bundled converter: weights and activations become float16, ops on its block
    list stay float32 behind Cast nodes. With ``keep_io_types`` the graph's inputs and outputs stay
    float32 (a Cast at each end), so the profiler's float32 batches still fit. The file name carries
    the base file's content hash, so a rerun reuses it. onnxruntime's CPU provider runs the result,
    but on x86 it casts back to float32 around Conv/Gemm/MatMul (no fp16 kernels), so fp16 pays off
    on CUDA only.
    """
    base_path, out_dir = base_path.resolve(), out_dir.resolve()
    if not base_path.is_file():
        raise VariantError(f"{base_path}: no such ONNX file; fp16 conversion needs an existing base model.")
    io_key = "float32-io" if keep_io_types else "float16-io"
    out = out_dir / f"{base_path.stem}.fp16.{_digest(base_path, 'fp16', io_key, str(FP16_RECIPE_VERSION))}.onnx"
    if out.exists():
        return out
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    try:
        model = onnx.load(str(base_path))
    except Exception as exc:  # protobuf raises DecodeError and friends for files that are not ONNX
        raise VariantError(f"{base_path}: cannot read it as an ONNX model ({first_line(exc)}); "
                           "fp16 conversion needs an ONNX base variant.") from None
    try:
        half = convert_float_to_float16(model, keep_io_types=keep_io_types)
        with atomic_target(out) as tmp:
            onnx.save(half, str(tmp))
    except Exception as exc:  # the converter raises AssertionError/ValueError/KeyError on graphs it cannot handle
        raise VariantError(f"{base_path}: float16 conversion failed ({first_line(exc)}); "
                           "profile the float32 variant instead or report the model.") from None
    log.info("wrote the fp16 version of %s to %s", base_path, out)
    return out


def _lift_constants(base: Path, out: Path) -> None:
    """Turn Constant nodes holding tensors into initializers: the quantiser only quantises weights
    that are initializers, and exporters such as paddle2onnx store them as Constant nodes."""
    import onnx

    model = onnx.load(str(base))
    kept = []
    for node in model.graph.node:
        value = next((a for a in node.attribute if a.name == "value" and a.type == onnx.AttributeProto.TENSOR), None)
        if node.op_type == "Constant" and value is not None and len(node.output) == 1:
            tensor = onnx.TensorProto()
            tensor.CopyFrom(value.t)
            tensor.name = node.output[0]
            model.graph.initializer.append(tensor)
        else:
            kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)
    onnx.save(model, str(out))


def _copy_metadata(base: Path, result: Path) -> None:
    """Keep the base model's metadata (e.g. the OCR recogniser's character list) in the int8 file."""
    import onnx

    source = onnx.load(str(base), load_external_data=False)
    if not source.metadata_props:
        return
    target = onnx.load(str(result))
    present = {p.key for p in target.metadata_props}
    for prop in source.metadata_props:
        if prop.key not in present:
            target.metadata_props.add(key=prop.key, value=prop.value)
    onnx.save(target, str(result))


def _opset(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _first_input(path: Path) -> str:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initialisers = {i.name for i in model.graph.initializer}
    return next(i.name for i in model.graph.input if i.name not in initialisers)


class _Reader:
    """A CalibrationDataReader over stacked items, batches of up to 32 (no base class needed)."""

    def __init__(self, input_name: str, items: np.ndarray, batch: int = 32) -> None:
        self._batches = iter([{input_name: items[i:i + batch]} for i in range(0, len(items), batch)])

    def get_next(self):
        return next(self._batches, None)

