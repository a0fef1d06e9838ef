"""The evaluation metrics on constructed data with known answers (issue 15, "How it is checked").

Faces come from the tiny SCRFD marker detector and the tiny ArcFace (see
echovideo_core/testing/tiny_metric_models.py: a magenta cell inside a pattern of coloured
blocks; the pattern's seed plays the identity)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from echovideo_core.evaluation.clip_score import clip_cosines, clip_score, load_clip
from echovideo_core.evaluation.copy_paste import face_mask, masked_ssim, pose_spread
from echovideo_core.evaluation.curricularface import IRBackbone, load_curricularface, units_in
from echovideo_core.evaluation.evaluate import evaluate_video
from echovideo_core.evaluation.frame_faces import reference_from_face_result
from echovideo_core.evaluation.frechet import frechet_distance
from echovideo_core.evaluation.identity import identity_average, identity_variation
from echovideo_core.evaluation.inception import FIDInceptionV3, inception_features, load_fid_inception
from echovideo_core.evaluation.models import MetricModels, find_metric_weights
from echovideo_core.evaluation.motion import MOVING_PIXELS, dynamic_degree
from echovideo_core.evaluation.sampling import evenly_spaced_indices
from echovideo_core.face.align import arcface_template
from echovideo_core.face.errors import FaceWeightsMismatchError
from echovideo_core.testing.tiny_metric_models import marker_face
from eval_fixtures import face_models_dir, full_models_dir, preparer, reference_photo  # noqa: F401 (fixtures)

pytestmark = pytest.mark.filterwarnings("ignore:.*estimate.*deprecated:FutureWarning")


@pytest.fixture(scope="module")
def reference(preparer, reference_photo):
    return reference_from_face_result(preparer.prepare(reference_photo))


def evaluate(preparer, reference, frames, **options):
    return evaluate_video(np.stack(frames), reference, MetricModels(detector=preparer.detector), **options)


def test_default_scoring_uses_32_evenly_spaced_frames_first_and_last_included():
    indices = evenly_spaced_indices(49)
    assert len(indices) == 32 and indices[0] == 0 and indices[-1] == 48
    assert np.ptp(np.diff(indices)) <= 1
    assert list(evenly_spaced_indices(9)) == list(range(9))


def test_identical_frames_give_similarity_1_and_variation_0(preparer, reference, reference_photo):
    result = evaluate(preparer, reference, [reference_photo] * 3)
    assert result.facesim_arc == pytest.approx(1.0, abs=1e-6) and result.identity_average == result.facesim_arc
    assert result.identity_variation == pytest.approx(0.0, abs=1e-6)
    assert result.frames_scored == 3 and result.frames_missed == 0


def test_a_face_free_frame_is_a_miss_not_a_zero_similarity(preparer, reference, reference_photo):
    blank = np.full_like(reference_photo, 128)
    result = evaluate(preparer, reference, [reference_photo, blank, reference_photo])
    assert (result.frames_scored, result.frames_missed) == (2, 1)
    miss = result.per_frame[1]
    assert not miss.face and miss.facesim_arc is None and miss.ssim is None
    assert result.facesim_arc == pytest.approx(1.0, abs=1e-6)  # a zero would have pulled it to 0.67
    assert any("1 of 3 scored frames had no face" in note for note in result.notes)


def test_a_video_without_any_face_has_null_face_metrics_and_says_so(preparer, reference, reference_photo):
    result = evaluate(preparer, reference, [np.full_like(reference_photo, 128)] * 2)
    assert result.facesim_arc is None and result.identity_variation is None and result.pose_spread is None
    assert result.frames_missed == 2 and any("no face found" in note for note in result.notes)


def test_a_shuffled_identity_lowers_the_score(preparer, reference, reference_photo):
    same = evaluate(preparer, reference, [reference_photo, marker_face(identity=0, cell=(12, 4))])
    other = evaluate(preparer, reference, [marker_face(identity=1), marker_face(identity=2, cell=(12, 4))])
    assert same.facesim_arc > 0.99 and other.facesim_arc < same.facesim_arc - 0.1


def test_identity_variation_is_the_standard_deviation_of_the_scored_frames():
    similarities = [0.4, None, 0.6, 0.5]
    assert identity_average(similarities) == pytest.approx(0.5)
    assert identity_variation(similarities) == pytest.approx(np.std([0.4, 0.6, 0.5]))


def test_a_pasted_face_has_ssim_1_and_a_moving_face_does_not(reference, reference_photo, preparer):
    mask = face_mask(reference.identity_image)
    assert masked_ssim(reference.identity_image, reference.aligned_crop, mask) == pytest.approx(1.0)
    other = reference_from_face_result(preparer.prepare(marker_face(identity=3)))
    assert masked_ssim(reference.identity_image, other.aligned_crop, mask) < 0.95


def test_pose_spread_is_0_for_one_pose_at_any_place_and_size_and_grows_when_the_head_turns():
    template = arcface_template(112)
    still = [template, template * 1.7 + 40.0]
    assert pose_spread(still) == pytest.approx(0.0, abs=1e-12)
    angle = np.radians(20)
    rotated = (template - template.mean(0)) @ np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    smiling = template.copy()
    smiling[3:, 0] += np.array([-6.0, 6.0])
    assert pose_spread([template, rotated]) > 0.1 and pose_spread([template, smiling]) > 0.05


def test_frechet_distance_of_a_set_against_itself_is_zero_and_matches_the_sqrtm_formula():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 6)), rng.normal(1.0, 2.0, size=(30, 6))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(cov_a + cov_b - 2 * scipy.linalg.sqrtm(cov_a @ cov_b).real)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_fid_inception_has_the_pt_inception_key_names_and_shapes():
    state = FIDInceptionV3().state_dict()
    expected = {"Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3), "Conv2d_4a_3x3.bn.running_var": (192,),
                "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1), "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
                "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7), "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
                "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1), "fc.weight": (1008, 2048)}
    assert {key: tuple(state[key].shape) for key in expected} == expected
    assert not any(key.startswith("AuxLogits") for key in state)


def test_fid_of_a_set_of_face_crops_against_itself_is_zero_within_rounding(full_models_dir):
    model = load_fid_inception(full_models_dir / "pt_inception-2015-12-05-6726825d.pth")
    crops = [marker_face(identity=i, size=(128, 128)) for i in range(3)]
    features = inception_features(model, crops)
    scale = frechet_distance(features[:1], features[1:])
    assert scale > 1.0 and frechet_distance(features, features) <= 1e-9 * scale


def test_clip_score_matches_transformers_clip_cosine(full_models_dir, reference_photo):
    scorer = load_clip(full_models_dir / "clip")
    frames = [reference_photo, marker_face(identity=4, size=(96, 64))]
    prompt = "a woman smiles and waves, then turns her head"
    ours = clip_cosines(scorer, frames, prompt)
    inputs = scorer.tokenizer([prompt], return_tensors="pt", padding=True)
    pixels = scorer.processor(images=frames, return_tensors="pt").pixel_values
    with torch.no_grad():
        out = scorer.model(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask, pixel_values=pixels)
    expected = (out.logits_per_image[:, 0] / scorer.model.logit_scale.exp()).double().numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
    assert clip_score(ours) == pytest.approx(100 * np.clip(expected, 0, None).mean(), rel=1e-5)


def test_curricularface_depth_is_read_from_the_keys_and_a_wrong_layout_is_refused(full_models_dir, tmp_path):
    model = load_curricularface(full_models_dir / "CurricularFace_Backbone.pth")
    assert units_in(model.state_dict()) == (1, 1, 1, 1)
    assert units_in(IRBackbone().state_dict()) == (3, 13, 30, 3)  # IR-101, the released depth
    wrong = tmp_path / "CurricularFace_Backbone.pth"
    torch.save({"conv.weight": torch.zeros(64, 3, 3, 3)}, wrong)
    with pytest.raises(FaceWeightsMismatchError, match="not an IR backbone"):
        load_curricularface(wrong)


def _textured_frames(shift: int, count: int) -> np.ndarray:
    """A blurred-noise texture (detail for the flow to follow) moving `shift` px left per frame."""
    import cv2

    grey = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (256, 512)).astype(np.uint8), (0, 0), 2)
    texture = np.repeat(grey[..., None], 3, axis=2)
    return np.stack([texture[:, i * shift : i * shift + 256] for i in range(count)])


def test_dynamic_degree_is_0_for_a_still_video_and_1_for_a_known_shift_measured_by_farneback():
    still = dynamic_degree(_textured_frames(0, 9), fps=8.0)
    assert still.dynamic_degree == 0.0 and still.motion < 0.5
    moving = dynamic_degree(_textured_frames(10, 9), fps=8.0)  # 10 px per frame at a 256 px short side
    assert moving.dynamic_degree == 1.0 and moving.motion > MOVING_PIXELS
    assert moving.motion == pytest.approx(10.0, rel=0.15)


def test_a_missing_weight_file_switches_its_metric_off_with_a_note_naming_the_file(face_models_dir):
    weights = find_metric_weights(face_models_dir)
    assert weights.curricularface is weights.inception is weights.clip is None
    notes = " ".join(weights.notes)
    for name in ("CurricularFace_Backbone.pth", "pt_inception-2015-12-05-6726825d.pth", str(face_models_dir / "clip")):
        assert name in notes
