"""The model manifest: validation messages, method overrides, the shipped zoo manifests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from profiler.errors import ManifestError
from profiler.manifest import QuantizedSource, load_manifest, parse_manifest
from profiler.measure import FULL_METHOD, QUICK_METHOD

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def minimal(**changes) -> dict:
    data = {
        "schema_version": 1,
        "name": "m",
        "hardware": [{"name": "cpu-1", "threads": 1}],
        "models": [{"name": "tiny", "input": {"shape": [4]}, "evaluation": {"dataset": "eval.npz"},
                    "variants": [{"name": "a", "source": {"kind": "onnx", "path": "a.onnx"}}]}],
    }
    data.update(changes)
    return data


def test_minimal_manifest_defaults():
    manifest = parse_manifest(minimal())
    assert manifest.batch_sizes == (1, 2, 4, 8, 16, 32)
    assert manifest.method.settings(False) == FULL_METHOD
    assert manifest.method.settings(True) == QUICK_METHOD
    assert manifest.models[0].input.dtype.value == "float32"


def test_unknown_key_names_the_file_the_field_and_the_allowed_keys():
    data = minimal()
    data["models"][0]["variants"][0]["sorce"] = {}
    with pytest.raises(ManifestError) as caught:
        parse_manifest(data, "m.yaml")
    message = str(caught.value)
    assert message.startswith("m.yaml: ")
    assert "field 'models[0] ('tiny').variants[0] ('a').sorce': unknown key" in message
    assert "allowed keys here: ['accuracy', 'input', 'name', 'options', 'source']" in message


def test_unknown_key_inside_a_source_lists_that_source_kinds_keys():
    data = minimal()
    data["models"][0]["variants"][0]["source"] = {"kind": "zoo", "zoo": "digits", "model": "cnn16", "pth": "x"}
    with pytest.raises(ManifestError, match=re.escape(
            "field 'models[0] ('tiny').variants[0] ('a').source.pth': unknown key; "
            "allowed keys here: ['kind', 'model', 'zoo']")):
        parse_manifest(data, "m.yaml")


def test_wrong_schema_version_and_bad_batches():
    with pytest.raises(ManifestError, match="schema_version"):
        parse_manifest(minimal(schema_version=2))
    with pytest.raises(ManifestError, match="batch_sizes"):
        parse_manifest(minimal(batch_sizes=[0, 4]))


def test_quantized_base_must_exist_and_accuracy_must_have_a_source():
    data = minimal()
    data["models"][0]["variants"].append({"name": "q", "source": {"kind": "quantized", "base": "nope", "mode": "static"}})
    with pytest.raises(ManifestError, match="base 'nope'"):
        parse_manifest(data)
    data = minimal()
    del data["models"][0]["evaluation"]
    with pytest.raises(ManifestError, match="no accuracy"):
        parse_manifest(data)
    data["models"][0]["variants"][0]["accuracy"] = 0.7
    assert parse_manifest(data).models[0].variants[0].accuracy == 0.7


def test_method_overrides_apply_to_full_runs_only():
    manifest = parse_manifest(minimal(method={"window_ms": 50, "max_point_s": 2, "early_stop": True}))
    assert manifest.method.settings(False).window_ms == 50
    assert manifest.method.settings(True).window_ms == QUICK_METHOD.window_ms
    assert manifest.method.early_stop


def test_missing_file_is_a_manifest_error(tmp_path):
    with pytest.raises(ManifestError, match="no such manifest"):
        load_manifest(tmp_path / "absent.yaml")


@pytest.mark.parametrize("name", ["digits.manifest.yaml", "ocr.manifest.yaml"])
def test_shipped_manifests_validate(name):
    manifest = load_manifest(CONFIGS / name)
    names = {h.name for h in manifest.hardware}
    assert names == {"cpu-1", "cpu-2"}
    assert any(isinstance(v.source, QuantizedSource) for m in manifest.models for v in m.variants)


def test_a_duplicate_key_in_a_manifest_file_is_refused_with_its_line(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("schema_version: 1\nname: a\nname: b\nhardware: [{name: cpu-1}]\nbatch_sizes: [1]\nmodels: []\n")
    with pytest.raises(ManifestError, match=r"m\.yaml.*duplicate key 'name'"):
        load_manifest(path)
