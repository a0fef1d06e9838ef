"""Every save goes through one atomic writer: the old file or the whole new one, nothing between."""
from __future__ import annotations

import pytest

from echovideo_core.atomic import atomic_path, write_json_atomic


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "video.mp4"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["video.mp4"]


def test_the_temporary_keeps_the_suffix_and_lands_on_the_target(tmp_path):
    with atomic_path(tmp_path / "clip.mp4") as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".mp4" and tmp.name.startswith(".")
        tmp.write_bytes(b"new")
    assert (tmp_path / "clip.mp4").read_bytes() == b"new"


def test_json_is_written_whole(tmp_path):
    write_json_atomic(tmp_path / "index.json", {"step": 3})
    assert (tmp_path / "index.json").read_text() == '{\n "step": 3\n}'
