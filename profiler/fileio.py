"""File helpers every pipeplan package shares: one atomic writer, one pydantic-error formatter.

They live at the bottom of the house, in ``profiler`` (which imports nothing of ``planner``),
because both packages write files and validate file models, and the planner may import the
profiler's light modules while the profiler never imports the planner. Only the standard library
and pydantic are imported here.

- :func:`atomic_target`: a temporary file beside the target, renamed onto it when the block
  succeeds; readers never see a half-written file.
- :func:`format_validation_error`: one paragraph per pydantic ValidationError of a file model:
  the file, the field, what was found, how to fix it (pipeline specs and hardware catalogs in
  ``planner.io``, the model manifest in ``profiler.manifest``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import typing
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel, ValidationError

# The discriminator of every tagged union in the file formats (objective kinds, variant sources).
# pydantic puts the chosen tag in an error's location; it is not a key the user wrote.
_TAG = "kind"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Every pydantic model class inside an annotation (Optional, tuple, Union, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _resolve(model: type[BaseModel], loc: tuple) -> tuple[tuple, type[BaseModel] | None]:
    """``loc`` without tagged-union tags, and the model class owning its last key (None if unclear)."""
    kept: list[Any] = []
    candidates = [model]
    owner: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):
            kept.append(part)
            continue
        # Right after a tagged-union field pydantic's location names the tag: it picks the member.
        tagged = [m for m in candidates if _TAG in m.model_fields
                  and part in typing.get_args(m.model_fields[_TAG].annotation)] if len(candidates) > 1 else []
        if tagged:
            candidates = tagged
            continue
        kept.append(part)
        owner = candidates[0] if len(candidates) == 1 else None
        candidates = [inner for m in candidates if part in m.model_fields
                      for inner in _models_in(m.model_fields[part].annotation)]
    return tuple(kept), owner


def _describe_loc(loc: tuple, data: Any) -> str:
    """A location as the user wrote it, list items with their ``name``: ``stages[1] ('ocr').fanout``."""
    parts: list[str] = []
    node = data
    for part in loc:
        if isinstance(part, int):
            name = node[part].get("name") if isinstance(node, list) and part < len(node) and isinstance(node[part], dict) else None
            parts[-1] = f"{parts[-1]}[{part}]" + (f" ('{name}')" if name else "")
        else:
            parts.append(str(part))
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(parts) if parts else "(top level)"


def format_validation_error(source: str | Path, exc: ValidationError, model: type[BaseModel], data: Any) -> str:
    """One paragraph: file, field, what was found, how to fix it (unknown keys list the allowed ones)."""
    messages = []
    for err in exc.errors():
        loc, owner = _resolve(model, tuple(err["loc"]))
        where = _describe_loc(loc, data)
        found = err.get("input")
        if err["type"] == "extra_forbidden":
            allowed = sorted(owner.model_fields) if owner else None
            hint = f"allowed keys here: {allowed}" if allowed else "check the spelling against docs/formats.md"
            messages.append(f"field '{where}': unknown key; {hint}.")
        elif err["type"] == "missing":
            messages.append(f"field '{where}': required but missing; add it (see docs/formats.md).")
        else:
            text = err["msg"].removeprefix("Value error, ").rstrip(".")
            if isinstance(found, (dict, list)):
                prefix = "" if where == "(top level)" else f"field '{where}': "
                messages.append(f"{prefix}{text}.")
            else:
                messages.append(f"field '{where}': found {found!r}; {text}.")
    return f"{source}: " + " ".join(messages)


@contextlib.contextmanager
def atomic_target(path: str | Path) -> Iterator[Path]:
    """A temporary file beside ``path``, renamed onto it when the block succeeds and deleted if not.

    Readers never see a half-written file, and an interrupted write leaves the old file in place.
    The file gets the usual permissions (0666 less the umask), not mkstemp's 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
