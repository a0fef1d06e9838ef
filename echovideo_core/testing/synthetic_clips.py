"""Synthetic training clips: short H.264 videos of a drifting colour gradient with a magenta
"face" marker (what the tiny face detector of `tiny_face_models` finds), and their JSONL
manifest. For the tests and the tiny training walk-through (`echovideo synthetic-clips`);
they teach a model nothing about faces.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from echovideo_core.atomic import atomic_path, write_text_atomic

CLIP_SIZE = 96  # pixels; the marker is found at this size
CLIP_FRAMES = 20
MANIFEST_NAME = "captions.jsonl"


def write_clip(path: Path, *, seed: int, frames: int = CLIP_FRAMES, face: bool = True, size: int = CLIP_SIZE) -> Path:
    """A short H.264 clip (written atomically): a drifting colour gradient, plus a magenta
    face marker if `face`."""
    import av

    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, 3)
    yy, xx = np.mgrid[0:size, 0:size]
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=16)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for t in range(frames):
            image = np.empty((size, size, 3), np.uint8)
            for c in range(3):
                image[..., c] = (base[c] + 50 * np.sin((xx + 3 * t * (c + 1)) / 9.0 + c)).clip(0, 255)
            if face:
                top = 36 * size // CLIP_SIZE + (t % 3)
                left = 40 * size // CLIP_SIZE
                image[top:top + 12, left:left + 12] = (255, 0, 255)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_manifest(folder: Path, rows: Sequence[dict]) -> Path:
    """`folder/captions.jsonl`, one JSON object per clip (as `echovideo prepare-data` reads it)."""
    path = folder / MANIFEST_NAME
    write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))
    return path


def clip_names(count: int) -> list[str]:
    return [f"clip{i}.mp4" for i in range(count)]


def write_synthetic_clips(folder: str | Path, count: int, *, seed: int = 0, frames: int = CLIP_FRAMES,
                          size: int = CLIP_SIZE, without_face: tuple[int, ...] = ()) -> Path:
    """`count` clips in `folder` (created) and their manifest; returns the manifest's path.
    Clips listed in `without_face` lack the marker (preparation skips them)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, name in enumerate(clip_names(count)):
        write_clip(folder / name, seed=seed + i, frames=frames, size=size, face=i not in without_face)
        rows.append({"video": name, "caption": f"a person number {i} smiles and waves"})
    return write_manifest(folder, rows)
