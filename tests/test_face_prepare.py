"""FacePreparer end to end with the tiny face models (docs/design.md section 5, issue 5).

The tiny SCRFD is a marker detector (see echovideo_core/testing/tiny_face_models.py): a
saturated magenta 32 x 32 cell of the 640 x 640 detector input is a face whose box is the
64 px square centred on the cell, with key points in the template's layout.
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from echovideo_core.face import FacePreparer, debug_picture, prepare_many
from echovideo_core.face.align import arcface_template, transform_points
from echovideo_core.face.errors import FaceModelsMissingError, ImageLoadError, NoFaceError
from echovideo_core.loading.face import find_face_models
from echovideo_core.testing.tiny_face_models import write_tiny_face_models, write_tiny_retinaface

MAGENTA = (255, 0, 255)
BLUISH = (183, 0, 255)  # fires with a lower score (0.975) but a bigger box (d = 2.125 cells)


def marker_photo(cells=((7, 10, MAGENTA),), size=(640, 640), background=128) -> np.ndarray:
    photo = np.full((size[1], size[0], 3), background, np.uint8)
    for col, row, colour in cells:
        photo[row * 32 : row * 32 + 32, col * 32 : col * 32 + 32] = colour
    return photo


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return write_tiny_face_models(tmp_path_factory.mktemp("face_models"))


@pytest.fixture(scope="module")
def preparer(kit):
    return FacePreparer(kit)


@pytest.fixture(scope="module")
def marker_result(preparer):
    return preparer.prepare(marker_photo())


def test_marker_face_is_found_by_insightface_where_expected(marker_result):
    assert marker_result.method == "insightface" and marker_result.warnings == ()
    np.testing.assert_allclose(marker_result.bbox, [208, 304, 272, 368], atol=1e-3)
    assert marker_result.det_score > 0.99 and marker_result.num_faces == 1


def test_result_layouts_match_the_documented_types(marker_result):
    assert marker_result.identity_image.shape == (512, 512, 3) and marker_result.identity_image.dtype == np.uint8
    assert marker_result.aligned_crop.shape == (512, 512, 3)
    assert marker_result.parsing_mask.shape == (512, 512)
    assert marker_result.arcface.shape == (512,) and marker_result.arcface.dtype == np.float32
    assert marker_result.landmarks5.shape == (5, 2) and marker_result.align_matrix.shape == (2, 3)


def test_detected_points_land_on_the_template_within_1px(marker_result):
    mapped = transform_points(marker_result.align_matrix, marker_result.landmarks5)
    assert np.abs(mapped - arcface_template()).max() < 1.0


@pytest.mark.filterwarnings("ignore:.*estimate.*deprecated:FutureWarning")
def test_arcface_is_the_raw_not_normalised_embedding(preparer, marker_result):
    assert abs(np.linalg.norm(marker_result.arcface) - 1.0) > 0.05
    recognition = preparer.detector.app.models["recognition"]
    from insightface.utils.face_align import norm_crop

    bgr = np.ascontiguousarray(marker_photo()[..., ::-1])
    expected = recognition.get_feat(norm_crop(bgr, marker_result.landmarks5.astype(np.float32))).reshape(-1)
    np.testing.assert_allclose(marker_result.arcface, expected, rtol=1e-5, atol=1e-6)


def test_identity_image_is_the_crop_masked_by_the_parsing(marker_result):
    from echovideo_core.face.mask import mask_identity

    expected = mask_identity(marker_result.aligned_crop, marker_result.parsing_mask)
    np.testing.assert_array_equal(marker_result.identity_image, expected)


def test_largest_face_wins_even_with_a_lower_score(preparer):
    result = preparer.prepare(marker_photo(((3, 3, BLUISH), (14, 14, MAGENTA))))
    assert result.num_faces == 2 and "2 faces found" in result.warnings[0]
    width = result.bbox[2] - result.bbox[0]
    assert width == pytest.approx(2 * 2.125 * 32, abs=1.0) and result.det_score < 0.98


def test_face_index_picks_the_next_largest_face(preparer):
    result = preparer.prepare(marker_photo(((3, 3, BLUISH), (14, 14, MAGENTA))), face_index=1)
    np.testing.assert_allclose(result.bbox, [432, 432, 496, 496], atol=1e-3)  # cell 14 = 448..480
    with pytest.raises(ValueError, match="face_index=2 but the photo has 2 face"):
        preparer.prepare(marker_photo(((3, 3, BLUISH), (14, 14, MAGENTA))), face_index=2)


def test_blank_photo_raises_no_face_error_saying_what_was_tried(preparer):
    with pytest.raises(NoFaceError, match="tried insightface antelopev2 and RetinaFace.*allow_no_face"):
        preparer.prepare(np.full((120, 160, 3), 255, np.uint8))


def test_landscape_photo_raises_no_face_error(preparer):
    rows = np.linspace(0, 1, 180)[:, None, None]
    sky = (np.array([90, 150, 235]) * (1 - rows) + np.array([200, 225, 250]) * rows).astype(np.uint8)
    landscape = np.concatenate([np.broadcast_to(sky, (180, 320, 3)), np.full((60, 320, 3), (60, 140, 50), np.uint8)])
    with pytest.raises(NoFaceError):
        preparer.prepare(landscape)


def test_tiny_photo_raises_no_face_error(preparer):
    with pytest.raises(NoFaceError):
        preparer.prepare(np.full((8, 8, 3), 90, np.uint8))


def test_huge_photo_is_shrunk_and_coordinates_refer_to_the_shrunk_photo(preparer):
    # 4096 -> 1024 (load) -> 640 (detector): one detector cell is 204.8 source pixels
    huge = np.full((4096, 4096, 3), 128, np.uint8)
    huge[1434:1638, 1434:1638] = MAGENTA  # detector cell (7, 7)
    result = preparer.prepare(huge)
    assert result.photo.shape == (1024, 1024, 3)
    np.testing.assert_allclose(result.bbox, np.array([208, 208, 272, 272]) / 0.625, atol=1.0)


def test_exif_rotated_file_is_detected_upright(preparer, tmp_path):
    stored = Image.fromarray(np.rot90(marker_photo(), k=1))  # stored turned; EXIF says "rotate 90 CW"
    exif = stored.getexif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.png"
    stored.save(path, exif=exif)
    np.testing.assert_allclose(preparer.prepare(path).bbox, [208, 304, 272, 368], atol=1e-3)


def test_transparent_background_and_comfy_tensor_give_the_same_face(preparer, marker_result):
    rgba = np.dstack([marker_photo(), np.full((640, 640), 255, np.uint8)])
    rgba[:100, :100, 3] = 0  # a transparent corner becomes white, away from the marker
    np.testing.assert_allclose(preparer.prepare(rgba).bbox, marker_result.bbox, atol=1e-3)
    comfy = torch.from_numpy(marker_photo()).float()[None] / 255.0
    result = preparer.prepare(comfy)
    np.testing.assert_allclose(result.arcface, marker_result.arcface, rtol=1e-5, atol=1e-6)


def test_corrupt_file_raises_image_load_error(preparer, tmp_path):
    path = tmp_path / "corrupt.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ImageLoadError, match="corrupt.png"):
        preparer.prepare(path)


@pytest.fixture(scope="module")
def fallback_kit(kit, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fallback_models")
    os.symlink(kit / "antelopev2", folder / "antelopev2")
    os.symlink(kit / "parsing_bisenet.pth", folder / "parsing_bisenet.pth")
    write_tiny_retinaface(folder / "detection_Resnet50_Final.pth", seed=0, always_fires=True)
    return folder


def test_retinaface_fallback_is_used_and_reported_when_insightface_misses(fallback_kit):
    preparer = FacePreparer(fallback_kit)
    result = preparer.prepare(np.full((256, 256, 3), 128, np.uint8))
    assert result.method == "retinaface" and result.num_faces == 0
    assert result.warnings[:2] == ("insightface found no face",
                                   "used RetinaFace landmarks (centre face); ArcFace computed on the aligned crop")
    np.testing.assert_allclose(result.arcface, preparer.detector.embed_crop(result.aligned_crop))
    assert np.abs(transform_points(result.align_matrix, result.landmarks5) - arcface_template()).max() < 1.0


def test_whole_image_fallback_only_when_allowed_and_reported(kit, tmp_path, caplog):
    os.symlink(kit / "antelopev2", tmp_path / "antelopev2")  # no RetinaFace: that fallback is off
    os.symlink(kit / "parsing_bisenet.pth", tmp_path / "parsing_bisenet.pth")
    preparer = FacePreparer(tmp_path, allow_no_face=True)
    blank = np.full((300, 400, 3), 200, np.uint8)
    with caplog.at_level("WARNING"):
        result = preparer.prepare(blank)
    assert result.method == "whole_image" and result.bbox is None and result.landmarks5 is None
    assert any("whole photo resized to 512x512" in w for w in result.warnings)
    assert any("RetinaFace fallback unavailable" in w for w in result.warnings)
    assert "whole photo resized" in caplog.text
    np.testing.assert_array_equal(result.aligned_crop, np.full((512, 512, 3), 200, np.uint8))
    np.testing.assert_allclose(result.arcface, preparer.detector.embed_crop(result.aligned_crop))


def test_missing_models_error_names_the_folders_and_files(tmp_path):
    with pytest.raises(FaceModelsMissingError, match=r"antelopev2.*scrfd_10g_bnkps.onnx, glintr100.onnx"):
        FacePreparer(tmp_path)
    (tmp_path / "antelopev2").mkdir()
    for name in ("scrfd_10g_bnkps.onnx", "glintr100.onnx"):
        (tmp_path / "antelopev2" / name).write_bytes(b"")
    with pytest.raises(FaceModelsMissingError, match="parsing_bisenet.pth"):
        FacePreparer(tmp_path)


def test_mistakenly_nested_antelopev2_folder_is_accepted(kit, tmp_path):
    os.makedirs(tmp_path / "antelopev2")
    os.symlink(kit / "antelopev2", tmp_path / "antelopev2" / "antelopev2")
    os.symlink(kit / "parsing_bisenet.pth", tmp_path / "parsing_bisenet.pth")
    paths = find_face_models(tmp_path)
    assert paths.antelopev2 == tmp_path / "antelopev2" / "antelopev2" and paths.retinaface is None


def test_prepare_many_weights_by_score_and_flags_another_person(preparer):
    same = [marker_photo(((7, 10, MAGENTA),)), marker_photo(((5, 6, MAGENTA),))]
    other = marker_photo(((9, 9, BLUISH),), background=230)  # another marker and surroundings: another "person"
    combined = preparer.prepare_many([*same, other])
    scores = np.array([r.det_score for r in combined.per_photo])
    np.testing.assert_allclose(combined.weights, scores / scores.sum())
    expected = (combined.weights[:, None] * np.stack([r.arcface for r in combined.per_photo])).sum(0)
    np.testing.assert_allclose(combined.face.arcface, expected, rtol=1e-5)
    best = int(np.argmax(scores))
    np.testing.assert_array_equal(combined.face.identity_image, combined.per_photo[best].identity_image)
    assert combined.similarity_to_others[2] < combined.similarity_to_others[:2].min()
    assert combined.spread == pytest.approx(combined.similarity_to_others.max() - combined.similarity_to_others.min())
    assert combined.similarity_to_others[2] < 0.3 and "photo 2 looks like a different person" in combined.warnings[-1]
    print("similarity_to_others", np.round(combined.similarity_to_others, 3), "spread", round(combined.spread, 3))
    with pytest.raises(ValueError, match="at least one photo"):
        prepare_many(preparer, [])


def test_debug_picture_shows_photo_aligned_parsing_and_result_side_by_side(marker_result):
    picture = debug_picture(marker_result)
    assert picture.shape == (512, 2048, 3) and picture.dtype == np.uint8
    # panel 4 is the identity image, apart from its caption at the bottom
    np.testing.assert_array_equal(picture[:480, 1536:], marker_result.identity_image[:480])
    # panel 1: the box (yellow) is drawn around the detected face, scaled by 512 / 640
    x1, y1 = (marker_result.bbox[:2] * 0.8).round().astype(int)
    np.testing.assert_array_equal(picture[y1 + 5, x1], [255, 255, 0])


def test_unconditional_pair_is_a_black_image_and_a_zero_arcface():
    from echovideo_core.face import unconditional_face

    image, arcface = unconditional_face()
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8 and not image.any()
    assert arcface.shape == (512,) and arcface.dtype == np.float32 and not arcface.any()


def test_siglip_encoder_is_re_exported_from_the_face_package():
    import echovideo_core.face
    import echovideo_core.face_features

    assert echovideo_core.face.encode_siglip is echovideo_core.face_features.encode_siglip


def test_models_in_separate_folders_prepare_the_same_face(kit, tmp_path, marker_result):
    """ComfyUI keeps antelopev2 and the parser apart: from_paths gives the same result."""
    shutil.copytree(kit / "antelopev2", tmp_path / "insightface" / "antelopev2")
    (tmp_path / "facexlib").mkdir()
    shutil.copy(kit / "parsing_bisenet.pth", tmp_path / "facexlib" / "parsing_bisenet.pth")
    split = FacePreparer.from_paths(tmp_path / "insightface" / "antelopev2", tmp_path / "facexlib" / "parsing_bisenet.pth")
    result = split.prepare(marker_photo())
    assert split.retinaface is None
    assert np.array_equal(result.identity_image, marker_result.identity_image)
    assert np.array_equal(result.arcface, marker_result.arcface)
