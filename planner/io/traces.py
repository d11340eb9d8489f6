"""Reading and writing arrival traces: the I/O edge of :mod:`planner.traces`.

Formats read (``TraceFormat``):

- ``canonical``: pipeplan's own CSV (see docs/formats.md, "Traces"): ``# pipeplan-trace
  schema_version=1`` and ``# key=value`` header lines, then a CSV whose first column is
  ``arrival_ms`` (sorted offsets in milliseconds) followed by optional per-request fields;
- ``timestamps``: one timestamp per line (seconds unless told otherwise), any origin;
- ``counts``: per-second request counts, space or newline separated, plain or inside a ``.gz``,
  ``.bz2``, ``.tbz2``/``.tar.bz2`` or ``.tgz``/``.tar.gz`` archive; or one column of a CSV;
- ``azure``: the Azure LLM inference trace CSV (a ``TIMESTAMP`` column of datetimes; numeric
  columns such as ``ContextTokens`` become per-request fields).

Every error names the file, the line or row, the field, what was found and how to fix it.
"""

from __future__ import annotations

import bz2
import gzip
import io
import logging
import math
import re
import tarfile
from pathlib import Path

import numpy as np

from planner.errors import InputFileError, TraceError
from planner import traces as _traces
from planner.traces import (MAX_TRACE_REQUESTS, TRACE_SCHEMA_VERSION, Trace, TraceFormat, from_counts, scale_counts,
                            sort_trace)

log = logging.getLogger(__name__)

MAGIC = "# pipeplan-trace"
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_UNIT_MS = {"s": 1000.0, "ms": 1.0, "us": 1e-3}
_MAX_COUNT = MAX_TRACE_REQUESTS  # requests in one second
_ARCHIVES = (".tbz2", ".tar.bz2", ".tgz", ".tar.gz", ".gz", ".bz2")


# --- bytes in ---------------------------------------------------------------------------------------

def _read_bytes(path: Path, member: str | None = None) -> bytes:
    """The file's bytes, decompressed (gz, bz2, tar.gz, tar.bz2/tbz2; a tar must hold one file or name ``member``)."""
    name = path.name.lower()
    try:
        if name.endswith((".tbz2", ".tar.bz2", ".tgz", ".tar.gz", ".tar")):
            with tarfile.open(path, "r:*") as archive:
                files = [m for m in archive.getmembers() if m.isfile()]
                chosen = [m for m in files if member is None or m.name == member or Path(m.name).name == member]
                if len(chosen) != 1:
                    listing = [m.name for m in files]
                    raise TraceError(f"{path}: the archive holds {listing}; name the one to read "
                                     "(--member NAME)." if member is None else
                                     f"{path}: no member '{member}' in the archive (it holds {listing}).")
                handle = archive.extractfile(chosen[0])
                assert handle is not None  # a regular file member always has a handle
                return handle.read()
        if name.endswith(".gz"):
            return gzip.decompress(path.read_bytes())
        if name.endswith(".bz2"):
            return bz2.decompress(path.read_bytes())
        return path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such trace file; check the path.") from None
    except (OSError, EOFError, tarfile.TarError) as exc:
        raise InputFileError(f"{path}: cannot read the trace ({exc}); check that the file is complete.") from None


def _text(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8").removeprefix("\ufeff")  # a byte-order mark is not content
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path}: not UTF-8 text (byte {exc.start}); is this a compressed file with an "
                         "unexpected extension?") from None


# --- per-format readers -----------------------------------------------------------------------------

def _parse_counts(path: Path, text: str) -> np.ndarray:
    tokens = text.split()
    try:
        counts = np.array(tokens, dtype=np.int64) if tokens else np.empty(0, dtype=np.int64)
    except (ValueError, OverflowError):
        # str.isdigit accepts '²'; only ASCII digits of a value that fits in int64 are counts.
        bad = next((i for i, t in enumerate(tokens) if not _is_count(t)), 0)
        raise TraceError(f"{path}: value {bad + 1} (second {bad}): found {tokens[bad][:40]!r}; per-second counts must "
                         f"be integers in [0, {_MAX_COUNT}] separated by spaces or newlines.") from None
    if counts.size and counts.min() < 0:
        bad = int(np.argmax(counts < 0))
        raise TraceError(f"{path}: value {bad + 1} (second {bad}): found {counts[bad]}; counts must be >= 0.")
    if counts.size == 0:
        raise TraceError(f"{path}: no counts found; the file should hold one non-negative integer per second.")
    return counts


def _is_count(token: str) -> bool:
    digits = token.removeprefix("+")
    return digits.isascii() and digits.isdigit() and int(digits) <= _MAX_COUNT


def _read_csv(path: Path, text: str, **options):
    """pandas.read_csv with its errors as TraceErrors naming the file (line numbers count the CSV's lines)."""
    import pandas as pd

    try:
        return pd.read_csv(io.StringIO(text), **options)
    except pd.errors.EmptyDataError:
        raise TraceError(f"{path}: the file is empty; expected a CSV with a header row.") from None
    except (pd.errors.ParserError, ValueError, OverflowError) as exc:
        raise TraceError(f"{path}: not a valid CSV ({' '.join(str(exc).split())}); every row needs the header's "
                         "fields, separated by commas.") from None


def _csv_counts(path: Path, text: str, column: str) -> np.ndarray:
    import pandas as pd  # here, not at import: reading a canonical trace (pipeplan simulate) needs no pandas

    frame = _read_csv(path, text)
    if column not in frame.columns:
        raise TraceError(f"{path}: no column '{column}' (columns: {list(frame.columns)}); pass one of them as --column.")
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0) | (values != np.floor(values)) | (values > _MAX_COUNT)
    if bad.any():
        row = int(np.argmax(bad))
        raise TraceError(f"{path}: row {row + 2}, field '{column}': found {frame[column].iloc[row]!r}; per-second "
                         "counts must be non-negative integers.")
    return values.astype(np.int64)


def read_counts(path: str | Path, rng: np.random.Generator, *, scale: float = 1.0, start_s: float = 0.0,
                duration_s: float | None = None, column: str | None = None, member: str | None = None) -> Trace:
    """Per-second counts -> arrivals (k uniform in each second), after slicing seconds and scaling counts."""
    path = Path(path)
    text = _text(path, _read_bytes(path, member))
    counts = _csv_counts(path, text, column) if column else _parse_counts(path, text)
    first = int(start_s)
    last = counts.size if duration_s is None else min(counts.size, first + int(math.ceil(duration_s)))
    if first < 0 or first >= last:
        raise TraceError(f"{path}: window from second {start_s:g} for {duration_s} s is empty; the file has "
                         f"{counts.size} seconds.")
    counts = counts[first:last]
    if scale != 1.0:
        counts = scale_counts(counts, scale, rng)
    note = f"counts({path.name}{':' + column if column else ''}, seconds {first}..{last}, scale={scale:g})"
    return from_counts(counts, rng, name=path.stem, source=note)


def read_timestamps(path: str | Path, unit: str = "s") -> Trace:
    """One timestamp per line (blank lines and ``#`` comments skipped), shifted to start at 0."""
    path = Path(path)
    if unit not in _UNIT_MS:
        raise TraceError(f"timestamp unit '{unit}' is not one of {sorted(_UNIT_MS)}; pass --unit s, ms or us.")
    values: list[float] = []
    for line_no, line in enumerate(_text(path, _read_bytes(path)).splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            value = float(stripped)
        except ValueError:
            raise TraceError(f"{path}: line {line_no}: found {stripped!r}; expected one number (a timestamp in "
                             f"{unit}) per line.") from None
        if not math.isfinite(value):
            raise TraceError(f"{path}: line {line_no}: found {stripped!r}; timestamps must be finite.")
        values.append(value)
    if not values:
        raise TraceError(f"{path}: no timestamps found; the file should hold one number per line.")
    stamps_ms = np.asarray(values) * _UNIT_MS[unit]
    offsets = stamps_ms - stamps_ms.min()
    if not np.all(np.isfinite(offsets)):
        raise TraceError(f"{path}: the timestamps span more than a float can hold; check --unit.")
    return sort_trace(offsets, float(offsets.max()), path.stem, f"timestamps({path.name}, unit={unit})")


def read_azure(path: str | Path) -> Trace:
    """The Azure LLM inference trace CSV: TIMESTAMP datetimes; numeric columns kept as per-request fields."""
    import pandas as pd

    path = Path(path)
    frame = _read_csv(path, _text(path, _read_bytes(path)))
    if "TIMESTAMP" not in frame.columns:
        raise TraceError(f"{path}: no 'TIMESTAMP' column (columns: {list(frame.columns)}); the Azure format has "
                         "TIMESTAMP,ContextTokens,GeneratedTokens; use --format timestamps for plain numbers.")
    stamps = pd.to_datetime(frame["TIMESTAMP"], errors="coerce", format="ISO8601")
    if stamps.isna().any():
        row = int(np.argmax(stamps.isna().to_numpy()))
        raise TraceError(f"{path}: row {row + 2}, field 'TIMESTAMP': found {frame['TIMESTAMP'].iloc[row]!r}; "
                         "expected a datetime such as 2023-11-16 18:17:03.9799600.")
    if frame.empty:
        raise TraceError(f"{path}: the CSV has a header but no rows; an Azure trace has one row per request.")
    ns = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    offsets_ms = (ns - ns.min()) / 1e6
    fields: dict[str, np.ndarray] = {}
    for name in frame.columns:
        if name == "TIMESTAMP":
            continue
        values = pd.to_numeric(frame[name], errors="coerce")
        if values.isna().any() or not _FIELD_NAME.match(str(name)):
            log.warning("%s: column '%s' is not numeric everywhere; it is not kept as a per-request field", path, name)
            continue
        fields[str(name)] = values.to_numpy()
    return sort_trace(offsets_ms, float(offsets_ms.max()), path.stem, f"azure({path.name})", fields)


def _header_end(raw: bytes) -> int | None:
    """Offset just past the column-header line (after the '#' lines), or None if the file has no body."""
    pos = 0
    while raw.startswith(b"#", pos):
        pos = raw.find(b"\n", pos) + 1
        if pos == 0:
            return None
    pos = raw.find(b"\n", pos) + 1
    return pos or None


def _columns_fast(raw: bytes, header_lines: int, columns: list[str]) -> dict[str, np.ndarray] | None:
    """Every column as float64 in one columnar parse (numpy's C reader, no per-row objects); None unless
    every row holds as many finite numbers as there are columns."""
    try:
        table = np.loadtxt(io.BytesIO(raw), dtype=np.float64, delimiter=",", skiprows=header_lines + 1, comments=None,
                           ndmin=2, encoding="utf-8")
    except ValueError:
        return None
    if table.size == 0:
        table = table.reshape(0, len(columns))
    if table.shape[1] != len(columns) or not np.isfinite(table).all():
        return None
    return {name: np.ascontiguousarray(table[:, i]) for i, name in enumerate(columns)}


def _columns_checked(path: Path, raw: bytes, header_lines: int, columns: list[str], first_row_line: int
                     ) -> dict[str, np.ndarray]:
    """Every column as float64, row by row, naming the first row that is not a finite number."""
    import pandas as pd

    lines = _text(path, raw).splitlines()
    frame = _read_csv(path, "\n".join(lines[header_lines:]), dtype=str, keep_default_na=False)
    data: dict[str, np.ndarray] = {}
    for name in columns:
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.argmax(bad))
            raise TraceError(f"{path}: line {first_row_line + row}, field '{name}': found {frame[name].iloc[row]!r}; "
                             "expected a finite number.")
        data[name] = values
    return data


def read_canonical(path: str | Path) -> Trace:
    """pipeplan's trace CSV (header lines, then ``arrival_ms`` and optional fields), checked row by row."""
    path = Path(path)
    raw = _read_bytes(path).removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark is not part of the header
    head_end = _header_end(raw)  # decode only the header: the body is parsed as columns
    lines = _text(path, raw if head_end is None else raw[:head_end]).splitlines()
    if not lines or not lines[0].startswith(MAGIC):
        found = lines[0][:60] if lines else "an empty file"
        raise TraceError(f"{path}: line 1: found {found!r}; a pipeplan trace starts with "
                         f"'{MAGIC} schema_version={TRACE_SCHEMA_VERSION}'. Convert other formats with "
                         "'pipeplan trace convert'.")
    meta: dict[str, str] = {}
    for token in lines[0][len(MAGIC):].split():
        key, _, value = token.partition("=")
        meta[key] = value
    header_lines = 1
    while header_lines < len(lines) and lines[header_lines].startswith("#"):
        key, sep, value = lines[header_lines][1:].strip().partition("=")
        if not sep:
            raise TraceError(f"{path}: line {header_lines + 1}: found {lines[header_lines]!r}; header lines are "
                             "'# key=value'.")
        meta[key.strip()] = value.strip()
        header_lines += 1
    if meta.get("schema_version") != str(TRACE_SCHEMA_VERSION):
        raise TraceError(f"{path}: line 1, field 'schema_version': found {meta.get('schema_version')!r}; this "
                         f"pipeplan reads trace schema_version {TRACE_SCHEMA_VERSION}. Re-create the trace with "
                         "'pipeplan trace convert' or 'pipeplan trace generate'.")
    if header_lines >= len(lines):
        raise TraceError(f"{path}: no column header; add a line 'arrival_ms' after the '#' header lines.")
    columns = [c.strip() for c in lines[header_lines].split(",")]
    if columns[0] != "arrival_ms":
        raise TraceError(f"{path}: line {header_lines + 1}: first column is {columns[0]!r}; it must be 'arrival_ms'.")
    for name in columns[1:]:
        if not _FIELD_NAME.match(name):
            raise TraceError(f"{path}: line {header_lines + 1}: field name {name!r} is not a plain identifier; "
                             "use letters, digits and underscores.")
    if len(set(columns)) != len(columns):
        raise TraceError(f"{path}: line {header_lines + 1}: the column header {columns} repeats a name; name each "
                         "column once.")
    first_row_line = header_lines + 2
    data = _columns_fast(raw, header_lines, columns)
    if data is None:  # not plain numbers everywhere: the row-by-row path finds the row and says what is wrong
        data = _columns_checked(path, raw, header_lines, columns, first_row_line)
    arrivals = data.pop("arrival_ms")
    if arrivals.size and arrivals.min() < 0:
        row = int(np.argmax(arrivals < 0))
        raise TraceError(f"{path}: line {first_row_line + row}, field 'arrival_ms': found {arrivals[row]:g}; "
                         "offsets are >= 0 (milliseconds from the start of the trace).")
    if arrivals.size > 1 and np.any(np.diff(arrivals) < 0):
        row = int(np.argmax(np.diff(arrivals) < 0)) + 1
        raise TraceError(f"{path}: line {first_row_line + row}, field 'arrival_ms': {arrivals[row]:g} comes before "
                         f"the previous row's {arrivals[row - 1]:g}; rows must be sorted by arrival_ms. Sort the "
                         "file or re-create it with 'pipeplan trace convert'.")
    last = float(arrivals[-1]) if arrivals.size else 0.0
    try:
        duration_ms = float(meta.get("duration_ms", last))
    except ValueError:
        raise TraceError(f"{path}: header field 'duration_ms': found {meta['duration_ms']!r}; expected a number "
                         "of milliseconds.") from None
    if not duration_ms >= last:
        raise TraceError(f"{path}: header field 'duration_ms': found {duration_ms:g}, before the last arrival "
                         f"{last:g}; set it to at least the last arrival_ms.")
    fields = {k: (v.astype(np.int64) if np.all(v == np.floor(v)) else v) for k, v in data.items()}
    return Trace(arrivals, duration_ms, meta.get("name", path.stem), meta.get("source", ""), fields)


def detect_format(path: Path) -> TraceFormat:
    """Canonical (magic line), Azure (TIMESTAMP header) or counts (archives); otherwise ask the user."""
    name = path.name.lower()
    if name.endswith(_ARCHIVES):
        return TraceFormat.COUNTS
    try:
        with path.open("r", encoding="utf-8-sig", errors="replace") as handle:
            first = handle.readline()
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such trace file; check the path.") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read the trace ({exc}).") from None
    if first.startswith(MAGIC):
        return TraceFormat.CANONICAL
    if first.split(",")[0].strip() == "TIMESTAMP":
        return TraceFormat.AZURE
    raise TraceError(f"{path}: cannot tell the trace format from its first line ({first.strip()[:60]!r}); pass "
                     "--trace-format timestamps, counts, azure or canonical.")


def read_trace(path: str | Path, fmt: TraceFormat = TraceFormat.AUTO, *, rng: np.random.Generator | None = None,
               unit: str = "s", scale: float = 1.0, start_s: float = 0.0, duration_s: float | None = None,
               column: str | None = None, member: str | None = None) -> Trace:
    """Read a trace in any supported format (``rng`` places arrivals inside seconds for counts).

    Every error names the file, including those of the Trace type itself (too long, too big).
    """
    path = Path(path)
    try:
        return _read(path, fmt, rng, unit, scale, start_s, duration_s, column, member)
    except TraceError as exc:
        text = str(exc)
        if text.startswith(str(path)):
            raise
        raise TraceError(f"{path}: {text}") from None


def _read(path: Path, fmt: TraceFormat, rng, unit, scale, start_s, duration_s, column, member) -> Trace:
    if fmt is TraceFormat.AUTO:
        fmt = detect_format(path)
    if fmt is TraceFormat.CANONICAL:
        return read_canonical(path)
    if fmt is TraceFormat.AZURE:
        return read_azure(path)
    if fmt is TraceFormat.TIMESTAMPS:
        return read_timestamps(path, unit)
    return read_counts(path, rng if rng is not None else np.random.default_rng(0), scale=scale, start_s=start_s,
                       duration_s=duration_s, column=column, member=member)


def read_window(path: str | Path, fmt: TraceFormat, rng: np.random.Generator, *, unit: str = "s",
                start_s: float = 0.0, duration_s: float | None = None, scale: float = 1.0,
                compress: float = 1.0, column: str | None = None, member: str | None = None) -> Trace:
    """A trace cut to ``[start_s, start_s + duration_s)``, its rate times ``scale``, played ``compress``
    times faster. Per-second counts are cut and scaled as counts (before arrivals are placed)."""
    path = Path(path)
    for name, value in (("--start-s", start_s), ("--duration-s", duration_s), ("--scale", scale),
                        ("--compress", compress)):
        if value is not None and not (math.isfinite(value) and (value >= 0 if name == "--start-s" else value > 0)):
            raise TraceError(f"{name}: found {value!r}; give a finite number "
                             f"{'>= 0' if name == '--start-s' else '> 0'}.")
    fmt = detect_format(path) if fmt is TraceFormat.AUTO else fmt
    try:
        if fmt is TraceFormat.COUNTS:
            result = read_trace(path, fmt, rng=rng, scale=scale, start_s=start_s, duration_s=duration_s,
                                column=column, member=member)
        else:
            result = read_trace(path, fmt, rng=rng, unit=unit)
            if start_s or duration_s is not None:
                result = _traces.window(result, start_s, duration_s)
            if scale != 1.0:
                result = _traces.rescale(result, scale, rng)
        if compress != 1.0:
            result = _traces.compress_time(result, compress)
    except TraceError as exc:
        text = str(exc)
        raise TraceError(text if text.startswith(str(path)) else f"{path}: {text}") from None
    return result


# --- text out ---------------------------------------------------------------------------------------

def _clean(value: str) -> str:
    return " ".join(value.split())


def trace_to_csv_text(trace: Trace) -> str:
    """The canonical CSV text: fixed precision (1 ns), so the same trace always gives the same bytes."""
    for name in trace.fields:
        if not _FIELD_NAME.match(name) or name == "arrival_ms":
            raise TraceError(f"trace '{trace.name}': field name {name!r} cannot be written; use a plain identifier "
                             "other than arrival_ms.")
    head = [f"{MAGIC} schema_version={TRACE_SCHEMA_VERSION}", f"# name={_clean(trace.name)}",
            f"# duration_ms={trace.duration_ms:.6f}"]
    if trace.source:
        head.append(f"# source={_clean(trace.source)}")
    names = sorted(trace.fields)
    head.append(",".join(["arrival_ms", *names]))
    columns = [[f"{x:.6f}" for x in trace.arrival_ms.tolist()]]
    for name in names:
        values = np.asarray(trace.fields[name])
        if np.issubdtype(values.dtype, np.integer):
            columns.append([str(v) for v in values.tolist()])
        else:
            columns.append([f"{v:.10g}" for v in values.astype(np.float64).tolist()])
    rows = columns[0] if len(columns) == 1 else [",".join(cells) for cells in zip(*columns)]
    return "\n".join(head + rows) + "\n"
