"""Checks of the files and folders a command reads and writes, made before any work starts.

Every CLI command and every library writer asks here, so "does this input exist", "may this
output be written", "is there room for it" have one answer and one kind of message: the
argument, the path, what is wrong and what to do. A check never changes anything, except
that writability is probed by creating and at once removing an empty hidden file (the only
reliable test: permission bits say nothing about read-only mounts, quotas or root).

`describe_os_error` turns an OSError that escapes anyway (a disk filling up during a
write) into the same kind of one-line message, for the CLI's error boundary.
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from echovideo_core.errors import (InputFileError, MissingInputError, NotEnoughSpaceError, OutputExistsError,
                                   OutputPathError)

PROBE_PREFIX = ".echovideo-write-check-"

# What to do about an OSError, by errno (the message also names the path and the system's reason).
OS_ERROR_ADVICE: dict[int, str] = {
    errno.ENOSPC: "free some space or write somewhere else",
    errno.EDQUOT: "free some space or write somewhere else",
    errno.EROFS: "the file system is read-only: write somewhere else",
    errno.EACCES: "choose a path you may read and write",
    errno.EPERM: "choose a path you may read and write",
    errno.ENOENT: "check the path",
    errno.EISDIR: "give a file name, not a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EEXIST: "choose another name or pass --overwrite",
    errno.ENAMETOOLONG: "choose a shorter path",
    errno.EMFILE: "close other programs or raise the limit (ulimit -n)",
}


def _named(argument: str | None, path: Path) -> str:
    return f"{argument} {path}" if argument else str(path)


def human_bytes(count: float) -> str:
    """1536 -> '1.5 KiB' (for messages)."""
    if count < 1024:
        return f"{count:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        count /= 1024
        if count < 1024:
            return f"{count:.1f} {unit}"
    return f"{count / 1024:.1f} TiB"


# ---- inputs ------------------------------------------------------------------------------

def check_input_file(path: str | os.PathLike, argument: str | None = None) -> Path:
    """`path` exists, is a file and is readable (MissingInputError / InputFileError otherwise)."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{_named(argument, path)}: no such file", path=path)
    if path.is_dir():
        raise InputFileError(f"{_named(argument, path)} is a folder; give a file", path=path)
    if not os.access(path, os.R_OK):
        raise InputFileError(f"{_named(argument, path)}: not readable (permission denied)", path=path)
    return path


def check_input_folder(path: str | os.PathLike, argument: str | None = None) -> Path:
    """`path` exists and is a folder."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{_named(argument, path)}: no such folder", path=path)
    if not path.is_dir():
        raise InputFileError(f"{_named(argument, path)} is a file; give a folder", path=path)
    return path


# ---- outputs -----------------------------------------------------------------------------

def nearest_existing(path: Path) -> Path:
    """`path` or its closest ancestor that exists (where a missing folder would be created)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(folder: str | os.PathLike) -> int:
    return shutil.disk_usage(folder).free


def check_writable_folder(folder: str | os.PathLike, argument: str | None = None, *,
                          expected_bytes: int = 0, target: Path | None = None) -> Path:
    """`folder` (existing) accepts a new file and has `expected_bytes` free. `target` is the
    output the folder is checked for, named in messages."""
    folder = Path(folder)
    what = _named(argument, target if target is not None else folder)
    if not folder.is_dir():
        raise OutputPathError(f"{what}: {folder} is a file, not a folder", path=folder)
    try:
        handle, probe = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=folder)
    except OSError as err:
        raise OutputPathError(f"{what}: cannot write in {folder}: {os_error_reason(err)}", path=folder) from None
    os.close(handle)
    os.unlink(probe)
    if expected_bytes > 0:
        free = free_bytes(folder)
        if free < expected_bytes:
            raise NotEnoughSpaceError(
                f"{what}: needs about {human_bytes(expected_bytes)} but {folder} has {human_bytes(free)} free; "
                "free some space or choose another place", path=folder)
    return folder


def check_output_file(path: str | os.PathLike, argument: str | None = None, *, overwrite: bool = False,
                      expected_bytes: int = 0, create_parents: bool = False) -> Path:
    """An output file may be written at `path`: it is not a folder, it does not exist unless
    `overwrite`, its folder exists (or, with `create_parents`, can be created), is writable
    and has room for `expected_bytes`."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{_named(argument, path)} is a folder; give a file name inside it", path=path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{_named(argument, path)} exists; pass --overwrite (in Python "
                                "overwrite=True) to replace it, or choose another name", path=path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        existing = nearest_existing(folder)
        if not create_parents or not existing.is_dir():
            raise OutputPathError(f"{_named(argument, path)}: folder {folder} does not exist; create it first",
                                  path=folder)
        folder = existing
    check_writable_folder(folder, argument, expected_bytes=expected_bytes, target=path)
    return path


def is_empty_folder(path: Path) -> bool:
    return path.is_dir() and next(path.iterdir(), None) is None


def check_output_folder(path: str | os.PathLike, argument: str | None = None, *, expected_bytes: int = 0,
                        must_be_empty: bool = False, overwrite: bool = False) -> Path:
    """An output folder may be written: not a file; with `must_be_empty`, new or empty
    unless `overwrite`; the folder (or its nearest existing ancestor) writable with room."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{_named(argument, path)} is a file; give a folder", path=path)
    if must_be_empty and path.exists() and not is_empty_folder(path) and not overwrite:
        raise OutputExistsError(
            f"{_named(argument, path)} is not empty; choose a new or empty folder, or pass --overwrite "
            "(then only the files this command writes are replaced)", path=path)
    check_writable_folder(nearest_existing(path), argument, expected_bytes=expected_bytes, target=path)
    return path


# ---- errors that escape anyway -------------------------------------------------------------

def os_error_reason(err: OSError) -> str:
    """The system's reason for an OSError and what to do, e.g. 'No space left on device; free
    some space or write somewhere else'."""
    reason = err.strerror or str(err) or type(err).__name__
    advice = OS_ERROR_ADVICE.get(err.errno or -1)
    return f"{reason}; {advice}" if advice else reason


def describe_os_error(err: OSError, path: str | os.PathLike | None = None) -> str:
    """One line for an OSError: the path (the error's own, else `path`), the reason, what to do."""
    where = err.filename if err.filename is not None else path
    return f"{os.fspath(where)}: {os_error_reason(err)}" if where is not None else os_error_reason(err)
