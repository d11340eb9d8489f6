"""Write emitted files at the edge: everything into a temporary folder beside --out, then one rename.

On any error nothing is left: neither a half-written --out nor the temporary folder. An existing
--out is replaced only once the new one is complete.
"""

from __future__ import annotations

import hashlib
import shutil
from profiler.fileio import atomic_folder
from pathlib import Path

from planner.emit.base import EmitResult
from planner.errors import EmitError


def write_results(results: tuple[EmitResult, ...], out: Path) -> list[Path]:
    """Write every result's files and artifacts under ``out``; returns the paths written (relative)."""
    out = Path(out)
    written: dict[str, str] = {}
    with atomic_folder(out) as tmp:
        for result in results:
            for f in result.files:
                _claim(written, str(f.path), hashlib.sha256(f.content).hexdigest())
                target = tmp / f.path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(f.content)
            for a in result.artifacts:
                if _claim(written, str(a.path), a.sha256):
                    continue
                target = tmp / a.path
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(a.source, target)
                if hashlib.sha256(target.read_bytes()).hexdigest() != a.sha256:
                    raise EmitError(f"{a.source}: the model file changed while it was copied (its sha256 is no "
                                    f"longer {a.sha256}); run pipeplan emit again.")
    return sorted(Path(p) for p in written)


def _claim(written: dict[str, str], path: str, digest: str) -> bool:
    """Record a path; True if the same bytes were already written there (shared storage/ files)."""
    if path in written:
        if written[path] != digest:
            raise EmitError(f"two targets emit different contents for {path}; report this as a bug.")
        return True
    written[path] = digest
    return False
