"""Which frames of a video are scored."""
from __future__ import annotations

import numpy as np

DEFAULT_SCORED_FRAMES = 32


def evenly_spaced_indices(total: int, count: int = DEFAULT_SCORED_FRAMES) -> np.ndarray:
    """`count` frame indices spread evenly over 0..total-1, first and last included
    (every frame when the video is shorter); sorted, without repeats."""
    if total < 1:
        raise ValueError(f"a video needs at least one frame, got {total}")
    if count < 1:
        raise ValueError(f"the number of scored frames must be at least 1, got {count}")
    if count == 1:
        return np.zeros(1, dtype=int)
    return np.unique(np.linspace(0, total - 1, min(count, total)).round().astype(int))
