"""A video file -> its frames and frame rate (the frame rate sets the motion sampling)."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from echovideo_core.errors import InvalidInputError
from echovideo_core.io import DEFAULT_FPS, read_video


def load_video(path: str | Path) -> tuple[np.ndarray, float]:
    """(frames (F, H, W, 3) uint8, frames per second); InvalidInputError naming the file."""
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate
        frames = read_video(path)
    except (av.error.FFmpegError, IndexError, ValueError) as err:
        raise InvalidInputError(f"cannot read the video {path}: {err}") from err
    return frames, float(rate) if rate else float(DEFAULT_FPS)
