"""Reads of the report's inputs (pareto CSV, per-request latencies, tuner folders) and the report's writer.

Formats: docs/formats.md (pareto CSV, ``pipeplan simulate --requests``, "Tuner outputs"), docs/report.md.
Every error names the file, the row and column, what was found and how to fix it.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from planner.errors import InputFileError
from planner.report.build import Report
from planner.report.inputs import FrontierPoint, RequestLatencies, TunerRun
from pipeplan_files.write import atomic_folder

REPORT_HTML = "report.html"
FIGURES_DIR = "figures"


def _rows(path: Path, required: list[str], made_by: str) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise InputFileError(f"{path}: missing column(s) {missing} (found {reader.fieldnames}); this file "
                                     f"should come from {made_by}.")
            return list(reader)
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file; make it with {made_by}.") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputFileError(f"{path}: cannot read it as CSV ({exc}); it should come from {made_by}.") from None


def _number(path: Path, row_no: int, column: str, text: str, empty_is_nan: bool = False) -> float:
    if text == "" and empty_is_nan:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise InputFileError(f"{path}: row {row_no}, column '{column}': found {text!r}; expected a number. "
                             "Re-create the file with pipeplan.") from None


def read_pareto(path: str | Path) -> tuple[FrontierPoint, ...]:
    """The frontier written by ``pipeplan plan --pareto``."""
    path = Path(path)
    made_by = "'pipeplan plan SPEC --pareto FILE'"
    rows = _rows(path, ["accuracy", "cost_usd_per_hour", "predicted_p99_ms", "configuration"], made_by)
    return tuple(FrontierPoint(_number(path, i, "accuracy", r["accuracy"]),
                               _number(path, i, "cost_usd_per_hour", r["cost_usd_per_hour"]),
                               _number(path, i, "predicted_p99_ms", r["predicted_p99_ms"]), r["configuration"])
                 for i, r in enumerate(rows, start=1))


def read_request_latencies(path: str | Path, label: str) -> RequestLatencies:
    """Per-request latencies (``pipeplan simulate --requests``: request, arrival_ms, latency_ms, dropped)."""
    path = Path(path)
    made_by = "'pipeplan simulate PLAN --trace T --requests FILE'"
    rows = _rows(path, ["latency_ms", "dropped"], made_by)
    if not rows:
        raise InputFileError(f"{path}: no requests in the file; simulate or measure a non-empty trace.")
    values = []
    for i, r in enumerate(rows, start=1):
        dropped = r["dropped"].strip() == "1"
        value = math.nan if dropped else _number(path, i, "latency_ms", r["latency_ms"])
        if not dropped and (math.isnan(value) or value < 0):
            raise InputFileError(f"{path}: row {i}, column 'latency_ms': found {r['latency_ms']!r}; a request not "
                                 "dropped needs a latency >= 0 (mark a dropped one with dropped = 1).")
        values.append(value)
    return RequestLatencies(f"{label} ({path.name})", np.array(values, dtype=float))


def _read_run(folder: Path) -> TunerRun:
    made_by = "'pipeplan tune SPEC --trace T --out DIR'"
    summary_path = folder / "summary.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(f"{summary_path}: no such file; a tuner folder holds timeline.csv and summary.json "
                             f"from {made_by}.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(f"{summary_path}: cannot read it as JSON ({exc}).") from None
    missing = [k for k in ("policy", "interval_s", "slo_ms", "trace") if k not in summary]
    if missing:
        raise InputFileError(f"{summary_path}: missing key(s) {missing}; re-create it with {made_by}.")
    path = folder / "timeline.csv"
    rows = _rows(path, ["time_s", "arrival_rps", "planned_rps", "cost_usd", "requests", "slo_attainment"], made_by)
    if not rows:
        raise InputFileError(f"{path}: the timeline has no intervals; re-run {made_by} on a non-empty trace.")
    stages = [c[: -len("_replicas")] for c in rows[0] if c.endswith("_replicas")]
    col = lambda name, empty_is_nan=False: np.array(
        [_number(path, i, name, r[name], empty_is_nan) for i, r in enumerate(rows, start=1)])
    interval_s = float(summary["interval_s"])
    requests = col("requests")
    attainment = np.nan_to_num(col("slo_attainment", empty_is_nan=True), nan=1.0)  # empty: no requests, no misses
    return TunerRun(
        policy=str(summary["policy"]), trace=str(summary["trace"]), interval_s=interval_s,
        slo_ms=float(summary["slo_ms"]), time_s=col("time_s"), arrival_rps=col("arrival_rps"),
        planned_rps=col("planned_rps"), replicas={s: col(f"{s}_replicas") for s in stages},
        cost_usd_per_hour=col("cost_usd") / (interval_s / 3600.0),
        slo_misses=np.rint(requests * (1.0 - attainment)),
        total_cost_usd=float(summary.get("total_cost_usd", math.nan)),
        slo_attainment=float(summary.get("slo_attainment", math.nan)),
    )


def read_tuner_runs(folder: str | Path) -> tuple[TunerRun, ...]:
    """One run (DIR/timeline.csv) or a ``--compare`` folder (DIR/<policy>/timeline.csv), in compare.csv's
    order when it is there, else by name."""
    folder = Path(folder)
    if (folder / "timeline.csv").exists():
        return (_read_run(folder),)
    subfolders = sorted(p for p in folder.glob("*/") if (p / "timeline.csv").exists()) if folder.is_dir() else []
    if not subfolders:
        raise InputFileError(f"{folder}: no timeline.csv in it or in its sub-folders; pass the --out folder of "
                             "'pipeplan tune' (with or without --compare).")
    order = []
    compare = folder / "compare.csv"
    if compare.exists():
        order = [r["policy"] for r in _rows(compare, ["policy"], "'pipeplan tune --compare'")]
    rank = {name: i for i, name in enumerate(order)}
    subfolders.sort(key=lambda p: (rank.get(p.name, len(rank)), p.name))
    return tuple(_read_run(p) for p in subfolders)


def write_report(report: Report, out: str | Path) -> list[Path]:
    """OUT/report.html and OUT/figures/<name>.svg, .png, all or none (OUT is replaced as a whole);
    returns the paths."""
    out = Path(out)
    written = []
    with atomic_folder(out) as tmp:
        (tmp / FIGURES_DIR).mkdir()
        for f in report.figures:
            for suffix, data in ((".svg", f.svg), (".png", f.png)):
                (tmp / FIGURES_DIR / f"{f.name}{suffix}").write_bytes(data)
                written.append(out / FIGURES_DIR / f"{f.name}{suffix}")
        (tmp / REPORT_HTML).write_text(report.html, encoding="utf-8", newline="")
    return [out / REPORT_HTML, *written]


def find_spec(plan_path: Path, provenance: dict) -> Path | None:
    """The spec a plan was made from: the file its provenance names, beside the plan, in the current
    folder or in configs/ (and configs/synthetic/), whose content hash matches. None if none does."""
    from planner.io import sha256_file

    recorded = provenance.get("spec") if isinstance(provenance, dict) else None
    if not isinstance(recorded, dict) or not recorded.get("file"):
        return None
    name = recorded["file"]
    places = [plan_path.parent, Path.cwd(), Path.cwd() / "configs", Path.cwd() / "configs" / "synthetic"]
    for place in places:
        candidate = place / name
        if candidate.is_file() and sha256_file(candidate) == recorded.get("sha256"):
            return candidate
    return None


def changed_inputs(provenance: dict, spec_path: Path, profiles_path: Path, catalog_path: Path) -> list[str]:
    """Notes for the inputs whose content differs from what the plan's provenance recorded."""
    from planner.io import sha256_file

    notes = []
    for key, path in (("spec", spec_path), ("profiles", profiles_path), ("hardware_catalog", catalog_path)):
        recorded = provenance.get(key) if isinstance(provenance, dict) else None
        if isinstance(recorded, dict) and recorded.get("sha256") and recorded["sha256"] != sha256_file(path):
            notes.append(f"{path} differs from the {key.replace('_', ' ')} the plan was made from "
                         f"({recorded.get('file')}, sha256 {recorded['sha256'][:12]}); the what-ifs and the "
                         "explanation use the file given.")
    return notes
