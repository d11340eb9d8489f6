"""The torch backend (CPU here; CUDA where a GPU exists) and fp16 variant generation."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures import tiny_setup, write_manifest

torch = pytest.importorskip("torch", reason="the torch backend needs torch==2.13.0 (the 'torch' extra)")
pytest.importorskip("onnxruntime", reason="the evaluation data set is labelled with onnxruntime")

from profiler.backends.torch_backend import TorchModel, build_module  # noqa: E402
from profiler.errors import VariantError  # noqa: E402
from profiler.manifest import HardwareSetting  # noqa: E402
from profiler.session import profile_manifest  # noqa: E402

FACTORY = {"kind": "torch", "factory": "tests.fixtures:tiny_torch_module", "kwargs": {"hidden": 8}}
has_cuda = torch.cuda.is_available()


def test_torch_cpu_module_runs_and_times():
    model = TorchModel(build_module(FACTORY["factory"], {}), HardwareSetting(name="cpu-1", threads=1))
    batch = np.zeros((3, 4), dtype=np.float32)
    (out,) = model.run(batch)
    assert out.shape == (3, 3)
    assert model.timed_run(batch) > 0


def test_bad_factory_is_a_variant_error():
    with pytest.raises(VariantError, match="cannot be imported"):
        build_module("tests.nowhere:thing", {})


def test_torch_variant_profiled_and_fp16_fails_cleanly_without_gpu(tmp_path):
    tiny_setup(tmp_path)
    manifest = write_manifest(tmp_path, [{"name": "torch", "source": FACTORY},
                                         {"name": "half", "source": {"kind": "fp16", "base": "torch"}}], batch_sizes=(1, 4))
    result = profile_manifest(manifest, tmp_path / "ck.jsonl", tmp_path / "cache")
    assert {(r.variant, r.batch_size) for r in result.table.rows} == {("torch", 1), ("torch", 4)}
    assert 0 < result.table.rows[0].accuracy <= 1
    (failure,) = result.failures
    assert failure.variant == "half" and "cuda" in failure.reason.lower()


@pytest.mark.gpu
@pytest.mark.skipif(not has_cuda, reason="needs a CUDA GPU")
def test_cuda_events_and_fp16_on_gpu(tmp_path):
    tiny_setup(tmp_path)
    manifest = write_manifest(tmp_path, [{"name": "torch", "source": FACTORY},
                                         {"name": "half", "source": {"kind": "fp16", "base": "torch"}}],
                              hardware=[{"name": "gpu", "device": "cuda"}], batch_sizes=(1, 8))
    result = profile_manifest(manifest, tmp_path / "ck.jsonl", tmp_path / "cache")
    assert result.failures == ()
    assert {r.variant for r in result.table.rows} == {"torch", "half"}

