"""Loading any user photo (docs/design.md 5.1): types, EXIF, size, alpha, grey, CMYK, corrupt files."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from echovideo_core.errors import InvalidInputError
from echovideo_core.face.errors import ImageLoadError
from echovideo_core.face.image import load_rgb


@pytest.fixture()
def photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)


def test_path_pil_numpy_and_comfy_tensor_give_the_same_pixels(photo, tmp_path):
    path = tmp_path / "p.png"
    Image.fromarray(photo).save(path)
    comfy = torch.from_numpy(photo).float()[None] / 255.0  # ComfyUI IMAGE: (B, H, W, C) in [0, 1]
    for source in (path, str(path), Image.open(path), photo, comfy):
        np.testing.assert_array_equal(load_rgb(source), photo)


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = 255  # left half white
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)
    loaded = load_rgb(path)
    assert loaded.shape == (40, 20, 3)
    assert loaded[:10].mean() > 200 and loaded[-10:].mean() < 50  # white half now on top


def test_long_side_is_shrunk_to_1024_keeping_the_aspect():
    assert load_rgb(np.zeros((1500, 3000, 3), np.uint8)).shape == (512, 1024, 3)


def test_small_photos_are_not_enlarged():
    assert load_rgb(np.zeros((8, 6, 3), np.uint8)).shape == (8, 6, 3)


def test_transparent_pixels_become_white():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:2, :, 3] = 255  # top half opaque red, bottom transparent
    loaded = load_rgb(Image.fromarray(rgba, "RGBA"))
    np.testing.assert_array_equal(loaded[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(loaded[3, 0], [255, 255, 255])
    np.testing.assert_array_equal(load_rgb(rgba), loaded)


def test_greyscale_is_replicated_to_three_channels():
    grey = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    for source in (grey, Image.fromarray(grey, "L")):
        loaded = load_rgb(source)
        assert loaded.shape == (4, 4, 3)
        np.testing.assert_array_equal(loaded[..., 2], grey)


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path)  # pure red in CMYK
    loaded = load_rgb(path)
    assert loaded.shape == (16, 16, 3)
    assert loaded[..., 0].mean() > 200 and loaded[..., 1].mean() < 60


def test_corrupt_file_raises_image_load_error_naming_the_path(tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(ImageLoadError, match="broken.jpg"):
        load_rgb(path)


def test_truncated_file_raises_image_load_error(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ImageLoadError, match="truncated.png"):
        load_rgb(truncated)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_rgb(tmp_path / "nope.png")


def test_a_batch_of_several_images_points_to_prepare_many():
    with pytest.raises(ValueError, match="prepare_many"):
        load_rgb(torch.zeros(2, 8, 8, 3))


def test_float_numpy_arrays_are_refused_with_a_hint():
    with pytest.raises(InvalidInputError, match="uint8"):
        load_rgb(np.zeros((8, 8, 3), np.float32))
