"""Errors of the face stage, each naming what was tried and what the user can do."""
from __future__ import annotations

from echovideo_core.errors import CheckpointMismatchError, EchoVideoError


class FaceError(EchoVideoError):
    """Base class of every error raised by `echovideo_core.face`."""


class NoFaceError(FaceError):
    """No usable face in the photo and the caller did not allow the whole-image fallback."""


class ImageLoadError(FaceError, ValueError):
    """The photo cannot be read or decoded (corrupt, truncated, unsupported layout)."""


class FaceModelsMissingError(FaceError, FileNotFoundError):
    """A face model file is not where we look; the message lists paths and expected files."""


class FaceWeightsMismatchError(FaceError, CheckpointMismatchError):
    """A state dict does not have the released key names / shapes of the parser or detector."""
