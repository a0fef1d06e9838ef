"""Frechet distance between two sets of features (FID when they are Inception pool3 features).

    d^2 = |mu_a - mu_b|^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^(1/2))

The trace of the matrix square root is computed in sample space: with A = (X_a - mu_a) /
sqrt(n_a - 1) (so S_a = A^T A) and B likewise, the non-zero eigenvalues of S_a S_b are those
of (A B^T)(A B^T)^T, so Tr((S_a S_b)^(1/2)) is the sum of the singular values of A B^T
(n_a x n_b). That is exact, needs no `scipy.linalg.sqrtm` of a 2048 x 2048 matrix (whose
result turns complex or inaccurate when, as here, there are fewer samples than dimensions),
and gives 0 for a set against itself up to float64 rounding. A set of one sample has zero
covariance (a point), so one video's crops against its single reference photo is defined.
"""
from __future__ import annotations

import numpy as np


def _centred(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), centred rows scaled by 1/sqrt(n - 1), or a zero row for n == 1)."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"features must be (N >= 1, D), got shape {x.shape}")
    mean = x.mean(axis=0)
    if x.shape[0] == 1:
        return mean, np.zeros_like(x)
    return mean, (x - mean) / np.sqrt(x.shape[0] - 1)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance (squared, as FID reports it) between the Gaussian fits of two sets."""
    mean_a, a = _centred(features_a)
    mean_b, b = _centred(features_b)
    if mean_a.shape != mean_b.shape:
        raise ValueError(f"feature sizes differ: {mean_a.shape[0]} vs {mean_b.shape[0]}")
    trace_sqrt = np.linalg.svd(a @ b.T, compute_uv=False).sum()
    distance = ((mean_a - mean_b) ** 2).sum() + (a**2).sum() + (b**2).sum() - 2.0 * trace_sqrt
    return float(max(distance, 0.0))
