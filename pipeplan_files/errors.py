"""Errors about a file or folder the user named."""


class FileError(Exception):
    """Base of the errors pipeplan_files raises; the message names the path and the fix."""


class OutputPathError(FileError):
    """An output cannot be written where it was asked for (the message names the path and the fix)."""
