"""Atomic file writes: everything this project saves goes through `atomic_path`.

A reader (or a user after a crash or Ctrl-C) sees either the old file or the complete new
one, never a half-written file: the data goes to a temporary name in the same folder, which
is renamed over the target only when writing finished, and removed otherwise. A disk
problem while writing (full, read-only, permission) becomes one `OutputPathError` naming
the target, not the temporary name.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from echovideo_core.errors import EchoVideoError, OutputExistsError, OutputPathError
from echovideo_core.paths import os_error_reason


def _disk_error(err: BaseException, what: str, path: Path) -> OutputPathError | None:
    """A system error while writing (disk full, read-only, permission) as the library's error
    naming the target; None for anything else (it is re-raised as it is)."""
    if isinstance(err, OSError) and not isinstance(err, EchoVideoError):
        return OutputPathError(f"cannot write {what}: {os_error_reason(err)}", path=path)
    return None


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix, so writers that pick a format from
    the extension still work); on success it replaces `path`, on any exit by error it is deleted."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.part{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:  # Ctrl-C and ComfyUI's interrupt too: clean up, then re-raise
        tmp.unlink(missing_ok=True)
        if (disk := _disk_error(err, str(path), path)) is not None:
            raise disk from err
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=1))


@contextmanager
def staged_files(root: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Write a set of files into a staging folder, then move each onto its place under `root`.

    Yields a hidden staging folder inside `root` (same file system, so each move is an atomic
    rename); whatever the body writes there lands at the same relative path under `root` when
    the body finishes. Only those files are touched: other files in `root` stay as they are.
    A file that exists already is refused unless `overwrite` (checked for every file before
    the first one moves, so a refusal changes nothing). The staging folder is always removed.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".echovideo-staging-", dir=root))
    try:
        yield staging
        files = sorted(p.relative_to(staging) for p in staging.rglob("*") if p.is_file())
        in_the_way = [root / f for f in files if (root / f).is_dir() or ((root / f).exists() and not overwrite)]
        if in_the_way:
            shown = ", ".join(str(p) for p in in_the_way[:5]) + (" ..." if len(in_the_way) > 5 else "")
            raise OutputExistsError(f"{len(in_the_way)} file(s) exist already: {shown}; pass --overwrite to "
                                    "replace them (nothing else is touched), or choose another folder", path=root)
        for name in files:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, root / name)
    except BaseException as err:
        if (disk := _disk_error(err, f"in {root}", root)) is not None:
            raise disk from err
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
