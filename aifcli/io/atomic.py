"""Atomic output files: write to a temporary file in the same folder, then rename.

A crash or a full disk never leaves a half-written output under the final name,
and an existing file is only replaced when the caller says ``overwrite=True``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import OutputError, OutputExistsError


def check_output(path: str | Path, overwrite: bool = False, inputs: tuple[Path, ...] = ()) -> Path:
    """Fail early (before any work) if ``path`` cannot or must not be written."""
    path = Path(path)
    for i in inputs:
        try:
            if path.exists() and Path(i).exists() and path.samefile(i):
                raise OutputError("output would overwrite an input", path, "choose another -o")
        except OSError:
            pass
        if path.resolve() == Path(i).resolve():
            raise OutputError("output would overwrite an input", path, "choose another -o")
    if path.exists() and not overwrite:
        raise OutputExistsError(path)
    if path.is_dir():
        raise OutputError("output is a folder", path, "give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError("folder is not writable", parent, "choose another -o or fix its permissions")
    return path


def write_bytes_atomic(path: str | Path, data: bytes, overwrite: bool = False) -> Path:
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create folder: {e.strerror}", parent, "choose another -o") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".aif-tmp", dir=parent)
    except OSError as e:
        raise OutputError(f"cannot write: {e.strerror}", parent, "choose another -o or fix its permissions") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OutputError(f"cannot write: {e.strerror}", path) from None
    return path


_UMASK: int | None = None


def _umask() -> int:
    global _UMASK
    if _UMASK is None:
        m = os.umask(0)
        os.umask(m)
        _UMASK = m
    return _UMASK
