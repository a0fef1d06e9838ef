"""The library's error types, and the missing-files check.

Every mistake a user can make ends in one of these (or a subclass in `face.errors`), so a
front end (the CLI, the ComfyUI nodes) can tell a user's mistake from a bug with one
`except EchoVideoError` and show the message alone. Every message names the argument or
file and says what was expected.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable


class EchoVideoError(Exception):
    """Base of every error the user can cause and fix (bad value, missing or wrong file).

    `path` is the file or folder the error is about, when there is one (the message names
    it too), so a front end can point at it without parsing the message.
    """

    def __init__(self, message: str = "", *, path: str | os.PathLike | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)


class InvalidInputError(EchoVideoError, ValueError):
    """A generation argument is outside what the model supports."""


class MissingModelFilesError(EchoVideoError, FileNotFoundError):
    """A model folder lacks files we need; the message names the folder and the files."""


class CheckpointMismatchError(EchoVideoError, ValueError):
    """A weight file is unreadable or its keys or shapes do not fit the model; the message
    names the file and the keys."""


class LoraMismatchError(CheckpointMismatchError):
    """The LoRA file does not fit the model; the message lists the offending keys."""


class MissingInputError(EchoVideoError, FileNotFoundError):
    """A file or folder the user named (a photo, a manifest, a config) does not exist."""


class InputFileError(EchoVideoError, ValueError):
    """A file the user named exists but cannot be read as what it should be (a corrupt
    image, invalid YAML / JSON / .npy, a folder where a file was expected)."""


class OutputPathError(EchoVideoError, OSError):
    """An output cannot be written where the user asked: the folder is missing or not
    writable, or the path is a folder; checked before any work starts."""


class OutputExistsError(OutputPathError, FileExistsError):
    """The output exists and the user did not ask to replace it (`--overwrite`)."""


class NotEnoughSpaceError(OutputPathError):
    """The disk holding an output has less free space than the output needs."""


class MissingPackageError(EchoVideoError, ImportError):
    """An option needs a package that is not installed (torchao for int8, gguf for the
    low-bit formats); the message says what to install."""


def folder_contents(folder: Path, limit: int = 8) -> str:
    """What a folder holds, for a message: 'it holds a/, b.json, ... (+3 more)' or 'it is empty'."""
    try:
        names = sorted(f"{p.name}/" if p.is_dir() else p.name for p in Path(folder).iterdir())
    except OSError:
        return "it cannot be listed"
    if not names:
        return "it is empty"
    more = f" ... (+{len(names) - limit} more)" if len(names) > limit else ""
    return "it holds " + ", ".join(names[:limit]) + more


def require_files(folder: Path, names: Iterable[str], *, what: str) -> None:
    """Raise MissingModelFilesError unless every file in `names` exists in `folder`."""
    names = list(names)
    if not folder.is_dir():
        raise MissingModelFilesError(
            f"{what}: folder {folder} does not exist (expected it to contain {', '.join(names)})", path=folder
        )
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise MissingModelFilesError(
            f"{what}: {folder} lacks {', '.join(missing)} (expected {', '.join(names)}; "
            f"{folder_contents(folder)})", path=folder
        )
