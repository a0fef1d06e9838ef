"""Properties of EchoVideoPipeline on the tiny random-weight kit: no state between calls,
fusion once per run, the numeric modes, stages that run alone, loading contracts."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from echovideo_core import EchoVideoPipeline
from echovideo_core.errors import MissingModelFilesError
from echovideo_core.loading import load_transformer
from pipeline_kit import TINY_CALL, tiny_inputs, tiny_model_dir


@pytest.fixture(scope="module")
def pipe():
    return EchoVideoPipeline.from_pretrained(tiny_model_dir())


@pytest.fixture(scope="module")
def face():
    return tiny_inputs()


def generate(pipe, face, seed=0, **kwargs):
    image, arcface = face
    return pipe(image, arcface, **{**TINY_CALL, **kwargs}, generator=torch.Generator().manual_seed(seed))


def test_fusion_is_computed_once_per_run(pipe, face):
    calls = []
    handle = pipe.transformer.face_prj_wofc.register_forward_hook(lambda *args: calls.append(1))
    try:
        generate(pipe, face, output_type="latent")
    finally:
        handle.remove()
    assert len(calls) == 1


def test_same_seed_twice_gives_identical_latents(pipe, face):
    first = generate(pipe, face, seed=3)
    second = generate(pipe, face, seed=3)
    assert torch.equal(first.latents, second.latents)
    assert np.array_equal(first.frames, second.frames)


def test_different_seeds_give_different_latents(pipe, face):
    assert not torch.equal(generate(pipe, face, seed=1, output_type="latent").latents,
                           generate(pipe, face, seed=2, output_type="latent").latents)


def test_float16_decode_leaves_vae_weights_untouched(pipe, face):
    before = {k: v.clone() for k, v in pipe.vae.state_dict().items()}
    generate(pipe, face, decode_dtype=torch.float16)
    after = pipe.vae.state_dict()
    assert pipe.vae.dtype == torch.float32
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_frames_are_bhwc_floats_in_unit_range(pipe, face):
    out = generate(pipe, face)
    assert out.frames.shape == (1, 9, 64, 64, 3)
    assert out.frames.dtype == np.float32
    assert out.frames.min() >= 0.0 and out.frames.max() <= 1.0
    assert out.latents.shape == (1, 3, 4, 8, 8) and out.latents.dtype == torch.float32


def test_output_type_latent_skips_decode(pipe, face):
    assert generate(pipe, face, output_type="latent").frames is None


def test_output_type_pt_gives_torch_frames(pipe, face):
    assert isinstance(generate(pipe, face, output_type="pt").frames, torch.Tensor)


def test_callback_sees_every_step(pipe, face):
    seen = []
    generate(pipe, face, output_type="latent", callback=lambda step, total, latents: seen.append((step, total)))
    assert seen == [(0, 4), (1, 4), (2, 4), (3, 4)]


def test_callback_exception_interrupts_the_run(pipe, face):
    class Interrupted(BaseException):
        pass

    def stop(step, total, latents):
        raise Interrupted

    with pytest.raises(Interrupted):
        generate(pipe, face, callback=stop)


def test_corrected_mode_changes_the_numbers(pipe, face):
    released = generate(pipe, face, output_type="latent")
    corrected = generate(pipe, face, output_type="latent", mode="corrected")
    assert not torch.equal(released.latents, corrected.latents)
    assert torch.isfinite(corrected.latents).all()


def test_corrected_mode_keeps_arcface_unrounded(pipe, face):
    image, arcface = face
    _, cond = pipe.face_features(image, arcface, mode="corrected")
    _, released = pipe.face_features(image, arcface, mode="as_released")
    assert torch.equal(cond.arcface[0], torch.from_numpy(arcface))
    assert torch.equal(released.arcface[0], torch.from_numpy(arcface).bfloat16().float())


def test_arcface_may_be_numpy_or_torch(pipe, face):
    image, arcface = face
    from_numpy = generate(pipe, (image, arcface), output_type="latent")
    from_torch = generate(pipe, (image, torch.from_numpy(arcface)[None]), output_type="latent")
    assert torch.equal(from_numpy.latents, from_torch.latents)


def test_negative_prompt_none_means_empty(pipe, face):
    none = generate(pipe, face, output_type="latent")
    empty = generate(pipe, face, output_type="latent", negative_prompt="")
    assert torch.equal(none.latents, empty.latents)


def test_guidance_at_most_one_runs_only_the_conditional_branch(pipe, face):
    image, arcface = face
    negative, positive = pipe.encode_prompt("a person smiles")
    uncond, cond = pipe.face_features(image, arcface)
    assert pipe.fuse(negative, positive, uncond, cond, do_cfg=False).tokens.shape[0] == 1
    assert torch.isfinite(generate(pipe, face, output_type="latent", guidance_scale=1.0).latents).all()


def test_long_prompt_is_truncated_with_a_warning(pipe, caplog):
    with caplog.at_level(logging.WARNING, logger="echovideo_core.text"):
        _, positive = pipe.encode_prompt("smile and wave " * 200)
    assert positive.truncated and positive.input_ids.shape == (1, 226)
    assert positive.input_ids[0, -1].item() == 1  # </s> kept at the end
    assert "only the first 226 are used" in caplog.text


def test_given_component_is_used_as_is(pipe):
    transformer = load_transformer(tiny_model_dir() / "transformer")
    again = EchoVideoPipeline.from_pretrained(tiny_model_dir(), transformer=transformer, vae=pipe.vae)
    assert again.transformer is transformer and again.vae is pipe.vae


def test_given_component_need_not_exist_in_the_folder(pipe, tmp_path):
    for name in ("vae", "text_encoder", "tokenizer", "scheduler", "clip_visual_encoder"):
        (tmp_path / name).symlink_to(tiny_model_dir() / name)
    loaded = EchoVideoPipeline.from_pretrained(tmp_path, transformer=pipe.transformer)
    assert loaded.transformer is pipe.transformer


def test_missing_component_folder_is_named(tmp_path):
    with pytest.raises(MissingModelFilesError, match="lacks transformer/, vae/"):
        EchoVideoPipeline.from_pretrained(tmp_path)


def test_vae_switches_do_not_change_small_frames_and_are_restored(pipe, face):
    plain = generate(pipe, face, seed=4, decode_dtype=torch.float32)
    switched = generate(pipe, face, seed=4, decode_dtype=torch.float32, vae_tiling=True, vae_slicing=True)
    assert np.array_equal(plain.frames, switched.frames)
    assert (pipe.vae.use_tiling, pipe.vae.use_slicing) == (False, False)


def test_given_component_keeps_its_dtype(pipe):
    transformer = load_transformer(tiny_model_dir() / "transformer", torch_dtype=torch.bfloat16)
    again = EchoVideoPipeline.from_pretrained(tiny_model_dir(), transformer=transformer, torch_dtype=torch.float32)
    assert again.transformer.dtype == torch.bfloat16 and again.text_encoder.dtype == torch.float32
