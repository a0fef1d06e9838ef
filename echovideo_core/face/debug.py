"""Side-by-side debug picture: photo with box and 5 points | aligned | parsing | result."""
from __future__ import annotations

import cv2
import numpy as np

from echovideo_core.face.align import ALIGNED_SIZE, arcface_template
from echovideo_core.face.mask import colorize_parsing
from echovideo_core.face.prepare import FaceResult

PANEL = ALIGNED_SIZE
POINT_COLOURS = ((0, 255, 0), (0, 255, 0), (255, 0, 0), (0, 128, 255), (0, 128, 255))  # eyes, nose, mouth


def _label(panel: np.ndarray, text: str) -> None:
    cv2.putText(panel, text, (8, PANEL - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(panel, text, (8, PANEL - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)


def _photo_panel(result: FaceResult) -> np.ndarray:
    """The photo letterboxed into 512 x 512 with the box and the 5 points drawn on it."""
    height, width = result.photo.shape[:2]
    scale = PANEL / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    panel = np.zeros((PANEL, PANEL, 3), np.uint8)
    panel[: size[1], : size[0]] = cv2.resize(result.photo, size, interpolation=cv2.INTER_AREA)
    if result.bbox is not None:
        x1, y1, x2, y2 = (np.asarray(result.bbox) * scale).round().astype(int)
        cv2.rectangle(panel, (x1, y1), (x2, y2), (255, 255, 0), 2)
    if result.landmarks5 is not None:
        for (x, y), colour in zip(np.asarray(result.landmarks5) * scale, POINT_COLOURS):
            cv2.circle(panel, (round(x), round(y)), 3, colour, -1)
    score = "" if result.det_score is None else f" {result.det_score:.2f}"
    _label(panel, f"photo: {result.method}{score}")
    return panel


def debug_picture(result: FaceResult) -> np.ndarray:
    """(512, 2048, 3) uint8 RGB: photo+box+points | aligned (+template) | parsing | identity."""
    aligned = result.aligned_crop.copy()
    for (x, y), colour in zip(arcface_template(), POINT_COLOURS):
        cv2.drawMarker(aligned, (round(x), round(y)), colour, cv2.MARKER_CROSS, 10, 1)
    _label(aligned, "aligned (+ template)")
    parsing = colorize_parsing(result.parsing_mask)
    _label(parsing, "parsing")
    identity = result.identity_image.copy()
    _label(identity, "identity image")
    return np.concatenate([_photo_panel(result), aligned, parsing, identity], axis=1)
