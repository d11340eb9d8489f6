"""fp16 variants made from ONNX bases (profiler.variants.to_fp16): dtypes, outputs, caching, errors."""

from __future__ import annotations

import numpy as np
import pytest

from profiler.errors import VariantError
from tests.fixtures import tiny_classifier

onnx = pytest.importorskip("onnx", reason="building test models needs onnx (the 'profile' extra)")
ort = pytest.importorskip("onnxruntime")

from profiler.variants import to_fp16  # noqa: E402 - needs onnxruntime, skipped above when absent

# float16 keeps 11 significant bits (relative step ~1e-3); weights and activations both round.
FP16_RTOL = 1e-2


def _inputs(n: int = 16) -> np.ndarray:
    return np.random.default_rng(3).normal(size=(n, 4)).astype(np.float32)


def _run(path, provider: str) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=[provider])
    return session.run(None, {"input": _inputs()})[0]


def _io_types(model) -> set[int]:
    return {v.type.tensor_type.elem_type for v in (*model.graph.input, *model.graph.output)}


def test_weights_become_float16_and_io_stays_float32(tmp_path):
    half = onnx.load(str(to_fp16(tiny_classifier(tmp_path / "tiny.onnx"), tmp_path / "fp16")))
    assert half.graph.initializer
    assert {i.data_type for i in half.graph.initializer} == {onnx.TensorProto.FLOAT16}
    assert _io_types(half) == {onnx.TensorProto.FLOAT}


def test_float16_io_when_asked_and_cached_separately(tmp_path):
    base = tiny_classifier(tmp_path / "tiny.onnx")
    kept, native = to_fp16(base, tmp_path / "fp16"), to_fp16(base, tmp_path / "fp16", keep_io_types=False)
    assert kept != native
    assert _io_types(onnx.load(str(native))) == {onnx.TensorProto.FLOAT16}


def test_outputs_match_float32_on_the_cpu_provider(tmp_path):
    # onnxruntime's CPU provider runs the converted file (it casts around ops without fp16 kernels).
    base = tiny_classifier(tmp_path / "tiny.onnx")
    expected, got = _run(base, "CPUExecutionProvider"), _run(to_fp16(base, tmp_path / "fp16"), "CPUExecutionProvider")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=FP16_RTOL, atol=FP16_RTOL * np.abs(expected).max())


@pytest.mark.gpu
def test_outputs_match_float32_on_the_cuda_provider(tmp_path):
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("needs onnxruntime-gpu with a CUDA GPU (no CUDAExecutionProvider)")
    base = tiny_classifier(tmp_path / "tiny.onnx")
    expected, got = _run(base, "CPUExecutionProvider"), _run(to_fp16(base, tmp_path / "fp16"), "CUDAExecutionProvider")
    np.testing.assert_allclose(got, expected, rtol=FP16_RTOL, atol=FP16_RTOL * np.abs(expected).max())


def test_rerun_reuses_the_file(tmp_path):
    base = tiny_classifier(tmp_path / "tiny.onnx")
    out_dir = tmp_path / "fp16"
    first = to_fp16(base, out_dir)
    written_ns = first.stat().st_mtime_ns
    second = to_fp16(base, out_dir)
    assert second == first and second.stat().st_mtime_ns == written_ns
    assert sorted(p.name for p in out_dir.iterdir()) == [first.name]  # no temporary files left behind
    assert first.name.startswith("tiny.fp16.")


def test_new_base_content_gives_a_new_file(tmp_path):
    base = tiny_classifier(tmp_path / "tiny.onnx")
    first = to_fp16(base, tmp_path / "fp16")
    tiny_classifier(base, seed=1)
    assert to_fp16(base, tmp_path / "fp16") != first


def test_metadata_is_kept(tmp_path):
    # The OCR recogniser keeps its character list in the file's metadata.
    base = tiny_classifier(tmp_path / "tiny.onnx")
    model = onnx.load(str(base))
    model.metadata_props.add(key="character", value="abc")
    onnx.save(model, str(base))
    half = onnx.load(str(to_fp16(base, tmp_path / "fp16")))
    assert {p.key: p.value for p in half.metadata_props} == {"character": "abc"}


def test_a_file_that_is_not_onnx_is_a_variant_error(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not an onnx file")
    with pytest.raises(VariantError, match="broken.onnx: cannot read it as an ONNX model"):
        to_fp16(bad, tmp_path / "fp16")
    assert not (tmp_path / "fp16").exists()


def test_a_missing_file_is_a_variant_error(tmp_path):
    with pytest.raises(VariantError, match="no such ONNX file"):
        to_fp16(tmp_path / "absent.onnx", tmp_path / "fp16")
