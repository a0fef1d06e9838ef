"""The library's error types, and the missing-files check.

Every mistake a user can make ends in one of these (or a subclass in `face.errors`), so a
front end (the CLI, the ComfyUI nodes) can tell a user's mistake from a bug with one
`except EchoVideoError` and show the message alone. Every message names the argument or
file and says what was expected.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable


class EchoVideoError(Exception):
    """Base of every error the user can cause and fix (bad value, missing or wrong file)."""


class InvalidInputError(EchoVideoError, ValueError):
    """A generation argument is outside what the model supports."""


class MissingModelFilesError(EchoVideoError, FileNotFoundError):
    """A model folder lacks files we need; the message names the folder and the files."""


class CheckpointMismatchError(EchoVideoError, ValueError):
    """A weight file is unreadable or its keys or shapes do not fit the model; the message
    names the file and the keys."""


class LoraMismatchError(CheckpointMismatchError):
    """The LoRA file does not fit the model; the message lists the offending keys."""


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
