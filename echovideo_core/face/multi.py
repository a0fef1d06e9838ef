"""Several photos of one person -> one identity (issue 5, item 7).

The ArcFace vector is the mean of the photos' raw vectors weighted by detection score; the
identity image (and every other field) comes from the best-scored face. The spread of cosine
similarities shows whether one photo is of someone else: each photo is compared with the
weighted mean of the *other* photos (leave one out), so an outlier cannot hide in a mean it
dominates. A photo without a detection score (whole-image fallback) gets weight 0; if no
photo has a score, the weights are uniform.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from typing import TYPE_CHECKING

from echovideo_core.face.image import ImageInput

if TYPE_CHECKING:  # pragma: no cover - prepare.py imports this module; no cycle at run time
    from echovideo_core.face.prepare import FacePreparer, FaceResult

logger = logging.getLogger(__name__)

OUTLIER_COSINE = 0.3  # same-person ArcFace pairs usually score well above this


@dataclass(frozen=True)
class MultiFaceResult:
    """face: the combined FaceResult (best photo's images, weighted-mean raw ArcFace (512,)).
    per_photo: each photo's own FaceResult; weights: (N,) normalised weights;
    similarity_to_others: (N,) cosine of each photo with the weighted mean of the others
    (1.0 for a single photo); pairwise: (N, N) cosine matrix; spread: max - min of
    similarity_to_others; best_index: the photo the identity image comes from."""

    face: FaceResult
    per_photo: tuple[FaceResult, ...]
    weights: np.ndarray
    similarity_to_others: np.ndarray
    pairwise: np.ndarray
    spread: float
    best_index: int
    warnings: tuple[str, ...]


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def combine_arcface(vectors: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Score-weighted mean of raw ArcFace rows (N, 512) -> (512,) float32 (uniform if all 0)."""
    scores = np.clip(np.asarray(scores, dtype=np.float64), 0.0, None)
    weights = scores / scores.sum() if scores.sum() > 0 else np.full(len(scores), 1.0 / len(scores))
    return (weights[:, None] * np.asarray(vectors, dtype=np.float64)).sum(axis=0).astype(np.float32)


def leave_one_out_similarity(vectors: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(N,) cosine of each row with the score-weighted mean of the other rows."""
    count = len(vectors)
    if count == 1:
        return np.ones(1)
    sims = []
    for index in range(count):
        others = [i for i in range(count) if i != index]
        mean = combine_arcface(vectors[others], scores[others])
        sims.append(float(_unit(vectors[index]) @ _unit(mean)))
    return np.array(sims)


def prepare_many(preparer: FacePreparer, images: Sequence[ImageInput], face_index: int = 0,
                 allow_no_face: bool | None = None) -> MultiFaceResult:
    """Prepare every photo and combine them into one identity."""
    if len(images) == 0:
        raise ValueError("prepare_many needs at least one photo")
    results = tuple(preparer.prepare(image, face_index=face_index, allow_no_face=allow_no_face) for image in images)
    vectors = np.stack([r.arcface for r in results]).astype(np.float64)
    scores = np.array([r.det_score or 0.0 for r in results])
    weights = scores / scores.sum() if scores.sum() > 0 else np.full(len(scores), 1.0 / len(scores))
    best = int(np.argmax(scores))
    similarity = leave_one_out_similarity(vectors, scores)
    units = _unit(vectors)
    notes = [f"photo {i}: {w}" for i, r in enumerate(results) for w in r.warnings]  # logged by prepare
    if len(results) > 1:
        for index, value in enumerate(similarity):
            if value < OUTLIER_COSINE:
                notes.append(f"photo {index} looks like a different person (cosine {value:.2f} with the others)")
                logger.warning("%s", notes[-1])
    combined = dataclasses.replace(results[best], arcface=combine_arcface(vectors, scores))
    return MultiFaceResult(
        face=combined, per_photo=results, weights=weights, similarity_to_others=similarity,
        pairwise=units @ units.T, spread=float(similarity.max() - similarity.min()),
        best_index=best, warnings=tuple(notes),
    )
