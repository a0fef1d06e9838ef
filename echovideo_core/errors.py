"""Exceptions shared by the generation stages, and the missing-files check.

Every user error gets its own class so callers (the CLI, the ComfyUI nodes) can tell
them apart, and every message says what was expected.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable


class MissingModelFilesError(FileNotFoundError):
    """A model folder lacks files we need; the message names the folder and the files."""


class InvalidInputError(ValueError):
    """A generation argument is outside what the model supports."""


def require_files(folder: Path, names: Iterable[str], *, what: str) -> None:
    """Raise MissingModelFilesError unless every file in `names` exists in `folder`."""
    names = list(names)
    if not folder.is_dir():
        raise MissingModelFilesError(
            f"{what}: folder {folder} does not exist (expected it to contain {', '.join(names)})"
        )
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise MissingModelFilesError(
            f"{what}: {folder} lacks {', '.join(missing)} (expected {', '.join(names)})"
        )
