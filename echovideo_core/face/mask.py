"""Masking the aligned crop with the 19-class face parsing (docs/design.md 5.5).

Class ids are those of the BiSeNet face parser (CelebAMask-HQ order): 0 background, 1 skin,
2 left brow, 3 right brow, 4 left eye, 5 right eye, 6 eyeglasses, 7 left ear, 8 right ear,
9 earring, 10 nose, 11 mouth, 12 upper lip, 13 lower lip, 14 neck, 15 necklace, 16 cloth,
17 hair, 18 hat.
"""
from __future__ import annotations

import numpy as np

NUM_CLASSES = 19
CLASS_NAMES: tuple[str, ...] = (
    "background", "skin", "left_brow", "right_brow", "left_eye", "right_eye", "eyeglasses",
    "left_ear", "right_ear", "earring", "nose", "mouth", "upper_lip", "lower_lip", "neck",
    "necklace", "cloth", "hair", "hat",
)
REMOVED_CLASSES: frozenset[int] = frozenset({0, 7, 8, 9, 14, 15, 16, 18})
KEPT_CLASSES: frozenset[int] = frozenset(range(NUM_CLASSES)) - REMOVED_CLASSES

# One colour per class for the debug picture (RGB); background is black.
PARSING_PALETTE = np.array(
    [
        [0, 0, 0], [204, 0, 0], [76, 153, 0], [204, 204, 0], [51, 51, 255], [204, 0, 204],
        [0, 255, 255], [255, 204, 204], [102, 51, 0], [255, 0, 0], [102, 204, 0],
        [255, 255, 0], [0, 0, 153], [0, 0, 204], [255, 51, 153], [0, 204, 204],
        [0, 51, 0], [255, 153, 51], [0, 204, 0],
    ],
    dtype=np.uint8,
)


def keep_mask(parsing: np.ndarray) -> np.ndarray:
    """Boolean (H, W) map: True where the class is kept (face, hair, glasses...)."""
    parsing = np.asarray(parsing)
    if parsing.ndim != 2 or not np.issubdtype(parsing.dtype, np.integer):
        raise ValueError(f"parsing must be an (H, W) integer class map, got {parsing.shape} {parsing.dtype}")
    return np.isin(parsing, sorted(KEPT_CLASSES))


def mask_identity(aligned: np.ndarray, parsing: np.ndarray) -> np.ndarray:
    """Identity image: the aligned crop with removed classes painted black.

    aligned: (512, 512, 3) uint8; parsing: (512, 512) integer class map. Returns a new
    (512, 512, 3) uint8 array; the input is not modified.
    """
    aligned = np.asarray(aligned)
    if aligned.ndim != 3 or aligned.shape[2] != 3 or aligned.dtype != np.uint8:
        raise ValueError(f"aligned must be (H, W, 3) uint8, got {aligned.shape} {aligned.dtype}")
    keep = keep_mask(parsing)
    if keep.shape != aligned.shape[:2]:
        raise ValueError(f"parsing {keep.shape} and aligned {aligned.shape[:2]} differ in size")
    return np.where(keep[..., None], aligned, np.uint8(0)).astype(np.uint8)


def colorize_parsing(parsing: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 picture of a class map, one palette colour per class."""
    parsing = np.asarray(parsing)
    return PARSING_PALETTE[np.clip(parsing, 0, NUM_CLASSES - 1)]
