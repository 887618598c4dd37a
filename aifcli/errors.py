"""Errors that reach the user as one line (no traceback unless --debug).

Every error names the file it concerns (when there is one) and what to do about it.
The CLI maps them to exit codes: ``InputError``/``UsageError`` -> 2.
"""
from __future__ import annotations

from pathlib import Path


class AifError(Exception):
    """Base class for expected, user-facing failures."""

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None, hint: str | None = None):
        self.message = message
        self.path = Path(path) if path is not None else None
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        parts = []
        if self.path is not None:
            parts.append(f"{self.path}: ")
        parts.append(self.message)
        if self.hint:
            parts.append(f" ({self.hint})")
        return "".join(parts)


class InputError(AifError):
    """An input file or folder is missing, unreadable, corrupt or unsuitable."""


class UsageError(AifError):
    """Parameters are absurd or contradict each other."""


class OutputExistsError(AifError):
    """The output exists and --overwrite was not given."""

    def __init__(self, path: str | Path):
        super().__init__("output exists", path, "pass --overwrite to replace it, or choose another -o")


class OutputError(AifError):
    """An output cannot be written (read-only folder, disk full, ...)."""


class WeightsError(AifError):
    """Model weights are missing or corrupt."""
