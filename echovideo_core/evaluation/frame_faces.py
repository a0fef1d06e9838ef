"""Faces of the scored frames and of the reference, through the project's face stack.

Frames go through the same insightface antelopev2 detector (SCRFD + ArcFace) that prepares
the reference (`echovideo_core.face`), so both embeddings come from one model and one
alignment. In a frame with several faces the largest is scored (as for the reference). A
frame without a face is a miss, reported as such. No RetinaFace or whole-image fallback is
used for frames: a fallback would turn "no face" into a made-up score.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from echovideo_core.face.align import align_face

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reference:
    """The face every frame is compared with.

    arcface: (512,) raw ArcFace; identity_image: (512, 512, 3) uint8, the masked aligned
    face (black outside the parser's face classes); aligned_crop: (512, 512, 3) uint8 before
    masking, or None when only the identity image is known (FID is then off); crop_112:
    (112, 112, 3) on the standard ArcFace template, or None (FaceSim-Cur is then off);
    method: how the reference face was found ("insightface", "retinaface", ...)."""

    arcface: np.ndarray
    identity_image: np.ndarray
    aligned_crop: np.ndarray | None = None
    crop_112: np.ndarray | None = None
    method: str = "insightface"


def reference_from_face_result(result: Any) -> Reference:
    """From `FacePreparer.prepare(photo)` (a FaceResult): every crop is available."""
    from echovideo_core.evaluation.curricularface import aligned_112

    crop_112 = None if result.landmarks5 is None else aligned_112(result.photo, result.landmarks5)
    return Reference(arcface=np.asarray(result.arcface, np.float32), identity_image=result.identity_image,
                     aligned_crop=result.aligned_crop, crop_112=crop_112, method=result.method)


def reference_from_encoding(face: Any) -> Reference:
    """From an encoded face (`stages.FaceEncoding`, ComfyUI's ECHO_FACE): the identity image
    and ArcFace only, so FID and FaceSim-Cur are off."""
    return Reference(arcface=np.asarray(face.arcface, np.float32), identity_image=face.identity_image,
                     method=face.method)


@dataclass(frozen=True)
class FrameFace:
    """The largest face of one frame: index in the video, detection score, landmarks5 (5, 2)
    frame pixels, embedding (512,) raw ArcFace, aligned_crop (512, 512, 3) uint8."""

    index: int
    score: float
    landmarks5: np.ndarray
    embedding: np.ndarray
    aligned_crop: np.ndarray


def find_frame_faces(detector: Any, frames: np.ndarray, indices: Sequence[int]) -> list[FrameFace | None]:
    """One entry per index: the frame's largest face, or None (a miss).

    `detector` is an `InsightFaceDetector` (anything whose `detect(rgb)` returns faces
    largest first, each with bbox, score, landmarks5, embedding)."""
    found: list[FrameFace | None] = []
    for index in indices:
        frame = np.ascontiguousarray(frames[int(index)])
        faces = detector.detect(frame)
        if not faces:
            found.append(None)
            continue
        face = faces[0]
        try:
            aligned, _ = align_face(frame, face.landmarks5)
        except ValueError as err:  # degenerate key points: no crop to score, so a miss
            logger.warning("frame %d: face found but not alignable (%s); counted as a miss", index, err)
            found.append(None)
            continue
        found.append(FrameFace(index=int(index), score=float(face.score), landmarks5=np.asarray(face.landmarks5),
                               embedding=np.asarray(face.embedding, np.float32), aligned_crop=aligned))
    return found
