"""The release's sampling, restated for samplers that speak ComfyUI's sigma language.

ComfyUI's samplers work on x = x0 + sigma * noise ("VE" form) and call a denoiser that
returns the predicted x0; CogVideoX's scheduler works on x_t = sqrt(a) x0 + sqrt(1 - a)
noise ("VP" form, a = alphas_cumprod[t] = 1 / (1 + sigma^2)) with the model's velocity v.
These pure functions convert between the two and run the release's 2nd-order
CogVideoXDPMScheduler update (diffusers' own `step`) on a denoiser, so the release's numbers
come out of a ComfyUI sampler node. Also here: the release's dynamic CFG applied to the two
denoised branches, and the release's random draws (noise first, then the face-latent
sample) in ComfyUI's latent layout.

No ComfyUI import: the adapter (nodes/native_adapter.py) passes callables and tensors.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from echovideo_core.guidance import dynamic_cfg_scale, guided_output
from echovideo_core.numerics import cfg_schedule_from
from echovideo_core.sampling import make_scheduler

PredictDenoised = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""denoised = predict(x_ve, sigma): the denoiser of a ComfyUI sampler (x0 in VE units)."""
OnDenoised = Callable[[int, int, torch.Tensor, torch.Tensor], None]
"""on_step(step, total, denoised, x_ve) after each step (progress bar, preview)."""

LOGVAR_RANGE = (-30.0, 20.0)  # diffusers' DiagonalGaussianDistribution clamps log-variance so


def _scale(sigma: torch.Tensor | float) -> torch.Tensor:
    return (torch.as_tensor(sigma, dtype=torch.float32) ** 2 + 1.0) ** 0.5


def vp_from_ve(x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """x0 + sigma * noise -> sqrt(a) x0 + sqrt(1 - a) noise (what the DiT reads)."""
    return x / _scale(sigma).to(x.device)


def ve_from_vp(x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    return x * _scale(sigma).to(x.device)


def velocity_from_denoised(x_vp: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """v such that denoised = sqrt(a) x_vp - sqrt(1 - a) v, with a = 1 / (1 + sigma^2): the
    exact inverse of how a v-prediction denoiser made `denoised`. Guidance mixed on the
    denoised branches is the same mix of the velocities (the map is affine in v)."""
    scale = _scale(sigma).to(x_vp.device)
    sqrt_alpha, sqrt_one_minus_alpha = 1.0 / scale, (scale**2 - 1.0) ** 0.5 / scale
    return (sqrt_alpha * x_vp - denoised) / sqrt_one_minus_alpha


@torch.no_grad()
def release_dpm_sample(predict: PredictDenoised, x: torch.Tensor, sigmas: torch.Tensor, timesteps: Sequence[int],
                       scheduler_config: dict, *, generator: torch.Generator | None = None,
                       on_step: OnDenoised | None = None) -> torch.Tensor:
    """The release's CogVideoXDPMScheduler loop over `sigmas` (N + 1 values) on a denoiser.

    x: the starting latents in VE form, ComfyUI's (B, C, F', h, w) layout (its noise-scaled
    latents); the result has the same layout. timesteps: the
    scheduler timestep of each of the first N sigmas (ComfyUI's `model_sampling.timestep`).
    Each step: denoised at (x, sigma_i) -> the velocity -> diffusers' 2nd-order DPM update
    in VP form (it uses the previous step's predicted x0, and steps to t - 1000 // N as the
    release does). Returns the final latents in VE form at sigmas[-1] (0: the same in VP).
    """
    total = len(timesteps)
    if len(sigmas) != total + 1:
        raise ValueError(f"need one timestep per sampling step: {len(sigmas) - 1} steps, {total} timesteps")
    scheduler = make_scheduler(scheduler_config, total)
    # The update runs frame-major (B, F', C, h, w), the release's layout: its per-step noise
    # lands on the same elements as in the release only in that layout.
    latents = vp_from_ve(x.float(), sigmas[0]).permute(0, 2, 1, 3, 4)
    previous_x0: torch.Tensor | None = None
    for i, t in enumerate(timesteps):
        x_i = ve_from_vp(latents, sigmas[i]).permute(0, 2, 1, 3, 4).to(x.dtype)
        denoised = predict(x_i, sigmas[i]).float().permute(0, 2, 1, 3, 4)
        velocity = velocity_from_denoised(latents, denoised, sigmas[i])
        latents, previous_x0 = scheduler.step(
            velocity, previous_x0, int(t), int(timesteps[i - 1]) if i > 0 else None, latents,
            eta=0.0, generator=generator, return_dict=False)
        latents = latents.float()
        if on_step is not None:
            on_step(i, total, denoised.permute(0, 2, 1, 3, 4), ve_from_vp(latents, sigmas[i + 1]).permute(0, 2, 1, 3, 4))
    return ve_from_vp(latents, sigmas[-1]).permute(0, 2, 1, 3, 4).contiguous()


def dynamic_guided(uncond: torch.Tensor, cond: torch.Tensor, guidance_scale: float, *, timestep: int,
                   step_index: int, num_steps: int, cfg_schedule: str = "timestep") -> torch.Tensor:
    """The release's dynamic CFG on two predictions (velocities or denoised latents alike):
    scale `1 + g (1 - cos(pi ((N - p) / N)^5)) / 2` at p = the timestep value ("timestep", as
    released) or the step index ("step_index"); "constant" is plain CFG (numerics.py)."""
    schedule = cfg_schedule_from(cfg_schedule)
    if schedule == "constant":
        return guided_output(uncond, cond, guidance_scale)
    position = timestep if schedule == "timestep" else step_index
    return guided_output(uncond, cond, dynamic_cfg_scale(guidance_scale, position, num_steps))


def release_stream_after_inputs(seed: int, latent_shape: Sequence[int]) -> torch.Generator:
    """The run's generator as the release's scheduler finds it: seeded with `seed`, past the
    initial noise and the face-latent sample (shapes from the (B, C, F', h, w) latent).

    CogVideoXDPMScheduler's update is stochastic: every step adds
    sqrt(1 - a_prev) sqrt(1 - exp(-2h)) * noise drawn from the run's generator (`eta` does
    not scale it), so the release's numbers need the release's stream, not a fresh one."""
    batch, channels, frames, height, width = (int(v) for v in latent_shape)
    generator = torch.Generator("cpu").manual_seed(int(seed))
    release_noise(generator, batch, channels, frames, height, width)  # draw 1: the initial noise
    torch.randn((1, channels, 1, height, width), generator=generator, dtype=torch.float32)  # draw 2: the face latent
    return generator


def release_noise(generator: torch.Generator, batch: int, channels: int, frames: int, height: int, width: int
                  ) -> torch.Tensor:
    """The run's first draw, as the release makes it ((B, F', C, h, w) standard normal),
    returned in ComfyUI's (B, C, F', h, w) layout."""
    noise = torch.randn((batch, frames, channels, height, width), generator=generator, dtype=torch.float32)
    return noise.permute(0, 2, 1, 3, 4).contiguous()


def sample_latent_distribution(moments: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One sample of the VAE's diagonal Gaussian from its (B, 2C, ...) moments [mean ; logvar],
    drawn like diffusers' DiagonalGaussianDistribution.sample (same draw, same clamp)."""
    mean, logvar = moments.float().chunk(2, dim=1)
    std = torch.exp(0.5 * logvar.clamp(*LOGVAR_RANGE))
    noise = torch.randn(mean.shape, generator=generator, dtype=torch.float32).to(mean.device)
    return mean + std * noise
