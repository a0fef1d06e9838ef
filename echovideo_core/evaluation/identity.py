"""Face similarity to the reference, and the paper's Identity Average / Identity Variation.

A frame without a face is a *miss*: it is left out of both numbers (and counted apart),
never scored as similarity 0, which would mix "the detector found nobody" with "somebody
else". The cosine is taken between raw embeddings (it does not depend on their norms).

Identity Average: mean over the scored frames of the cosine between the frame's face
embedding and the reference's (the same number as FaceSim-Arc when the embedding is ArcFace).
Identity Variation: the standard deviation (population, ddof=0) of those per-frame cosines.
Why a standard deviation and not a variance: see docs/identity_study.md ("Definitions").
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two vectors (any norms), in float64; 0 when either is all zeros."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def scored(similarities: Sequence[float | None]) -> np.ndarray:
    """The similarities of frames that had a face (misses are None), as float64."""
    return np.array([s for s in similarities if s is not None], dtype=np.float64)


def identity_average(similarities: Sequence[float | None]) -> float | None:
    """Mean cosine over frames with a face; None when no frame had one."""
    values = scored(similarities)
    return float(values.mean()) if values.size else None


def identity_variation(similarities: Sequence[float | None]) -> float | None:
    """Standard deviation (ddof=0) of the cosines over frames with a face; None without any."""
    values = scored(similarities)
    return float(values.std()) if values.size else None
