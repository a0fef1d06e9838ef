"""Tensor layouts other tools use, converted to and from ours (no ComfyUI import).

ComfyUI passes images as IMAGE (B, H, W, C) float in [0, 1]; the model decodes to
(B, F, H, W, 3). Video latents: ComfyUI's LATENT holds what its VAE Encode returns, the
VAE's latents as they are, video axes (B, C, F', H/8, W/8). A model scales them into its
own space when sampling starts (CogVideoX-5B: x 0.7, the VAE's `scaling_factor`) and back
when it ends; the DiT, our denoising loop and `decode_latents` work in the model's space
(B, F', C, h, w), x 0.7. `comfy_latent_samples` / `model_latents` are the only crossing, so
core VAE Decode / VAE Encode / TrimVideoLatent / latent upscales and our Sampler / Decode
exchange one kind of LATENT.
"""
from __future__ import annotations

import numpy as np
import torch

from echovideo_core.errors import InvalidInputError


def images_to_photos(images: torch.Tensor) -> list[torch.Tensor]:
    """ComfyUI IMAGE (B, H, W, C) float 0..1 -> B single photos (1, H, W, C)."""
    if images.ndim != 4:
        raise InvalidInputError(f"expected an IMAGE batch (B, H, W, C), got shape {tuple(images.shape)}")
    return [images[i : i + 1] for i in range(images.shape[0])]


def identity_image_batch(identity_image: np.ndarray) -> torch.Tensor:
    """A (512, 512, 3) uint8 identity image as a ComfyUI IMAGE (1, 512, 512, 3) float32 in [0, 1]."""
    return torch.from_numpy(identity_image.astype(np.float32) / 255.0)[None]


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


def frames_to_images(frames: torch.Tensor) -> torch.Tensor:
    """(B, F, H, W, 3) -> ComfyUI IMAGE (B*F, H, W, 3) float32 in [0, 1]."""
    return frames.reshape(-1, *frames.shape[2:]).float().cpu()


def latent_preview(latents: torch.Tensor) -> torch.Tensor:
    """A coarse (h, w, 3) picture in [-1, 1] of the first latent frame, for progress previews.

    No colour model exists for this latent space: the channels are split in three groups
    (any channel count >= 3), each group's mean becomes one RGB channel, scaled by its
    largest magnitude. It shows layout and motion, not colours.
    """
    frame = latents[0, 0].float()  # (C, h, w)
    # tensor_split, not chunk: chunk(3) of 4 channels gives only 2 groups (a 2-channel image)
    groups = torch.stack([g.mean(0) for g in frame.tensor_split(3, dim=0)], dim=-1)
    return groups / groups.abs().amax().clamp_min(1e-6)
