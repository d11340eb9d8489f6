"""Import of perf_analyzer -f CSV and Model Analyzer metrics-model-inference.csv (fixtures written here)."""

from __future__ import annotations

import pytest

from profiler.errors import ImportFormatError
from profiler.imports import import_model_analyzer, import_perf_analyzer

PERF_ANALYZER_CSV = """\
Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency,Avg latency,request/response,response wait
2,1520.5,40,300,900,50,1200,30,20,2600,2900,3000,3400,2620,0,0
1,980.25,38,290,20,48,1150,28,18,1010,1100,1180,1450,1030,0,0
"""

MODEL_ANALYZER_CSV = """\
Model,Batch,Concurrency,Model Config Path,Instance Group,Max Batch Size,Satisfies Constraints,Throughput (infer/sec),p99 Latency (ms),p95 Latency (ms),Avg Latency (ms)
resnet50,1,1,resnet50_config_default,1:GPU,8,Yes,410.2,3.1,2.9,2.4
resnet50,1,2,resnet50_config_default,1:GPU,8,Yes,700.0,4.0,3.6,2.8
resnet50,8,1,resnet50_config_default,1:GPU,8,Yes,1900.0,5.2,4.8,4.2
resnet50,1,1,resnet50_config_2,2:GPU,8,Yes,450.0,3.0,2.8,2.2
"""


def test_perf_analyzer_takes_concurrency_1_and_converts_usec():
    table = import_perf_analyzer(PERF_ANALYZER_CSV, "pa.csv", "resnet", "resnet50-trt", "gpu-t4", 4, 0.76)
    (row,) = table.rows
    assert row.key == ("resnet", "resnet50-trt", "gpu-t4", 4)
    assert row.latency_p50_ms == pytest.approx(1.010)
    assert row.latency_p95_ms == pytest.approx(1.180)
    assert row.latency_p99_ms == pytest.approx(1.450)
    assert row.latency_mean_ms == pytest.approx(1.030)
    assert row.throughput_rps == pytest.approx(980.25)
    assert row.accuracy == 0.76
    assert table.metadata["imported_level"] == "concurrency 1"


def test_perf_analyzer_other_concurrency_and_errors():
    table = import_perf_analyzer(PERF_ANALYZER_CSV, "pa.csv", "m", "v", "gpu-t4", 1, 0.5, concurrency=2)
    assert table.rows[0].throughput_rps == pytest.approx(1520.5)
    with pytest.raises(ImportFormatError, match="concurrency 4"):
        import_perf_analyzer(PERF_ANALYZER_CSV, "pa.csv", "m", "v", "gpu-t4", 1, 0.5, concurrency=4)
    with pytest.raises(ImportFormatError, match="p99 latency"):
        import_perf_analyzer("Concurrency,Inferences/Second,p50 latency\n1,10,100\n", "bad.csv", "m", "v", "g", 1, 0.5)
    with pytest.raises(ImportFormatError, match="row 1, column 'p50 latency'"):
        import_perf_analyzer("Concurrency,Inferences/Second,p50 latency,p99 latency\n1,10,fast,100\n", "bad.csv",
                             "m", "v", "g", 1, 0.5)


def test_model_analyzer_rows_per_config_and_batch():
    table = import_model_analyzer(MODEL_ANALYZER_CSV, "ma.csv", "gpu-t4",
                                  {"resnet50_config_default": 0.76, "resnet50_config_2": 0.76})
    rows = table.index()
    assert set(rows) == {("resnet50", "resnet50_config_default", "gpu-t4", 1),
                         ("resnet50", "resnet50_config_default", "gpu-t4", 8),
                         ("resnet50", "resnet50_config_2", "gpu-t4", 1)}
    low = rows[("resnet50", "resnet50_config_default", "gpu-t4", 1)]
    assert low.throughput_rps == pytest.approx(410.2)  # concurrency 1, not 2
    assert low.latency_p50_ms == pytest.approx(2.4)  # the average stands in, and metadata says so
    assert "average" in table.metadata["p50_note"]


def test_model_analyzer_needs_accuracy_and_columns():
    with pytest.raises(ImportFormatError, match="no accuracy given"):
        import_model_analyzer(MODEL_ANALYZER_CSV, "ma.csv", "gpu-t4", {"other": 0.5})
    with pytest.raises(ImportFormatError, match="Throughput"):
        import_model_analyzer("Model,Batch,Concurrency,p99 Latency (ms)\nm,1,1,2\n", "ma.csv", "gpu-t4", 0.5)
    with pytest.raises(ImportFormatError, match="empty"):
        import_model_analyzer("", "ma.csv", "gpu-t4", 0.5)


def test_profile_import_cli(tmp_path):
    from typer.testing import CliRunner

    from planner.cli import app
    from profiler.table_io import read_profile_table

    csv_path = tmp_path / "ma.csv"
    csv_path.write_text(MODEL_ANALYZER_CSV, encoding="utf-8")
    out = tmp_path / "imported.csv"
    runner = CliRunner()
    result = runner.invoke(app, ["profile-import", "model-analyzer", str(csv_path), "--out", str(out),
                                 "--hardware", "gpu-t4", "--accuracy", "0.76"])
    assert result.exit_code == 0, result.output
    assert len(read_profile_table(out).rows) == 3
    pa = tmp_path / "pa.csv"
    pa.write_text(PERF_ANALYZER_CSV, encoding="utf-8")
    missing = runner.invoke(app, ["profile-import", "perf-analyzer", str(pa), "--out", str(out), "--hardware", "gpu-t4"])
    assert missing.exit_code == 2 and "--batch-size" in missing.output
