"""Atomic file writes: everything this project saves goes through `atomic_path`.

A reader (or a user after a crash or Ctrl-C) sees either the old file or the complete new
one, never a half-written file: the data goes to a temporary name in the same folder, which
is renamed over the target only when writing finished, and removed otherwise.
"""
from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix, so writers that pick a format from
    the extension still work); on success it replaces `path`, on any exit by error it is deleted."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.part{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:  # Ctrl-C and ComfyUI's interrupt too: clean up, then re-raise
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=1))
