"""Video output: playable H.264 mp4, atomic writes, no silent overwrite, PNG frames."""
from __future__ import annotations

import numpy as np
import pytest

from echovideo_core.io import read_video, save_png_frames, save_video


def frames(count: int = 9, height: int = 48, width: int = 80) -> np.ndarray:
    """(F, H, W, 3) float frames in [0, 1]: a moving gradient."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([np.stack([(x + 4 * f) % width / width, y / height, np.full_like(x, f / count, dtype=float)], -1)
                     for f in range(count)]).astype(np.float32)


def test_saved_mp4_decodes_to_same_count_and_size(tmp_path):
    path = save_video(frames(), tmp_path / "v.mp4", fps=16)
    video = read_video(path)
    assert video.shape == (9, 48, 80, 3)


def test_saved_mp4_is_close_to_the_frames(tmp_path):
    source = frames()
    video = read_video(save_video(source, tmp_path / "v.mp4")).astype(np.float32) / 255
    assert np.abs(video - source).mean() < 0.03


def test_batch_of_one_is_accepted(tmp_path):
    assert read_video(save_video(frames()[None], tmp_path / "v.mp4")).shape[0] == 9


def test_existing_file_is_not_overwritten(tmp_path):
    target = tmp_path / "v.mp4"
    target.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_video(frames(), target)
    assert target.read_bytes() == b"keep me"


def test_overwrite_replaces_the_file(tmp_path):
    target = tmp_path / "v.mp4"
    target.write_bytes(b"old")
    save_video(frames(), target, overwrite=True)
    assert read_video(target).shape[0] == 9


class _InterruptedFrames:
    """A frame sequence whose 4th frame raises, like Ctrl-C in the middle of a save."""

    def __init__(self, source: np.ndarray):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self):
        for index, frame in enumerate(self.source):
            if index == 3:
                raise KeyboardInterrupt
            yield frame


def test_interrupted_save_leaves_no_partial_file(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        save_video(_InterruptedFrames(frames()), tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_overwrite_keeps_the_old_file(tmp_path):
    target = tmp_path / "v.mp4"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        save_video(_InterruptedFrames(frames()), target, overwrite=True)
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]


def test_odd_frame_size_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="even frame sizes"):
        save_video(frames(width=81), tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []


def test_png_frames_are_written_numbered(tmp_path):
    written = save_png_frames(frames(3), tmp_path / "png")
    assert [p.name for p in written] == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
