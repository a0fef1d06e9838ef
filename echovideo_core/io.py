"""Frames -> files: H.264 mp4 (PyAV) and optional PNG frames, written atomically.

A video is first written to a hidden temporary file beside the target and renamed over it
with `os.replace` only when complete, so an interrupted save (error, Ctrl-C) never leaves a
truncated file under the requested name. Existing files are kept unless `overwrite=True`.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Sequence

import av
import numpy as np
import PIL.Image
import torch

from echovideo_core.atomic import atomic_path
from echovideo_core.errors import InputFileError
from echovideo_core.paths import check_input_file, check_output_file
from echovideo_core.validation import check_fps

logger = logging.getLogger(__name__)

DEFAULT_FPS = 16


def frame_to_uint8(frame: np.ndarray | torch.Tensor) -> np.ndarray:
    """(H, W, 3) float in [0, 1] (or uint8) -> (H, W, 3) uint8, rounded."""
    if isinstance(frame, torch.Tensor):
        frame = frame.detach().cpu().float().numpy()
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"each frame must be (H, W, 3), got shape {frame.shape}")
    if frame.dtype == np.uint8:
        return frame
    return (np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _frame_list(frames: Sequence | np.ndarray | torch.Tensor) -> Sequence:
    """Accept (F, H, W, 3) or a batch of one (1, F, H, W, 3)."""
    ndim = getattr(frames, "ndim", None)
    if ndim == 5:
        if frames.shape[0] != 1:
            raise ValueError(f"save one video at a time: got a batch of {frames.shape[0]}")
        return frames[0]
    if ndim is not None and ndim != 4:
        raise ValueError(f"frames must be (F, H, W, 3) or (1, F, H, W, 3), got shape {tuple(frames.shape)}")
    return frames


def _h264_encoder() -> str:
    """libx264 (in PyAV's wheels); FFmpeg's generic name otherwise."""
    return "libx264" if "libx264" in av.codecs_available else "h264"


def _encode(frames: Iterable, target: str, fps: int, crf: int) -> int:
    """Write every frame into `target` as H.264 yuv420p; returns the frame count."""
    count = 0
    with av.open(target, mode="w", format="mp4") as container:
        stream = None
        for frame in frames:
            image = frame_to_uint8(frame)
            if stream is None:
                height, width = image.shape[:2]
                if height % 2 or width % 2:
                    raise ValueError(f"H.264 needs even frame sizes, got {width}x{height}")
                stream = container.add_stream(_h264_encoder(), rate=fps)
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                stream.options = {"crf": str(crf)}
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            count += 1
        if stream is None:
            raise ValueError("no frames to save")
        container.mux(stream.encode())
    return count


def save_video(frames: Sequence | np.ndarray | torch.Tensor, path: str | Path, fps: int = DEFAULT_FPS,
               overwrite: bool = False, *, crf: int = 18, png_dir: str | Path | None = None) -> Path:
    """Save (F, H, W, 3) frames in [0, 1] (or uint8) as an H.264 mp4 at `path`, atomically.

    Refuses to replace an existing file unless `overwrite`. `png_dir`, when given, also
    receives the frames as numbered PNGs (same overwrite rule per file).
    """
    path = check_output_file(path, overwrite=overwrite)
    check_fps(fps)
    frames = _frame_list(frames)
    with atomic_path(path) as tmp:
        count = _encode(frames, str(tmp), fps, crf)
    logger.info("wrote %s (%d frames, %d fps)", path, count, fps)
    if png_dir is not None:
        save_png_frames(frames, png_dir, overwrite=overwrite)
    return path


def save_png_frames(frames: Sequence | np.ndarray | torch.Tensor, folder: str | Path,
                    overwrite: bool = False) -> list[Path]:
    """Write frames as `folder/frame_00000.png`, ... (each file atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index, frame in enumerate(_frame_list(frames)):
        target = check_output_file(folder / f"frame_{index:05d}.png", overwrite=overwrite)
        with atomic_path(target) as tmp:
            PIL.Image.fromarray(frame_to_uint8(frame)).save(tmp, format="PNG")
        written.append(target)
    return written


def read_video(path: str | Path) -> np.ndarray:
    """Decode a video back to (F, H, W, 3) uint8 (for checks and tests); InputFileError
    naming the file when it is not a readable video."""
    path = check_input_file(path)
    try:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise InputFileError(f"{path} is not a readable video ({err})", path=path) from err
    if not frames:
        raise InputFileError(f"{path} holds no video frames", path=path)
    return np.stack(frames)
