"""The sampler choice: the release's CogVideoX DPM (default) or CogVideoX DDIM, both from
diffusers and both configured from the model's scheduler settings."""
from __future__ import annotations

import pytest
import torch

from echovideo_core import EchoVideoPipeline
from echovideo_core.errors import InvalidInputError
from echovideo_core.sampling import make_scheduler, scheduler_from
from echovideo_core.tiny import SCHEDULER_CONFIG
from pipeline_kit import TINY_CALL, tiny_inputs, tiny_model_dir


@pytest.fixture(scope="module")
def pipe():
    return EchoVideoPipeline.from_pretrained(tiny_model_dir())


def latents(pipe, generator, **kwargs):
    image, arcface = tiny_inputs()
    return pipe(image, arcface, **TINY_CALL, generator=generator, output_type="latent", **kwargs).latents


def test_dpm_is_the_default(pipe):
    assert torch.equal(latents(pipe, torch.Generator().manual_seed(0)),
                       latents(pipe, torch.Generator().manual_seed(0), scheduler="dpm"))


def test_ddim_samples_another_trajectory_from_the_same_seed(pipe):
    ddim = latents(pipe, torch.Generator().manual_seed(0), scheduler="ddim")
    assert torch.isfinite(ddim).all()
    assert not torch.equal(ddim, latents(pipe, torch.Generator().manual_seed(0)))


def test_ddim_draws_nothing_after_the_noise_and_the_face_latent(pipe):
    generator = torch.Generator().manual_seed(5)
    latents(pipe, generator, scheduler="ddim")
    replay = torch.Generator().manual_seed(5)
    image_size = TINY_CALL["height"] // 8
    torch.randn((1, 3, 4, image_size, image_size), generator=replay)  # initial noise: (1, F', C, h, w)
    torch.randn((1, 4, 1, image_size, image_size), generator=replay)  # face-latent sample
    assert torch.equal(torch.randn(8, generator=generator), torch.randn(8, generator=replay))


def test_both_schedulers_share_the_models_timesteps():
    assert torch.equal(make_scheduler(SCHEDULER_CONFIG, 4, "dpm").timesteps, make_scheduler(SCHEDULER_CONFIG, 4, "ddim").timesteps)


def test_the_sampler_nodes_names_map_onto_the_schedulers():
    assert scheduler_from("CogVideoXDPM") == "dpm" and scheduler_from("CogVideoXDDIM") == "ddim"


def test_an_unknown_scheduler_names_the_choices():
    with pytest.raises(InvalidInputError, match="scheduler must be one of dpm, ddim"):
        scheduler_from("euler")
