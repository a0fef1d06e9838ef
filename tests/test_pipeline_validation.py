"""Every invalid generation argument gets its own error, raised before any model runs."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from echovideo_core import EchoVideoPipeline
from echovideo_core.errors import InvalidInputError
from echovideo_core.validation import check_num_frames
from pipeline_kit import TINY_CALL, tiny_inputs, tiny_model_dir


@pytest.fixture(scope="module")
def pipe():
    return EchoVideoPipeline.from_pretrained(tiny_model_dir())


@pytest.fixture(scope="module")
def face():
    return tiny_inputs(64)


def call(pipe, face, **kwargs):
    image, arcface = kwargs.pop("face_image", face[0]), kwargs.pop("arcface_embedding", face[1])
    return pipe(image, arcface, **{**TINY_CALL, **kwargs}, generator=torch.Generator().manual_seed(0),
                output_type="latent")


def test_frames_must_be_4k_plus_1(pipe, face):
    with pytest.raises(InvalidInputError, match=r"num_frames must be 4k\+1 .* got 10; nearest valid values: 9 or 13"):
        call(pipe, face, num_frames=10)


def test_frames_must_be_positive(pipe, face):
    with pytest.raises(InvalidInputError, match="num_frames must be a positive integer"):
        call(pipe, face, num_frames=0)


def test_frames_above_49_need_allow_long_video(pipe, face):
    with pytest.raises(InvalidInputError, match="at most 49 .* allow_long_video=True"):
        call(pipe, face, num_frames=53)


def test_allow_long_video_accepts_more_frames_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="echovideo_core.validation"):
        check_num_frames(57, allow_long_video=True)
    assert "beyond the trained 49 frames" in caplog.text


def test_even_latent_frame_count_warns_about_extra_frames(caplog):
    with caplog.at_level(logging.WARNING, logger="echovideo_core.validation"):
        check_num_frames(13)
    assert "decodes 16 frames, not 13" in caplog.text


def test_height_must_be_multiple_of_16(pipe, face):
    with pytest.raises(InvalidInputError, match="height must be a multiple of 16, got 72"):
        call(pipe, face, height=72)


def test_width_must_be_multiple_of_16(pipe, face):
    with pytest.raises(InvalidInputError, match="width must be a multiple of 16, got 100"):
        call(pipe, face, width=100)


def test_steps_must_be_at_least_one(pipe, face):
    with pytest.raises(InvalidInputError, match="num_inference_steps must be an integer from 1 to 1000 .* got 0"):
        call(pipe, face, num_inference_steps=0)


def test_face_image_must_be_uint8(pipe, face):
    with pytest.raises(InvalidInputError, match="face_image must be uint8 .* got dtype float32"):
        call(pipe, face, face_image=face[0].astype(np.float32))


def test_face_image_must_be_hwc(pipe, face):
    with pytest.raises(InvalidInputError, match=r"face_image must have shape \(H, W, 3\), got \(64, 64\)"):
        call(pipe, face, face_image=face[0][..., 0])


def test_face_image_must_have_3_channels(pipe, face):
    rgba = np.concatenate([face[0], face[0][..., :1]], axis=2)
    with pytest.raises(InvalidInputError, match="3 RGB channels .* got 4 channels"):
        call(pipe, face, face_image=rgba)


def test_face_image_must_be_an_array(pipe, face):
    with pytest.raises(InvalidInputError, match="face_image must be an .* numpy array, got list"):
        call(pipe, face, face_image=face[0].tolist())


def test_arcface_must_have_512_values(pipe, face):
    with pytest.raises(InvalidInputError, match=r"arcface_embedding must have shape \(512,\) or \(1, 512\), got \(1, 128\)"):
        call(pipe, face, arcface_embedding=np.zeros((1, 128), np.float32))


def test_steps_beyond_the_schedulers_training_timesteps_are_rejected(pipe, face):
    with pytest.raises(InvalidInputError, match="from 1 to 1000 .* got 1001"):
        call(pipe, face, num_inference_steps=1001)


def test_an_empty_face_image_is_rejected(pipe, face):
    with pytest.raises(InvalidInputError, match=r"face_image is empty: shape \(0, 0, 3\)"):
        call(pipe, face, face_image=np.zeros((0, 0, 3), np.uint8))


def test_a_seed_in_place_of_a_generator_is_named(pipe, face):
    with pytest.raises(InvalidInputError, match="generator must be a torch.Generator or None, got int"):
        pipe(face[0], face[1], **TINY_CALL, generator=42, output_type="latent")


def test_an_arcface_vector_of_strings_is_rejected(pipe, face):
    with pytest.raises(InvalidInputError, match="arcface_embedding must hold real numbers"):
        call(pipe, face, arcface_embedding=np.array(["0.5"] * 512))


def test_an_invalid_transformer_config_names_the_file(tmp_path):
    import shutil

    from echovideo_core import load_transformer
    from echovideo_core.errors import CheckpointMismatchError

    folder = shutil.copytree(tiny_model_dir() / "transformer", tmp_path / "transformer")
    (folder / "config.json").write_text("{ not json")
    with pytest.raises(CheckpointMismatchError, match=r"transformer/config.json is not a valid JSON file"):
        load_transformer(folder)


def test_a_warning_about_the_settings_is_logged_once_per_call(pipe, face, caplog):
    with caplog.at_level(logging.WARNING):
        call(pipe, face, num_frames=5, num_inference_steps=1)
    assert caplog.text.count("gives an even latent frame count") == 1


def test_unknown_mode_is_rejected(pipe, face):
    with pytest.raises(InvalidInputError, match="mode must be one of"):
        call(pipe, face, mode="fast")


def test_negative_guidance_is_rejected(pipe, face):
    with pytest.raises(InvalidInputError, match="guidance_scale must be a finite number >= 0"):
        call(pipe, face, guidance_scale=-1.0)


def test_channels_first_face_image_is_named(pipe, face):
    with pytest.raises(InvalidInputError, match=r"looks channels-first \(3, 64, 64\)"):
        call(pipe, face, face_image=face[0].transpose(2, 0, 1).copy())


def test_a_sampling_only_pipeline_says_which_encoder_it_lacks(case_dir, tiny_transformer):
    from echovideo_core import EchoVideoPipeline
    from echovideo_core.errors import MissingModelFilesError

    full = EchoVideoPipeline.from_pretrained(case_dir / "pipeline", transformer=tiny_transformer)
    bare = EchoVideoPipeline(transformer=full.transformer, vae=full.vae, text_encoder=None, tokenizer=None,
                             scheduler=full.scheduler, siglip=None)
    with pytest.raises(MissingModelFilesError, match="has no text_encoder, tokenizer"):
        bare.encode_prompt("a person smiles")
    with pytest.raises(MissingModelFilesError, match="has no siglip"):
        bare.face_features(np.zeros((64, 64, 3), np.uint8), np.zeros(512, np.float32))


def test_prompt_longer_than_226_tokens_is_cut_with_a_warning(case_dir, caplog):
    from echovideo_core.loading.text_encoder import load_tokenizer
    from echovideo_core.text import MAX_SEQUENCE_LENGTH, tokenize

    tokenizer = load_tokenizer(case_dir / "pipeline" / "tokenizer")
    long_prompt = " ".join(["a woman smiles and waves at the camera"] * 60)
    with caplog.at_level(logging.WARNING):
        ids, truncated = tokenize(tokenizer, [long_prompt])
    assert truncated and ids.shape == (1, MAX_SEQUENCE_LENGTH)
    assert ids[0, -1].item() == tokenizer.eos_token_id  # the cut keeps the end-of-sequence token
    assert "only the first 226 are used" in caplog.text


def test_prompt_within_226_tokens_is_not_reported_as_cut(case_dir, caplog):
    from echovideo_core.loading.text_encoder import load_tokenizer
    from echovideo_core.text import tokenize

    tokenizer = load_tokenizer(case_dir / "pipeline" / "tokenizer")
    with caplog.at_level(logging.WARNING):
        _, truncated = tokenize(tokenizer, ["a woman smiles"])
    assert not truncated and "only the first" not in caplog.text
