"""Five-point alignment onto the ArcFace template scaled to 512 x 512 (docs/design.md 5.3).

The template is the classic ArcFace one given for a 96 x 112 crop; x is scaled by 512/96 and
y by 512/112, so the 512 x 512 crop is a non-uniformly stretched version of that 96 x 112
layout (as released). The fit is a similarity (rotation, uniform scale, translation) found
with OpenCV's robust LMEDS estimator, the same call facexlib's face helper uses.

Warp choices (not fixed by the spec, chosen to match facexlib's helper, which the released
pipeline builds on): bilinear interpolation (`cv2.INTER_LINEAR`) and a constant grey border
(132, 133, 135) in RGB, i.e. facexlib's (135, 133, 132) in BGR. Border pixels are parsed as
background and painted black by `mask_identity` anyway.
"""
from __future__ import annotations

import cv2
import numpy as np

ALIGNED_SIZE = 512
ARCFACE_TEMPLATE_96x112 = np.array(
    [
        [30.2946, 51.6963],  # left eye (image left)
        [65.5318, 51.5014],  # right eye
        [48.0252, 71.7366],  # nose tip
        [33.5493, 92.3655],  # left mouth corner
        [62.7299, 92.2041],  # right mouth corner
    ],
    dtype=np.float64,
)
BORDER_VALUE_RGB = (132, 133, 135)


def arcface_template(size: int = ALIGNED_SIZE) -> np.ndarray:
    """The 5-point template (5, 2) in pixels of a `size` x `size` crop (x*size/96, y*size/112)."""
    scale = np.array([size / 96.0, size / 112.0])
    return ARCFACE_TEMPLATE_96x112 * scale


def similarity_to_template(landmarks5: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """2x3 similarity matrix M (LMEDS fit) mapping photo points onto the template.

    Raises ValueError for landmarks that are not (5, 2) finite numbers or that are degenerate
    (all points on top of each other), where no similarity can be estimated.
    """
    points = np.asarray(landmarks5, dtype=np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"landmarks5 must have shape (5, 2), got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError("landmarks5 contains NaN or infinite values")
    if np.ptp(points, axis=0).max() < 1e-6:
        raise ValueError("landmarks5 are degenerate (all five points coincide)")
    matrix, _ = cv2.estimateAffinePartial2D(
        points.astype(np.float32), arcface_template(size).astype(np.float32), method=cv2.LMEDS
    )
    if matrix is None:
        raise ValueError("no similarity transform found for these landmarks5")
    return matrix


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, 2) points; returns (N, 2) float64."""
    points = np.asarray(points, dtype=np.float64)
    return points @ np.asarray(matrix, dtype=np.float64)[:, :2].T + matrix[:, 2]


def align_face(image_hwc_uint8: np.ndarray, landmarks5: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Warp the photo so its 5 key points sit on the 512 x 512 ArcFace template.

    image_hwc_uint8: (H, W, 3) uint8 RGB; landmarks5: (5, 2) x, y in photo pixels, ordered
    left eye, right eye, nose, left mouth corner, right mouth corner (insightface's order).
    Returns (aligned (512, 512, 3) uint8, M (2, 3) float64 photo -> aligned).
    """
    image = np.asarray(image_hwc_uint8)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"align_face needs an (H, W, 3) uint8 image, got shape {image.shape} dtype {image.dtype}"
        )
    matrix = similarity_to_template(landmarks5)
    aligned = cv2.warpAffine(
        image,
        matrix,
        (ALIGNED_SIZE, ALIGNED_SIZE),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=BORDER_VALUE_RGB,
    )
    return aligned, matrix
