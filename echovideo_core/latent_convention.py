"""The LATENT convention the pack shares with ComfyUI core: plain VAE latents.

ComfyUI's LATENT holds what its VAE Encode returns: the VAE's latents as they are, video
axes (B, C, F', H/8, W/8). A model scales them into its own space when sampling starts
(CogVideoX-5B: x 0.7, the VAE's `scaling_factor`) and back when it ends. The DiT, our
denoising loop and `decode_latents` work in the model's space (B, F', C, h, w), x 0.7.
These two functions are the only crossing, so core VAE Decode / VAE Encode /
TrimVideoLatent / latent upscales and our Sampler / Decode exchange one kind of LATENT.
"""
from __future__ import annotations

import torch

from echovideo_core.errors import InvalidInputError


def comfy_latent_samples(latents: torch.Tensor, scaling_factor: float) -> torch.Tensor:
    """Model-space (B, F', C, h, w) -> ComfyUI LATENT samples (B, C, F', h, w), plain."""
    return (latents.float() / scaling_factor).permute(0, 2, 1, 3, 4).contiguous()


def model_latents(samples: torch.Tensor, *, scaling_factor: float, channels: int) -> torch.Tensor:
    """ComfyUI LATENT samples (B, C, F', h, w), plain -> model-space (B, F', C, h, w).

    A LATENT of the wrong kind (an image latent, another VAE's channel count) is refused
    with one line naming what was expected, before any decoding starts.
    """
    if samples.ndim != 5:
        raise InvalidInputError(
            f"LATENT has shape {tuple(samples.shape)}: expected a video latent (B, C, F', H/8, W/8) "
            "from EchoVideo Sampler, a core sampler or VAE Encode of a video")
    if samples.shape[1] != channels:
        raise InvalidInputError(
            f"LATENT has {samples.shape[1]} channels, this VAE's latents have {channels}: "
            "decode with the VAE the latent was made for")
    return (samples.float() * scaling_factor).permute(0, 2, 1, 3, 4).contiguous()
