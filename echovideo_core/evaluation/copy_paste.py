"""Telling "identity kept" from "reference pasted" (EchoVideo's central claim).

A model that pastes the reference face gets a high ArcFace score too, so two more numbers
are reported:

* `masked_ssim`: pixel similarity (SSIM) of a frame's aligned face crop to the aligned
  reference, inside the reference's face mask (the parser's kept classes: skin, brows, eyes,
  nose, lips; everything else is black in the identity image). A pasted face scores near 1;
  the same person under another light, pose or expression scores far lower.
* `pose_spread`: how much head pose and expression move across frames, from the five
  landmarks. A pasted face keeps the reference's pose and expression in every frame (spread
  near 0); a live face turns, tilts and smiles.

SSIM is skimage's (7 x 7 uniform window) on the grey 128 x 128 crops, averaged over the
mask: enough resolution for pasted texture, cheap for 32 frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from skimage.metrics import structural_similarity

SSIM_SIZE = 128


def face_mask(identity_image: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels the parser kept in a masked identity image (not painted black)."""
    return np.asarray(identity_image).any(axis=-1)


def _grey(image: np.ndarray) -> np.ndarray:
    small = cv2.resize(np.ascontiguousarray(image), (SSIM_SIZE, SSIM_SIZE), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float64)


def masked_ssim(reference: np.ndarray, crop: np.ndarray, mask: np.ndarray) -> float:
    """SSIM of two aligned (H, W, 3) uint8 crops, averaged over `mask` (H, W) bool.

    Both crops are painted black outside the mask first, so two equal faces give exactly 1
    whatever surrounds them."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise ValueError("the face mask is empty: the reference identity image is all black")
    a = _grey(np.where(mask[..., None], reference, 0).astype(np.uint8))
    b = _grey(np.where(mask[..., None], crop, 0).astype(np.uint8))
    _, ssim_map = structural_similarity(a, b, data_range=255.0, full=True)
    small_mask = cv2.resize(mask.astype(np.uint8), (SSIM_SIZE, SSIM_SIZE), interpolation=cv2.INTER_NEAREST) > 0
    return float(ssim_map[small_mask].mean())


@dataclass(frozen=True)
class FacePose:
    """Readable pose / expression proxies of one face from its 5 landmarks (image pixels).

    roll_deg: tilt of the eye line (degrees, clockwise in the image positive);
    yaw: sideways offset of the nose from the eye midpoint, in inter-ocular distances (0 frontal);
    pitch: nose height between the eye line (0) and the mouth line (1), about 0.5 frontal;
    mouth_width: mouth-corner distance in inter-ocular distances (wider when smiling)."""

    roll_deg: float
    yaw: float
    pitch: float
    mouth_width: float


def face_pose(landmarks5: np.ndarray) -> FacePose:
    """Pose proxies of insightface's 5 points (left eye, right eye, nose, left / right mouth)."""
    points = np.asarray(landmarks5, np.float64).reshape(5, 2)
    left_eye, right_eye, nose, left_mouth, right_mouth = points
    eye_line = right_eye - left_eye
    ocular = max(float(np.linalg.norm(eye_line)), 1e-9)
    roll = float(np.arctan2(eye_line[1], eye_line[0]))
    cos, sin = np.cos(-roll), np.sin(-roll)
    upright = (points - (left_eye + right_eye) / 2) @ np.array([[cos, sin], [-sin, cos]])  # roll removed
    mouth_y = (upright[3, 1] + upright[4, 1]) / 2
    return FacePose(
        roll_deg=float(np.degrees(roll)),
        yaw=float(upright[2, 0] / ocular),
        pitch=float(upright[2, 1] / mouth_y) if abs(mouth_y) > 1e-9 else 0.0,
        mouth_width=float(np.linalg.norm(right_mouth - left_mouth) / ocular),
    )


def normalised_shape(landmarks5: np.ndarray) -> np.ndarray:
    """(5, 2) points centred on their mean and scaled to unit RMS radius. Rotation is kept,
    so roll counts as pose; position and face size (camera distance) do not."""
    points = np.asarray(landmarks5, np.float64).reshape(5, 2)
    centred = points - points.mean(axis=0)
    return centred / max(float(np.sqrt((centred**2).sum(axis=1).mean())), 1e-9)


def pose_spread(landmarks: list[np.ndarray]) -> float | None:
    """RMS distance of each face's normalised 5-point shape to the mean shape over frames.

    0 when every face has the same pose and expression (a pasted face); about 0.1 for a
    clearly turning or smiling head. None with fewer than two faces (no spread to measure)."""
    if len(landmarks) < 2:
        return None
    shapes = np.stack([normalised_shape(points) for points in landmarks])
    deviations = shapes - shapes.mean(axis=0)
    return float(np.sqrt((deviations**2).sum(axis=2).mean()))
