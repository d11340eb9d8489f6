"""The atomic writers every pipeplan package shares: all of a command's outputs or none.

Split from profiler.fileio (which re-exports them) so that a command that writes files but reads no
file model (``pipeplan simulate``) does not import pydantic and PyYAML. Only the standard library
is imported here.

- :class:`OutputSet` / :func:`outputs`: every output of one command, checked up front (a folder,
  a missing or unwritable parent, a name too long -> :class:`OutputPathError` naming the path),
  staged as temporary files beside their targets and renamed onto them together at the end: all
  of a command's outputs or none. ``-`` is standard output.
- :func:`atomic_target`: one temporary file beside one target, renamed onto it when the block
  succeeds (the profiler's caches); readers never see a half-written file.
- :func:`atomic_folder`: a folder output replaced as a whole.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from pathlib import Path
from typing import Callable, Iterator

from profiler.errors import ProfilerError

# The target written to standard output instead of a file.
STDOUT = "-"
# Characters of the target's name kept in its temporary file's name (the rest is random), so a
# target whose name is near the file system's limit still gets a temporary file.
_TMP_NAME_KEEP = 40


class OutputPathError(ProfilerError):
    """An output cannot be written where it was asked for (the message names the path and the fix)."""


def _temp_beside(path: Path) -> Path:
    """A fresh temporary file beside ``path``: short name, the target's suffix (readers pick formats by it)."""
    for _ in range(16):
        tmp = path.with_name(f".{path.name[:_TMP_NAME_KEEP]}.{secrets.token_hex(4)}.tmp{path.suffix[:16]}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0666 less the umask
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"no free temporary name beside {path}")


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _check_folder(folder: Path, what: str) -> None:
    if not folder.exists():
        raise OutputPathError(f"{what}: folder {folder} does not exist; create it first (pipeplan does not create "
                              "folders it was not asked to).")
    if not folder.is_dir():
        raise OutputPathError(f"{what}: {folder} is a file, not a folder; choose a path inside a folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what}: cannot write in folder {folder} (permission denied); choose another "
                              "folder or change its permissions.")


class OutputSet:
    """Every output of one command: checked up front, staged beside the targets, committed together.

    ``targets`` are files (``-`` for standard output where ``stdout_ok``); ``folders`` are folders the
    command writes into and may create (their parent must exist). Nothing is created before
    :meth:`commit`, except the temporary files and declared folders staging needs; :meth:`discard`
    removes all of them.
    """

    def __init__(self, targets: dict[str, Path | str | None], folders: dict[str, Path | None] | None = None,
                 stdout_ok: bool = True) -> None:
        self._folders = {Path(f): what for what, f in (folders or {}).items() if f is not None}
        self._targets: dict[Path, str] = {}
        self._staged: dict[Path, Path] = {}  # target -> temporary file
        self._stdout: list[str] = []
        self._created: list[Path] = []
        self._stdout_ok = stdout_ok
        for folder, what in self._folders.items():
            if str(folder) in ("", STDOUT):
                raise OutputPathError(f"{what}: expected a folder, found {str(folder)!r}.")
            if folder.exists() and not folder.is_dir():
                raise OutputPathError(f"{what}: {folder} is a file; give a folder.")
            if not folder.exists():
                _check_folder(folder.parent if str(folder.parent) else Path("."), what)
            else:
                _check_folder(folder, what)
        for what, target in targets.items():
            if target is not None:
                self.check(target, what)

    @property
    def to_stdout(self) -> bool:
        """Whether one of the outputs goes to standard output (summaries then go to standard error)."""
        return any(str(t) == STDOUT for t in self._targets)

    def _owned(self, folder: Path) -> bool:
        return any(folder == f or f in folder.parents for f in self._folders)

    def check(self, target: Path | str, what: str = "output") -> Path:
        """Validate one target (raises OutputPathError) and register it."""
        if str(target) == "":
            raise OutputPathError(f"{what}: the path is empty; give a file name.")
        path = Path(target)
        if str(target) == STDOUT:
            if not self._stdout_ok:
                raise OutputPathError(f"{what}: cannot be written to standard output ('-'); give a file name.")
            if self.to_stdout:
                raise OutputPathError(f"{what}: only one output can go to standard output ('-').")
        else:
            if path in self._targets:
                raise OutputPathError(f"{what}: {path} is also given as {self._targets[path]}; give each output its "
                                      "own file.")
            too_long = [p.name for p in [path, *path.parents] if len(p.name.encode("utf-8", "surrogateescape")) > 255]
            if too_long:
                raise OutputPathError(f"{what}: the name {too_long[0][:40]}... is {len(too_long[0].encode())} bytes "
                                      "long; file systems allow at most 255. Choose a shorter name.")
            try:
                if path.is_dir():
                    raise OutputPathError(f"{what}: {path} is a folder; give a file name (e.g. {path / 'out.json'}).")
                if path.exists() and not path.is_file():
                    raise OutputPathError(f"{what}: {path} exists and is not a regular file; choose another name.")
                parent = path.parent
                if not self._owned(parent):
                    _check_folder(parent, what)
                limit = _name_max(parent if parent.is_dir() else Path("."))
            except OSError as exc:
                raise OutputPathError(f"{what}: cannot use {path} ({exc.strerror or exc}).") from None
            if len(path.name.encode("utf-8", "surrogateescape")) > limit:
                raise OutputPathError(f"{what}: the file name is {len(path.name.encode('utf-8', 'surrogateescape'))} "
                                      f"bytes long ({path.name[:40]}...); the file system allows at most {limit}.")
        self._targets[path] = what
        return path

    def _make_folder(self, folder: Path) -> None:
        missing = [p for p in [folder, *folder.parents] if not p.exists()]
        for p in reversed(missing):
            p.mkdir()
            self._created.append(p)

    def stage(self, target: Path | str) -> Path:
        """A temporary file to write ``target``'s content to (renamed onto it at commit)."""
        path = Path(target)
        if path not in self._targets:
            self.check(path)
        what = self._targets[path]
        if str(target) == STDOUT:
            raise OutputPathError(f"{what}: this output is binary and cannot go to standard output; give a file name.")
        if path in self._staged:
            return self._staged[path]
        try:
            if self._owned(path.parent):
                self._make_folder(path.parent)
            tmp = _temp_beside(path)
        except OSError as exc:
            raise OutputPathError(f"{what}: cannot create a file beside {path} ({exc.strerror or exc}).") from None
        self._staged[path] = tmp
        return tmp

    def write(self, target: Path | str, writer: Callable[[Path], None]) -> None:
        """Stage ``target`` by calling ``writer`` with its temporary file."""
        tmp = self.stage(target)
        try:
            writer(tmp)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(self._staged.pop(Path(target)))
            if isinstance(exc, OSError):
                raise OutputPathError(f"{self._targets[Path(target)]}: cannot write {target} "
                                      f"({exc.strerror or exc}).") from None
            raise

    def write_text(self, target: Path | str, text: str) -> None:
        if str(target) == STDOUT:
            if Path(target) not in self._targets:
                self.check(target)
            self._stdout.append(text)
            return
        self.write(target, lambda tmp: tmp.write_text(text, encoding="utf-8", newline=""))

    def commit(self) -> None:
        """Rename every staged file onto its target, then print the standard-output one."""
        # Every check ran up front and every file is complete: a rename failing now (the folder
        # removed meanwhile) is the one case that can leave some targets replaced and not others.
        try:
            for path, tmp in self._staged.items():
                os.replace(tmp, path)
        except OSError as exc:
            self.discard()
            raise OutputPathError(f"{self._targets[path]}: cannot write {path} ({exc.strerror or exc}).") from None
        self._staged.clear()
        self._created.clear()
        for text in self._stdout:
            sys.stdout.write(text)
        sys.stdout.flush()

    def discard(self) -> None:
        """Remove every temporary file and every folder staging created."""
        for tmp in self._staged.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._staged.clear()
        for folder in reversed(self._created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # empty once its temporary files are gone
        self._created.clear()
        self._stdout.clear()


@contextlib.contextmanager
def outputs(targets: dict[str, Path | str | None], folders: dict[str, Path | None] | None = None,
            stdout_ok: bool = True) -> Iterator[OutputSet]:
    """An :class:`OutputSet` committed when the block succeeds and discarded (all temporary files
    removed, nothing written) when it raises, Ctrl-C included."""
    out = OutputSet(targets, folders, stdout_ok)
    try:
        yield out
    except BaseException:
        out.discard()
        raise
    out.commit()


@contextlib.contextmanager
def atomic_target(path: str | Path) -> Iterator[Path]:
    """A temporary file beside ``path``, renamed onto it when the block succeeds and deleted if not.

    Readers never see a half-written file, and an interrupted write leaves the old file in place.
    The file gets the usual permissions (0666 less the umask), not mkstemp's 0600. It creates
    missing parent folders: it serves the profiler's caches; commands write through :func:`outputs`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# Written into every folder atomic_folder commits: a folder holding it is pipeplan's to replace.
FOLDER_MARKER = ".pipeplan-output"


@contextlib.contextmanager
def atomic_folder(out: str | Path, what: str = "--out") -> Iterator[Path]:
    """A temporary folder beside ``out`` that replaces ``out`` as a whole when the block succeeds
    and is removed, leaving ``out`` as it was, when it raises (Ctrl-C included).

    ``out`` is checked first: its parent must be a writable folder, and an existing ``out`` must be
    empty or a folder pipeplan wrote (it holds :data:`FOLDER_MARKER`), so a mistyped ``--out .``
    never replaces a folder of the user's.
    """
    out = Path(out)
    if str(out) in ("", STDOUT):
        raise OutputPathError(f"{what}: expected a folder, found {str(out)!r}.")
    _check_folder(out.parent if str(out.parent) else Path("."), what)
    if out.exists():
        if not out.is_dir():
            raise OutputPathError(f"{what}: {out} is a file; give a folder.")
        if any(out.iterdir()) and not (out / FOLDER_MARKER).exists():
            raise OutputPathError(f"{what}: {out} holds files pipeplan did not write, and this output replaces its "
                                  "folder as a whole; give a new or empty folder.")
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name[:_TMP_NAME_KEEP]}.", suffix=".tmp", dir=out.parent or "."))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's folder is private; the output is not
    try:
        yield tmp
        (tmp / FOLDER_MARKER).write_text("Written by pipeplan; the next write replaces this folder as a whole.\n",
                                         encoding="utf-8")
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name[:_TMP_NAME_KEEP]}.", suffix=".old", dir=out.parent or "."))
            out.rename(old / "previous")
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
