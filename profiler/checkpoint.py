"""The resume file: one JSON record per line, each appended and fsynced as soon as it is finished.

A crash or Ctrl-C can at worst leave a torn last line, which is ignored on reading; every earlier
line is a finished measurement (one round of one point, or one variant's accuracy). The first line names the manifest and method (a fingerprint) so a
checkpoint is never resumed under a different method.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from profiler.errors import CheckpointError
from profiler.measure import TAIL_LEVELS, PointResult

PointKey = tuple[str, str, str, int]  # (model, variant, hardware, batch_size)


@dataclass(frozen=True)
class RoundRecord:
    """One finished round of one point, with what the session measured around it."""

    result: PointResult
    load_time_s: float
    memory_mb: float | None


@dataclass
class CheckpointState:
    """What a checkpoint holds: finished rounds by point and round number, accuracies by (model, variant)."""

    rounds: dict[PointKey, dict[int, RoundRecord]] = field(default_factory=dict)
    accuracy: dict[tuple[str, str], float] = field(default_factory=dict)

    def add(self, key: PointKey, round_no: int, record: RoundRecord) -> None:
        self.rounds.setdefault(key, {})[round_no] = record

    def has(self, key: PointKey, round_no: int) -> bool:
        return round_no in self.rounds.get(key, {})


class Checkpoint:
    """Append-only record of finished work for one profiling run."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path = path
        self.fingerprint = fingerprint

    def load(self) -> CheckpointState:
        """Read finished work, or start a new file with the header line."""
        state = CheckpointState()
        if not self.path.exists() or self.path.stat().st_size == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._append({"type": "header", "fingerprint": self.fingerprint})
            return state
        raw = self.path.read_bytes()
        if not raw.endswith(b"\n"):
            # Torn by an interruption mid-write: drop the partial line; that point is measured again.
            raw = raw[: raw.rfind(b"\n") + 1]
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_bytes(raw)
            os.replace(tmp, self.path)
            if not raw:
                self._append({"type": "header", "fingerprint": self.fingerprint})
                return state
        records = []
        for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise CheckpointError(f"{self.path}: line {number} is not JSON; the file is damaged. "
                                      "Delete it (or pass --fresh) to start over.") from None
        header = records[0] if records else {}
        if header.get("type") != "header" or header.get("fingerprint") != self.fingerprint:
            raise CheckpointError(
                f"{self.path}: this checkpoint was written for a different manifest or method "
                f"(fingerprint {header.get('fingerprint')!r}, this run {self.fingerprint!r}); "
                "pass --fresh to start over or use another --checkpoint path.")
        for number, record in enumerate(records[1:], start=2):
            kind = record.get("type")
            if kind == "round":
                result = record["result"]
                if len(result["tail_ms"]) not in (0, len(TAIL_LEVELS)):
                    raise CheckpointError(f"{self.path}: line {number} keeps {len(result['tail_ms'])} tail "
                                          f"quantiles, this version {len(TAIL_LEVELS)}; it was written by another "
                                          "version of pipeplan. Pass --fresh to start over.")
                point = PointResult(**{**result, "tail_ms": tuple(result["tail_ms"])})
                state.add(tuple(record["key"]), int(record["round"]),
                          RoundRecord(point, float(record["load_time_s"]), record["memory_mb"]))
            elif kind == "accuracy":
                state.accuracy[(record["model"], record["variant"])] = float(record["accuracy"])
        return state

    def add_round(self, key: PointKey, round_no: int, record: RoundRecord) -> None:
        self._append({"type": "round", "key": list(key), "round": round_no,
                      "result": dataclasses.asdict(record.result), "load_time_s": record.load_time_s,
                      "memory_mb": record.memory_mb})

    def add_accuracy(self, model: str, variant: str, accuracy: float) -> None:
        self._append({"type": "accuracy", "model": model, "variant": variant, "accuracy": accuracy})

    def add_failure(self, model: str, variant: str, hardware: str, reason: str) -> None:
        # Kept for the record; failed variants are tried again on a rerun.
        self._append({"type": "failed", "model": model, "variant": variant, "hardware": hardware, "reason": reason})

    def _append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True) + "\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
