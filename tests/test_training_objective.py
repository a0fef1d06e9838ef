"""Section 7 math: the v target, the zero-SNR schedule, stage-2 and CFG dropout."""
from __future__ import annotations

import math

import torch

from echovideo_core.tiny import SCHEDULER_CONFIG
from echovideo_core.training.objective import (Conditions, add_noise, alphas_cumprod, draw_for_batch,
                                               drop_conditions, v_target)

SHAPE = (3, 4, 4, 4)


def _draws(n: int, p_latent: float = 0.0, p_text: float = 0.0, p_face: float = 0.0, step: int = 0):
    return draw_for_batch(torch.arange(n), SHAPE, seed=5, step=step, p_drop_face_latent=p_latent,
                          p_drop_text=p_text, p_drop_face=p_face)


def test_alphas_are_zero_snr_rescaled():
    alphas = alphas_cumprod(SCHEDULER_CONFIG)
    assert alphas.shape == (1000,)
    assert alphas[-1].item() == 0.0  # zero terminal SNR: t = 999 is pure noise
    assert torch.all(alphas[1:] < alphas[:-1])


def test_v_target_recovers_x0_and_noise():
    alphas = alphas_cumprod(SCHEDULER_CONFIG)
    gen = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(4, *SHAPE, generator=gen), torch.randn(4, *SHAPE, generator=gen)
    t = torch.tensor([0, 300, 800, 999])
    xt, v = add_noise(x0, noise, t, alphas), v_target(x0, noise, t, alphas)
    a = alphas[t].float().view(-1, 1, 1, 1, 1)
    # x0 = sqrt(a) x_t - sqrt(1-a) v and noise = sqrt(1-a) x_t + sqrt(a) v (v-prediction identities)
    torch.testing.assert_close(a.sqrt() * xt - (1 - a).sqrt() * v, x0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close((1 - a).sqrt() * xt + a.sqrt() * v, noise, atol=1e-5, rtol=1e-5)


def test_v_target_matches_the_scheduler_velocity():
    from diffusers import CogVideoXDPMScheduler

    scheduler = CogVideoXDPMScheduler.from_config(SCHEDULER_CONFIG)
    gen = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(2, *SHAPE, generator=gen), torch.randn(2, *SHAPE, generator=gen)
    t = torch.tensor([17, 640])
    expected = scheduler.get_velocity(x0, noise, t)
    torch.testing.assert_close(v_target(x0, noise, t, alphas_cumprod(SCHEDULER_CONFIG)), expected, atol=1e-5, rtol=1e-5)


def test_stage_two_drop_probability_is_honoured():
    n, p = 4000, 0.3
    dropped = int((~_draws(n, p_latent=p).keep_face_latent).sum())
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(dropped - n * p) < 4 * sigma, f"{dropped} of {n} dropped, expected {n * p:.0f} +- {4 * sigma:.0f}"


def test_stage_one_never_drops_the_face_latent():
    assert bool(_draws(500, p_latent=0.0).keep_face_latent.all())


def test_cfg_dropouts_are_independent_of_the_face_latent_drop():
    draws = _draws(4000, p_latent=0.5, p_text=0.5, p_face=0.5)
    both = int(((~draws.keep_face_latent) & (~draws.keep_text)).sum())
    assert abs(both - 1000) < 4 * math.sqrt(4000 * 0.25 * 0.75)


def test_draws_of_a_sample_do_not_depend_on_its_batch():
    alone = draw_for_batch(torch.tensor([6]), SHAPE, seed=5, step=2, p_drop_face_latent=0.5, p_drop_text=0.1, p_drop_face=0.1)
    batch = _draws(8, p_latent=0.5, p_text=0.1, p_face=0.1, step=2)
    assert alone.timesteps[0] == batch.timesteps[6]
    torch.testing.assert_close(alone.noise[0], batch.noise[6], rtol=0, atol=0)
    assert alone.keep_face_latent[0] == batch.keep_face_latent[6]


def test_draws_change_with_the_step():
    assert not torch.equal(_draws(4, step=0).noise, _draws(4, step=1).noise)


def test_dropped_conditions_are_the_unconditional_branch():
    gen = torch.Generator().manual_seed(2)
    cond = Conditions(text=torch.randn(3, 226, 8, generator=gen), siglip=torch.randn(3, 16, 8, generator=gen),
                      arcface=torch.randn(3, 512, generator=gen), face_latent=torch.randn(3, *SHAPE, generator=gen))
    draws = _draws(3)
    draws = type(draws)(timesteps=draws.timesteps, noise=draws.noise,
                        keep_face_latent=torch.tensor([True, False, True]),
                        keep_text=torch.tensor([False, True, True]), keep_face=torch.tensor([True, True, False]))
    uncond_text, uncond_siglip = torch.full((1, 226, 8), 7.0), torch.full((1, 16, 8), -1.0)
    out = drop_conditions(cond, draws, uncond_text, uncond_siglip)
    assert torch.equal(out.text[0], uncond_text[0]) and torch.equal(out.text[1:], cond.text[1:])
    assert torch.equal(out.siglip[2], uncond_siglip[0]) and torch.equal(out.siglip[:2], cond.siglip[:2])
    assert torch.equal(out.arcface[2], torch.zeros(512)) and torch.equal(out.arcface[:2], cond.arcface[:2])
    assert torch.equal(out.face_latent[1], torch.zeros(SHAPE))
    assert torch.equal(out.face_latent[0], cond.face_latent[0]) and torch.equal(out.face_latent[2], cond.face_latent[2])
