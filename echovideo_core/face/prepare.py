"""From any photo to the identity image and the raw ArcFace vector (docs/design.md section 5).

Order: load (EXIF, long side <= 1024) -> insightface (largest face, or `face_index`) ->
align onto the 512 ArcFace template -> BiSeNet parse -> paint removed classes black.
Fallbacks, each reported in `FaceResult.method` / `warnings` and logged, never silent:

1. insightface finds no face -> RetinaFace landmarks (the face closest to the photo centre),
   ArcFace computed on the 512 aligned crop (resized to 112 by the recognition model);
   method "retinaface".
2. no landmarks at all -> the whole photo resized to 512 x 512 is the crop (parsed and masked
   as usual, ArcFace computed on it), only with `allow_no_face=True`; method "whole_image".
3. otherwise NoFaceError saying what was tried and what to do.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from echovideo_core.errors import InvalidInputError
from echovideo_core.face.align import ALIGNED_SIZE, align_face
from echovideo_core.face.bisenet import load_parser, parse_face
from echovideo_core.face.detect import DET_SIZE, InsightFaceDetector
from echovideo_core.face.errors import NoFaceError
from echovideo_core.face.image import ImageInput, load_rgb
from echovideo_core.face.devices import onnx_providers, torch_device
from echovideo_core.face.mask import keep_mask, mask_identity
from echovideo_core.face.retinaface import centre_face, detect_retinaface, load_retinaface
from echovideo_core.loading.face import FaceModelPaths, find_face_models

if TYPE_CHECKING:  # pragma: no cover
    from echovideo_core.face.multi import MultiFaceResult

logger = logging.getLogger(__name__)

METHODS = ("insightface", "retinaface", "whole_image")
MIN_KEPT_FRACTION = 0.02  # below this the parser kept (almost) nothing of the crop: tell the user


@dataclass(frozen=True)
class FaceResult:
    """One prepared face. Arrays are numpy; pixel coordinates refer to `photo`.

    identity_image: (512, 512, 3) uint8 RGB, the masked aligned crop (what the pipeline uses).
    arcface: (512,) float32, the raw (not L2-normalised) ArcFace embedding.
    bbox: (4,) x1 y1 x2 y2 or None (whole-image fallback); det_score: its score or None.
    landmarks5: (5, 2) or None; align_matrix: (2, 3) photo -> aligned, or None.
    aligned_crop: (512, 512, 3) uint8 before masking; parsing_mask: (512, 512) int64 classes.
    photo: (H, W, 3) uint8 RGB as loaded (EXIF applied, long side <= 1024).
    method: "insightface" | "retinaface" | "whole_image"; warnings: messages for the user.
    num_faces: faces insightface found (0 when a fallback was used).
    """

    identity_image: np.ndarray
    arcface: np.ndarray
    bbox: np.ndarray | None
    landmarks5: np.ndarray | None
    aligned_crop: np.ndarray
    parsing_mask: np.ndarray
    method: str
    warnings: tuple[str, ...]
    det_score: float | None
    align_matrix: np.ndarray | None
    photo: np.ndarray
    num_faces: int


def unconditional_face() -> tuple[np.ndarray, np.ndarray]:
    """The unconditional pair of classifier-free guidance: a black 512 x 512 x 3 uint8
    identity image and a zero (512,) float32 ArcFace vector."""
    return np.zeros((ALIGNED_SIZE, ALIGNED_SIZE, 3), np.uint8), np.zeros(512, np.float32)


class FacePreparer:
    """Loads the face models once (from a local folder only) and prepares photos."""

    def __init__(self, models_dir: str | os.PathLike | FaceModelPaths, allow_no_face: bool = False,
                 device: str | torch.device | None = None, providers: list[str] | None = None,
                 det_size: tuple[int, int] = DET_SIZE):
        """`models_dir` is one folder holding every face model (see `find_face_models`), or
        the resolved `FaceModelPaths` when they live apart (ComfyUI keeps antelopev2 in
        models/insightface and the parser in models/facexlib): see `from_paths`."""
        self.paths = models_dir if isinstance(models_dir, FaceModelPaths) else find_face_models(models_dir)
        self.allow_no_face = allow_no_face
        self.device = device or torch_device()
        self.detector = InsightFaceDetector(self.paths.antelopev2, providers or onnx_providers(), det_size)
        self.parser = load_parser(self.paths.parser, self.device)
        self.retinaface = None if self.paths.retinaface is None else load_retinaface(self.paths.retinaface, self.device)

    @classmethod
    def from_paths(cls, antelopev2_dir: str | os.PathLike, parser: str | os.PathLike,
                   retinaface: str | os.PathLike | None = None, **options) -> "FacePreparer":
        """A preparer over model files that sit in different folders (same models, same behaviour)."""
        paths = FaceModelPaths(antelopev2=Path(antelopev2_dir), parser=Path(parser),
                               retinaface=Path(retinaface) if retinaface else None)
        return cls(paths, **options)

    def prepare(self, image: ImageInput, face_index: int = 0, allow_no_face: bool | None = None) -> FaceResult:
        """Prepare one photo; `face_index` picks among insightface's faces sorted largest first;
        `allow_no_face` overrides the preparer's setting for this call."""
        if isinstance(face_index, bool) or not isinstance(face_index, int) or face_index < 0:
            raise InvalidInputError(f"face_index must be an integer >= 0 (0 = the largest face), got {face_index!r}")
        photo = load_rgb(image)
        notes: list[str] = []
        faces = self.detector.detect(photo)
        if faces:
            if face_index >= len(faces):
                raise InvalidInputError(f"face_index={face_index} but the photo has {len(faces)} face(s) "
                                        "(0-based, largest first)")
            if len(faces) > 1:
                notes.append(f"{len(faces)} faces found; using face {face_index} (faces are ordered largest first)")
            face = faces[face_index]
            aligned, matrix = align_face(photo, face.landmarks5)
            fields = dict(bbox=face.bbox, landmarks5=face.landmarks5, det_score=face.score,
                          arcface=face.embedding, method="insightface")
        else:
            allowed = self.allow_no_face if allow_no_face is None else allow_no_face
            fields, aligned, matrix = self._fallback(photo, notes, allowed)
            if face_index:
                notes.append(f"face_index={face_index} was not used: insightface found no face, so the "
                             f"{fields['method']} fallback chose the face")
        parsing = parse_face(self.parser, aligned)
        kept = float(keep_mask(parsing).mean())
        if kept < MIN_KEPT_FRACTION:
            notes.append(f"the face parser kept only {kept:.1%} of the crop: the identity image is almost black")
        for note in notes:
            logger.warning("%s", note)
        return FaceResult(
            identity_image=mask_identity(aligned, parsing), aligned_crop=aligned, parsing_mask=parsing,
            warnings=tuple(notes), align_matrix=matrix, photo=photo, num_faces=len(faces), **fields,
        )

    def prepare_many(self, images: Sequence[ImageInput], face_index: int = 0,
                     allow_no_face: bool | None = None) -> MultiFaceResult:
        """Several photos of one person -> MultiFaceResult; see `echovideo_core.face.multi`."""
        from echovideo_core.face.multi import prepare_many

        return prepare_many(self, images, face_index=face_index, allow_no_face=allow_no_face)

    def _fallback(self, photo: np.ndarray, notes: list[str], allow_no_face: bool) -> tuple[dict, np.ndarray, np.ndarray | None]:
        """RetinaFace landmarks, then the whole image (if allowed), else NoFaceError."""
        notes.append("insightface found no face")
        tried = ["insightface antelopev2"]
        if self.retinaface is None:
            notes.append("RetinaFace fallback unavailable (detection_Resnet50_Final.pth not in the model folder)")
        else:
            tried.append("RetinaFace")
            detections = detect_retinaface(self.retinaface, photo)
            if detections:
                chosen = centre_face(detections, *photo.shape[:2])
                aligned, matrix = align_face(photo, chosen.landmarks5)
                notes.append("used RetinaFace landmarks (centre face); ArcFace computed on the aligned crop")
                fields = dict(bbox=chosen.bbox, landmarks5=chosen.landmarks5, det_score=chosen.score,
                              arcface=self.detector.embed_crop(aligned), method="retinaface")
                return fields, aligned, matrix
            notes.append("RetinaFace found no face either")
        if not allow_no_face:
            raise NoFaceError(
                f"no face found in the photo (tried {' and '.join(tried)}). Use a clear, frontal, well-lit "
                "photo where the face is at least ~64 px wide, or pass allow_no_face=True "
                "(--allow-no-face) to use the whole image as the identity image."
            )
        aligned = cv2.resize(photo, (ALIGNED_SIZE, ALIGNED_SIZE), interpolation=cv2.INTER_AREA)
        notes.append("no landmarks at all: the whole photo resized to 512x512 is the identity crop (allow_no_face)")
        fields = dict(bbox=None, landmarks5=None, det_score=None,
                      arcface=self.detector.embed_crop(aligned), method="whole_image")
        return fields, aligned, None
