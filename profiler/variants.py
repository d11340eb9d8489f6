"""Generated variants: onnxruntime int8 quantisation (dynamic, and static QDQ with a calibration set).

Results are cached by content: the same base file, mode and calibration give the same file, so a
resumed run does not quantise again. Quantisation can lose accuracy and can be slower; the profile
shows both because a generated variant is evaluated and timed like any other.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np

from profiler.errors import VariantError
from profiler.manifest import QuantMode

log = logging.getLogger(__name__)


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

    cal_key = "" if calibration is None else hashlib.sha256(np.ascontiguousarray(calibration).tobytes()).hexdigest()
    out = cache_dir / f"{base.stem}.{mode.value}-int8.{_digest(base, mode.value, cal_key)}.onnx"
    if out.exists():
        return out
    if mode is QuantMode.STATIC and (calibration is None or len(calibration) == 0):
        raise VariantError(f"{base}: static quantisation needs a calibration set; set 'calibration' on the model.")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        try:
            quant_pre_process(str(base), str(prepared), skip_symbolic_shape=False)
        except Exception as exc:  # pre-processing is an optimisation; quantise the raw model instead
            log.info("quant_pre_process failed for %s (%s); quantising the model as is", base, exc)
            shutil.copyfile(base, prepared)
        result = Path(tmp) / "quantized.onnx"
        try:
            if mode is QuantMode.DYNAMIC:
                quantize_dynamic(str(prepared), str(result), weight_type=QuantType.QUInt8)
            else:
                name = input_name or _first_input(prepared)
                quantize_static(str(prepared), str(result), _Reader(name, calibration),
                                quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                                weight_type=QuantType.QInt8, per_channel=True)
        except VariantError:
            raise
        except Exception as exc:
            raise VariantError(f"{base}: {mode.value} int8 quantisation failed ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''}).") from None
        shutil.move(str(result), out)  # same folder, so the finished file appears at once
    return out


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

    def rewind(self) -> None:  # not used by the calibrators we call
        pass
