"""Read and write profile tables as CSV (metadata in leading ``# key: value`` lines) or Parquet.

Writes are atomic: a temporary file in the same folder, then a rename.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping

import pandas as pd

from pipeplan_files.write import atomic_target
from profiler.schema import (
    ALL_COLUMNS,
    PROFILE_SCHEMA_VERSION,
    ProfileSchemaError,
    ProfileTable,
    row_to_record,
    validate_records,
)

_PARQUET_META_PREFIX = b"pipeplan."


def read_profile_table(path: str | Path) -> ProfileTable:
    """Load and validate a profile table (``.csv`` or ``.parquet``)."""
    path = Path(path)
    source = str(path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame, metadata = _read_parquet(path)
        else:
            frame, metadata = _read_csv(path)
    except ProfileSchemaError:
        raise
    except FileNotFoundError:
        raise ProfileSchemaError(f"{source}: no such file; check the path (relative paths in a spec "
                                 "are relative to the spec file).") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ProfileSchemaError(f"{source}: cannot read the profile table ({exc}); "
                                 "expected a CSV or Parquet file as described in docs/formats.md.") from None
    records = frame.to_dict(orient="records")
    return validate_records(records, list(frame.columns), source, metadata)


def _read_csv(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    text = path.read_text(encoding="utf-8")
    metadata: dict[str, str] = {}
    body: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("#") and not body:
            key, sep, value = line[1:].partition(":")
            if sep:
                metadata[key.strip()] = value.strip()
            continue
        body.append(line)
    if not "".join(body).strip():
        raise ProfileSchemaError(f"{path}: the file has no header row and no data; "
                                 "expected a CSV with the columns in docs/formats.md.")
    frame = pd.read_csv(io.StringIO("".join(body)), dtype={"model": str, "variant": str, "hardware": str},
                        keep_default_na=True, skipinitialspace=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, metadata


def _read_parquet(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    raw = table.schema.metadata or {}
    metadata = {
        k[len(_PARQUET_META_PREFIX):].decode(): v.decode()
        for k, v in raw.items()
        if k.startswith(_PARQUET_META_PREFIX)
    }
    return table.to_pandas(), metadata


def profile_frame(table: ProfileTable) -> pd.DataFrame:
    """The table as a DataFrame with the canonical column order, optional columns kept when used."""
    frame = pd.DataFrame([row_to_record(r) for r in table.rows], columns=list(ALL_COLUMNS))
    keep = [c for c in ALL_COLUMNS if c in frame.columns[:8] or frame[c].notna().any()]
    return frame[keep]


def write_profile_table(table: ProfileTable, path: str | Path, metadata: Mapping[str, str] | None = None) -> None:
    """Write atomically as CSV or Parquet (by suffix), with schema_version in the metadata."""
    path = Path(path)
    meta = {**table.metadata, **(metadata or {}), "schema_version": str(PROFILE_SCHEMA_VERSION)}
    frame = profile_frame(table)
    with atomic_target(path) as tmp:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow as pa
            import pyarrow.parquet as pq

            arrow = pa.Table.from_pandas(frame, preserve_index=False)
            arrow = arrow.replace_schema_metadata(
                {_PARQUET_META_PREFIX + k.encode(): str(v).encode() for k, v in sorted(meta.items())}
            )
            pq.write_table(arrow, tmp)
        else:
            header = "".join(f"# {k}: {v}\n" for k, v in sorted(meta.items()))
            with open(tmp, "w", encoding="utf-8", newline="") as handle:
                handle.write(header)
                frame.to_csv(handle, index=False, float_format="%.6g", lineterminator="\n")
