"""Alignment onto the 512 ArcFace template (docs/design.md 5.3): hand-computed and real photos."""
from __future__ import annotations

from pathlib import Path

import cv2
import insightface
import numpy as np
import pytest
from skimage import data
from skimage.feature import Cascade

from echovideo_core.face.align import align_face, arcface_template, similarity_to_template, transform_points

SAMPLES = Path(insightface.__file__).parent / "data" / "images"


def similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def invert(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(matrix)


def photo_points_for(matrix_photo_to_aligned: np.ndarray) -> np.ndarray:
    """Landmarks in a photo that `matrix` maps exactly onto the template."""
    return transform_points(invert(matrix_photo_to_aligned), arcface_template())


def test_template_is_the_96x112_arcface_template_scaled_to_512():
    template = arcface_template()
    assert template[0] == pytest.approx([30.2946 * 512 / 96, 51.6963 * 512 / 112])
    assert template[4] == pytest.approx([62.7299 * 512 / 96, 92.2041 * 512 / 112])


def test_hand_computed_similarity_is_recovered_and_points_land_within_1px():
    truth = similarity(angle_deg=20.0, scale=0.4, tx=-30.0, ty=85.0)
    landmarks = photo_points_for(truth)
    aligned, matrix = align_face(np.zeros((600, 800, 3), np.uint8), landmarks)
    assert aligned.shape == (512, 512, 3) and aligned.dtype == np.uint8
    np.testing.assert_allclose(matrix, truth, atol=1e-4)
    assert np.abs(transform_points(matrix, landmarks) - arcface_template()).max() < 1.0


def test_aligned_pixels_follow_the_matrix_direction():
    # five coloured dots in a photo must appear at the template positions in the crop
    aligned_to_photo = similarity(angle_deg=-35.0, scale=1.6, tx=0.0, ty=0.0)
    aligned_to_photo[:, 2] = [400.0, 420.0] - aligned_to_photo[:, :2] @ [256.0, 330.0]
    landmarks = transform_points(aligned_to_photo, arcface_template())
    photo = np.zeros((800, 800, 3), np.uint8)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    for (x, y), colour in zip(landmarks, colours):
        cv2.circle(photo, (round(x), round(y)), 6, colour, -1)
    aligned, _ = align_face(photo, landmarks)
    for (tx, ty), colour in zip(arcface_template(), colours):
        ys, xs = np.nonzero(np.all(aligned == colour, axis=-1))
        assert xs.size > 0, f"dot {colour} missing in the aligned crop"
        assert np.hypot(xs.mean() - tx, ys.mean() - ty) < 1.5


def _astronaut_landmarks() -> np.ndarray:
    """Eyes from an offline detector (LBP face cascade + darkest pupil), the other three
    points from the template's similarity fixed by the eyes."""
    photo = data.astronaut()
    cascade = Cascade(data.lbp_frontal_face_cascade_filename())
    (box,) = cascade.detect_multi_scale(img=photo, scale_factor=1.2, step_ratio=1, min_size=(60, 60), max_size=(300, 300))
    r, c, w, h = box["r"], box["c"], box["width"], box["height"]
    grey = cv2.GaussianBlur(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(np.float32), (5, 5), 0)

    def darkest(x0, x1):
        # below the brow line and inside the cheeks: the box's top corners can hold hair
        y0, y1 = r + int(0.3 * h), r + int(0.5 * h)
        iy, ix = np.unravel_index(np.argmin(grey[y0:y1, x0:x1]), (y1 - y0, x1 - x0))
        return np.array([x0 + ix, y0 + iy], dtype=np.float64)

    eyes = np.stack([darkest(c + int(0.15 * w), c + int(0.5 * w)), darkest(c + int(0.5 * w), c + int(0.85 * w))])
    template_to_photo, _ = cv2.estimateAffinePartial2D(arcface_template()[:2], eyes)
    return transform_points(template_to_photo, arcface_template())


def test_astronaut_landmarks_land_on_the_template_within_1px():
    landmarks = _astronaut_landmarks()
    _, matrix = align_face(data.astronaut(), landmarks)
    assert np.abs(transform_points(matrix, landmarks) - arcface_template()).max() < 1.0


def test_astronaut_pupils_are_at_the_template_eyes_after_alignment():
    aligned, _ = align_face(data.astronaut(), _astronaut_landmarks())
    grey = cv2.GaussianBlur(cv2.cvtColor(aligned, cv2.COLOR_RGB2GRAY).astype(np.float32), (9, 9), 0)
    for tx, ty in arcface_template()[:2]:
        x0, y0 = int(tx) - 30, int(ty) - 30
        iy, ix = np.unravel_index(np.argmin(grey[y0 : y0 + 60, x0 : x0 + 60]), (60, 60))
        assert np.hypot(x0 + ix - tx, y0 + iy - ty) < 8.0


def test_insightface_sample_aligned_crop_is_still_a_centred_face():
    # Tom_Hanks_54745.png is a 112x112 ArcFace crop: its landmarks are the 112 template
    # (the 96x112 one shifted 8 px right); re-aligned to 512 the face must stay centred.
    photo = cv2.cvtColor(cv2.imread(str(SAMPLES / "Tom_Hanks_54745.png")), cv2.COLOR_BGR2RGB)
    landmarks = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                          [41.5493, 92.3655], [70.7299, 92.2041]])
    aligned, matrix = align_face(photo, landmarks)
    residual = np.abs(transform_points(matrix, landmarks) - arcface_template()).max()
    assert residual < 40.0  # the 512 template is stretched (x*512/96, y*512/112): no exact fit
    cascade = Cascade(data.lbp_frontal_face_cascade_filename())
    faces = cascade.detect_multi_scale(img=aligned, scale_factor=1.2, step_ratio=1, min_size=(150, 150), max_size=(512, 512))
    assert faces, "no face found by the LBP cascade in the aligned crop"
    centre_x = max(faces, key=lambda f: f["width"])["c"] + max(faces, key=lambda f: f["width"])["width"] / 2
    assert abs(centre_x - 256) < 40


def test_lmeds_alignment_is_deterministic():
    landmarks = _astronaut_landmarks() + np.random.default_rng(0).normal(0, 2.0, (5, 2))
    first = align_face(data.astronaut(), landmarks)
    second = align_face(data.astronaut(), landmarks)
    np.testing.assert_array_equal(first[1], second[1])
    np.testing.assert_array_equal(first[0], second[0])


def test_degenerate_landmarks_raise_a_clear_error():
    with pytest.raises(ValueError, match="degenerate"):
        similarity_to_template(np.full((5, 2), 10.0))
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        similarity_to_template(np.zeros((4, 2)))


def test_align_face_rejects_non_uint8_rgb():
    with pytest.raises(ValueError, match="uint8"):
        align_face(np.zeros((64, 64, 3), np.float32), photo_points_for(similarity(0, 0.1, 0, 0)))
