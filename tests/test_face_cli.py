"""`echovideo face PHOTO --models DIR --out face.png` and the debug picture."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from echovideo_core.cli import main
from echovideo_core.testing.tiny_face_models import write_tiny_face_models


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return write_tiny_face_models(tmp_path_factory.mktemp("face_models"), seed=5, with_retinaface=False)


@pytest.fixture()
def marker_file(tmp_path):
    photo = np.full((640, 640, 3), 128, np.uint8)
    photo[320:352, 224:256] = (255, 0, 255)
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    return path


def test_face_command_writes_identity_arcface_and_debug_picture(kit, marker_file, tmp_path, capsys):
    out = tmp_path / "out" / "face.png"
    assert main(["face", str(marker_file), "--models", str(kit), "--out", str(out)]) == 0
    assert Image.open(out).size == (512, 512)
    assert np.load(out.with_suffix(".npy")).shape == (512,)
    assert Image.open(tmp_path / "out" / "face_debug.png").size == (2048, 512)
    assert "method=insightface" in capsys.readouterr().out


def test_face_command_fails_with_status_2_and_one_line_when_no_face(kit, tmp_path, capsys):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (64, 64), (255, 255, 255)).save(blank)
    assert main(["face", str(blank), "--models", str(kit), "--out", str(tmp_path / "f.png")]) == 2
    error = capsys.readouterr().err.splitlines()
    assert len(error) == 1 and error[0].startswith("echovideo face: no face found") and "--allow-no-face" in error[0]
    assert not (tmp_path / "f.png").exists()


def test_face_command_allow_no_face_uses_the_whole_image(kit, tmp_path, capsys):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (64, 64), (255, 255, 255)).save(blank)
    debug = tmp_path / "d.png"
    args = ["face", str(blank), "--models", str(kit), "--out", str(tmp_path / "f.png"), "--debug", str(debug), "--allow-no-face"]
    assert main(args) == 0
    assert "method=whole_image" in capsys.readouterr().out and debug.exists()


def test_face_command_keeps_existing_outputs_unless_overwrite(kit, marker_file, tmp_path, capsys):
    out = tmp_path / "face.png"
    (tmp_path / "face.npy").write_bytes(b"the user's vector")
    assert main(["face", str(marker_file), "--models", str(kit), "--out", str(out)]) == 2
    assert "face.npy exists; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "face.npy").read_bytes() == b"the user's vector" and not out.exists()
    assert main(["face", str(marker_file), "--models", str(kit), "--out", str(out), "--overwrite"]) == 0
    assert np.load(tmp_path / "face.npy").shape == (512,)
