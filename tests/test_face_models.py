"""Our BiSeNet parser and RetinaFace detector load the released key layouts strictly."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from echovideo_core.face.align import align_face, arcface_template, transform_points
from echovideo_core.face.bisenet import load_parser, parse_face
from echovideo_core.face.errors import FaceModelsMissingError, FaceWeightsMismatchError
from echovideo_core.face.retinaface import (
    centre_face, decode_boxes, decode_landmarks, detect_retinaface, load_retinaface, nms, prior_boxes,
)
from echovideo_core.testing.tiny_face_models import MARKER_LAYOUT, write_tiny_parser, write_tiny_retinaface


@pytest.fixture(scope="module")
def parser_file(tmp_path_factory):
    return write_tiny_parser(tmp_path_factory.mktemp("parser") / "parsing_bisenet.pth", seed=1)


@pytest.fixture(scope="module")
def retinaface_file(tmp_path_factory):
    return write_tiny_retinaface(tmp_path_factory.mktemp("retina") / "detection_Resnet50_Final.pth", seed=2)


def test_tiny_parser_file_has_facexlib_key_names_and_shapes(parser_file):
    state = torch.load(parser_file, weights_only=True)
    assert state["cp.resnet.conv1.weight"].shape == (64, 3, 7, 7)
    assert state["cp.resnet.layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert state["cp.arm32.conv_atten.weight"].shape == (128, 128, 1, 1)
    assert state["ffm.convblk.conv.weight"].shape == (256, 256, 1, 1)
    assert state["conv_out.conv_out.weight"].shape == (19, 256, 1, 1)
    assert state["conv_out16.conv_out.weight"].shape == (19, 64, 1, 1)


def test_parser_loads_strictly_and_returns_a_512_class_map(parser_file):
    parser = load_parser(parser_file)
    crop = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    parsing = parse_face(parser, crop)
    assert parsing.shape == (512, 512) and parsing.dtype == np.int64
    assert parsing.min() >= 0 and parsing.max() < 19


def test_parser_loads_a_safetensors_copy_identically(parser_file, tmp_path):
    state = torch.load(parser_file, weights_only=True)
    copy = tmp_path / "parsing_bisenet.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(copy))
    from_pth, from_safetensors = load_parser(parser_file).state_dict(), load_parser(copy).state_dict()
    assert from_pth.keys() == from_safetensors.keys()
    for key, value in from_pth.items():
        assert torch.equal(value, from_safetensors[key]), key


def test_parser_with_a_missing_key_names_it(parser_file, tmp_path):
    state = torch.load(parser_file, weights_only=True)
    del state["ffm.conv1.weight"]
    broken = tmp_path / "broken.pth"
    torch.save(state, broken)
    with pytest.raises(FaceWeightsMismatchError, match="missing 1: ffm.conv1.weight"):
        load_parser(broken)


def test_module_prefix_from_data_parallel_is_accepted(parser_file, tmp_path):
    state = torch.load(parser_file, weights_only=True)
    prefixed = tmp_path / "prefixed.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, prefixed)
    load_parser(prefixed)


def test_pickled_objects_are_refused_by_the_weights_only_loader(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"weights": torch.zeros(1), "extra": object()}, path)
    with pytest.raises(FaceWeightsMismatchError, match="weights-only"):
        load_parser(path)


def test_missing_weight_file_names_the_path(tmp_path):
    with pytest.raises(FaceModelsMissingError, match="parsing_bisenet.pth"):
        load_parser(tmp_path / "parsing_bisenet.pth")


def test_tiny_retinaface_file_has_the_released_key_names_and_shapes(retinaface_file):
    state = torch.load(retinaface_file, weights_only=True)
    assert state["body.conv1.weight"].shape == (64, 3, 7, 7)
    assert state["body.layer4.2.conv3.weight"].shape == (2048, 512, 1, 1)
    assert state["fpn.output3.0.weight"].shape == (256, 2048, 1, 1)
    assert state["ssh2.conv7x7_3.0.weight"].shape == (64, 64, 3, 3)
    assert state["ClassHead.0.conv1x1.weight"].shape == (4, 256, 1, 1)
    assert state["BboxHead.1.conv1x1.weight"].shape == (8, 256, 1, 1)
    assert state["LandmarkHead.2.conv1x1.bias"].shape == (20,)
    assert not any(k.startswith("body.fc") for k in state)


def test_retinaface_runs_end_to_end_with_well_formed_outputs(retinaface_file):
    model = load_retinaface(retinaface_file)
    height, width = 70, 90  # not multiples of 32: prior count must still match the heads
    x = torch.randn(1, 3, height, width) * 50
    with torch.no_grad():
        loc, scores, landmarks = model(x)
    count = len(prior_boxes(height, width))
    assert loc.shape == (1, count, 4) and scores.shape == (1, count) and landmarks.shape == (1, count, 10)
    assert torch.isfinite(loc).all() and torch.isfinite(landmarks).all()
    assert (scores >= 0).all() and (scores <= 1).all()
    photo = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    assert detect_retinaface(model, photo) == []  # the default tiny heads never fire


def test_prior_boxes_follow_the_released_order():
    priors = prior_boxes(64, 96)
    assert len(priors) == 2 * (8 * 12 + 4 * 6 + 2 * 3)
    np.testing.assert_allclose(priors[0], [4 / 96, 4 / 64, 16 / 96, 16 / 64])
    np.testing.assert_allclose(priors[1], [4 / 96, 4 / 64, 32 / 96, 32 / 64])
    np.testing.assert_allclose(priors[2], [12 / 96, 4 / 64, 16 / 96, 16 / 64])  # next column
    np.testing.assert_allclose(priors[-1], [80 / 96, 48 / 64, 512 / 96, 512 / 64])


def test_decoding_is_hand_computable():
    priors = np.array([[0.5, 0.5, 0.2, 0.4]])
    box = decode_boxes(np.array([[1.0, -1.0, 0.0, np.log(2.0) / 0.2]]), priors)
    # centre moves by 0.1 * size, width stays 0.2, height doubles to 0.8
    np.testing.assert_allclose(box, [[0.42, 0.06, 0.62, 0.86]], atol=1e-9)
    points = decode_landmarks(np.arange(10, dtype=np.float64)[None], priors)
    np.testing.assert_allclose(points[0, 1], [0.5 + 2 * 0.1 * 0.2, 0.5 + 3 * 0.1 * 0.4])


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=np.float64)
    assert nms(boxes, np.array([0.8, 0.9, 0.7]), 0.4) == [1, 2]


def test_always_firing_heads_give_centre_face_with_template_layout(tmp_path):
    model = load_retinaface(write_tiny_retinaface(tmp_path / "fires.pth", seed=3, always_fires=True))
    photo = np.full((256, 256, 3), 128, np.uint8)
    detections = detect_retinaface(model, photo)
    assert detections and all(d.score > 0.99 for d in detections)
    face = centre_face(detections, 256, 256)
    centre = (face.bbox[:2] + face.bbox[2:]) / 2
    np.testing.assert_allclose(face.bbox[2:] - face.bbox[:2], [256, 256], atol=1e-6)
    np.testing.assert_allclose(face.landmarks5, centre + MARKER_LAYOUT * 128, atol=1e-4)
    _, matrix = align_face(photo, face.landmarks5)
    assert np.abs(transform_points(matrix, face.landmarks5) - arcface_template()).max() < 1.0
