"""Dynamic degree: does the video move? VBench's rule over OpenCV Farneback optical flow.

VBench decides per video: flow between frames sampled at about 8 fps; per frame pair the
mean of the largest 5 % flow magnitudes; a pair "moves" when that exceeds 6 px at a short
side of 256 px; the video is dynamic when at least round(4 * frames / 16) pairs move. The
paper's Dynamic Degree is the share of dynamic videos. VBench estimates flow with RAFT
(learned weights); here OpenCV's Farneback (no weights) estimates it, so values can differ
from VBench's on hard motion. The continuous `motion` (mean over pairs, px at 256) is
reported beside the 0 / 1 decision because one video's decision is coarse.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FLOW_SHORT_SIDE = 256
MOVING_PIXELS = 6.0  # VBench's threshold at a 256 px short side
TOP_FRACTION = 0.05
TARGET_FPS = 8.0
# OpenCV's documented example parameters: pyramid scale, levels, window, iterations, poly_n, poly_sigma
FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)


@dataclass(frozen=True)
class Motion:
    """dynamic_degree: 1.0 dynamic / 0.0 static (VBench's rule); motion: mean top-5 % flow
    (px at a 256 px short side); pair_motion: that value per frame pair; pairs_moving: count."""

    dynamic_degree: float
    motion: float
    pair_motion: tuple[float, ...]
    pairs_moving: int


def _grey_at_256(frame: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    scale = FLOW_SHORT_SIDE / min(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.cvtColor(cv2.resize(np.ascontiguousarray(frame), size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)


def top_flow_magnitude(previous: np.ndarray, following: np.ndarray) -> float:
    """Mean of the largest 5 % Farneback flow magnitudes between two (H, W) grey uint8 frames."""
    flow = cv2.calcOpticalFlowFarneback(previous, following, None, **FARNEBACK)
    magnitude = np.sqrt((flow.astype(np.float64) ** 2).sum(axis=-1)).ravel()
    count = max(1, int(magnitude.size * TOP_FRACTION))
    return float(np.sort(magnitude)[-count:].mean())


def frame_step(fps: float) -> int:
    """Every n-th frame so that the flow sees about 8 frames per second (16 fps -> 2)."""
    return max(1, round(fps / TARGET_FPS))


def dynamic_degree(frames: np.ndarray, fps: float) -> Motion | None:
    """(F, H, W, 3) uint8 frames -> Motion; None for a video of fewer than two used frames."""
    used = [_grey_at_256(frame) for frame in frames[:: frame_step(fps)]]
    if len(used) < 2:
        return None
    pairs = tuple(top_flow_magnitude(a, b) for a, b in zip(used[:-1], used[1:]))
    moving = sum(value > MOVING_PIXELS for value in pairs)
    needed = round(4 * len(used) / 16)
    return Motion(dynamic_degree=float(moving >= needed), motion=float(np.mean(pairs)), pair_motion=pairs,
                  pairs_moving=int(moving))
