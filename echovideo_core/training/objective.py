"""The training objective as pure functions: noising, the v target, condition dropout.

CogVideoX (and EchoVideo) predict v. With a_t the scheduler's `alphas_cumprod` (zero-SNR
rescaled, so a_999 = 0):

    x_t = sqrt(a_t) * x0 + sqrt(1 - a_t) * noise
    v_t = sqrt(a_t) * noise - sqrt(1 - a_t) * x0

The loss is the plain MSE between predicted and target v. (diffusers' CogVideoX scripts
convert v to x0 and weight by 1 / (1 - a_t): the same quantity, written differently.)

Randomness is drawn per *sample* from a generator seeded by (run seed, step, dataset
index), never from a process-global stream: the same sample at the same step gets the same
timestep, noise and dropout whether it is trained on 1 process or 8, before or after a resume.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from diffusers import CogVideoXDPMScheduler

NUM_TRAIN_TIMESTEPS = 1000


def alphas_cumprod(scheduler_config: Mapping[str, Any]) -> torch.Tensor:
    """(num_train_timesteps,) float64 a_t exactly as CogVideoXDPMScheduler builds them
    (zero-SNR rescale and snr_shift_scale included)."""
    scheduler = CogVideoXDPMScheduler.from_config(dict(scheduler_config))
    return scheduler.alphas_cumprod.to(torch.float64).clone()


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, 1, ...) broadcastable against `like`, in like's dtype."""
    return values.to(like.device, like.dtype).view(-1, *([1] * (like.ndim - 1)))


def add_noise(x0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(a_t) x0 + sqrt(1 - a_t) noise, for (B, ...) tensors and (B,) int timesteps."""
    a = alphas[timesteps.cpu()]
    return _per_sample(a.sqrt(), x0) * x0 + _per_sample((1 - a).sqrt(), x0) * noise


def v_target(x0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """v_t = sqrt(a_t) noise - sqrt(1 - a_t) x0 (the CogVideoX / DDPM v-prediction target)."""
    a = alphas[timesteps.cpu()]
    return _per_sample(a.sqrt(), x0) * noise - _per_sample((1 - a).sqrt(), x0) * x0


def v_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error in float32 (the prediction may come out of bf16 autocast)."""
    return torch.mean((prediction.float() - target.float()) ** 2)


def sample_generator(seed: int, step: int, index: int) -> torch.Generator:
    """The generator for one sample at one optimizer step (see the module docstring)."""
    mixed = (seed * 1_000_003 + step) * 2_000_029 + index
    return torch.Generator("cpu").manual_seed(mixed % (2**63 - 1))


@dataclass(frozen=True)
class SampleDraws:
    """Random choices for a batch, each row drawn from that sample's own generator.

    timesteps: (B,) int64 in [0, 1000). noise: like the latents (B, F', C, h, w) float32.
    keep_face_latent, keep_text, keep_face: (B,) bool; False = that condition is dropped.
    """

    timesteps: torch.Tensor
    noise: torch.Tensor
    keep_face_latent: torch.Tensor
    keep_text: torch.Tensor
    keep_face: torch.Tensor


def draw_for_batch(
    indices: torch.Tensor, latent_shape: tuple[int, ...], *, seed: int, step: int,
    p_drop_face_latent: float, p_drop_text: float, p_drop_face: float,
) -> SampleDraws:
    """Per-sample timestep, noise and dropout decisions for dataset `indices` at `step`.

    `p_drop_face_latent` is 0 in stage 1 (the caller passes the stage's value).
    """
    steps, noises, keeps = [], [], []
    for index in indices.tolist():
        gen = sample_generator(seed, step, int(index))
        steps.append(torch.randint(0, NUM_TRAIN_TIMESTEPS, (1,), generator=gen))
        coins = torch.rand(3, generator=gen, dtype=torch.float64)
        keeps.append(coins >= torch.tensor([p_drop_face_latent, p_drop_text, p_drop_face], dtype=torch.float64))
        noises.append(torch.randn(latent_shape, generator=gen))
    keep = torch.stack(keeps)
    return SampleDraws(timesteps=torch.cat(steps), noise=torch.stack(noises),
                       keep_face_latent=keep[:, 0], keep_text=keep[:, 1], keep_face=keep[:, 2])


def _choose(keep: torch.Tensor, kept: torch.Tensor, dropped: torch.Tensor) -> torch.Tensor:
    """Row-wise `kept` where keep else `dropped` (dropped broadcast over the batch)."""
    return torch.where(_per_sample(keep, kept).bool(), kept, dropped.to(kept.dtype).expand_as(kept))


@dataclass(frozen=True)
class Conditions:
    """Model inputs for a batch after dropout.

    text: (B, 226, D_text) T5; siglip: (B, 196, D_face); arcface: (B, 512) raw;
    face_latent: (B, F', C, h, w) (frame 0 = face, the rest zeros).
    """

    text: torch.Tensor
    siglip: torch.Tensor
    arcface: torch.Tensor
    face_latent: torch.Tensor


def drop_conditions(cond: Conditions, draws: SampleDraws, uncond_text: torch.Tensor,
                    uncond_siglip: torch.Tensor) -> Conditions:
    """Replace dropped conditions by what the sampler's unconditional branch uses.

    Text -> T5 of the empty prompt (1, 226, D); face -> SigLIP of a black image (1, 196, D)
    and a zero ArcFace; face latent (stage 2) -> zeros. CFG dropout never touches the face
    latent: at sampling time both branches share it.
    """
    keep_text = draws.keep_text.to(cond.text.device)
    keep_face = draws.keep_face.to(cond.text.device)
    keep_latent = draws.keep_face_latent.to(cond.text.device)
    return Conditions(
        text=_choose(keep_text, cond.text, uncond_text),
        siglip=_choose(keep_face, cond.siglip, uncond_siglip),
        arcface=_choose(keep_face, cond.arcface, torch.zeros(1, cond.arcface.shape[1])),
        face_latent=cond.face_latent * _per_sample(keep_latent, cond.face_latent),
    )
