"""Tensor layouts other tools use, converted to and from ours (no ComfyUI import).

ComfyUI passes images as IMAGE (B, H, W, C) float in [0, 1] and video latents as LATENT
{"samples": (B, C, F', h, w)}; the model works frame-major (B, F', C, h, w) and decodes to
(B, F, H, W, 3). These conversions are pure layout changes.
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


def to_comfy_latent(latents: torch.Tensor) -> torch.Tensor:
    """(B, F', C, h, w) -> (B, C, F', h, w), the axis order ComfyUI uses for video latents."""
    return latents.permute(0, 2, 1, 3, 4).contiguous()


def from_comfy_latent(samples: torch.Tensor) -> torch.Tensor:
    """(B, C, F', h, w) -> (B, F', C, h, w), the order the model and the VAE decode use."""
    if samples.ndim != 5:
        raise InvalidInputError(f"expected an EchoVideo LATENT (B, C, F', H/8, W/8), got shape {tuple(samples.shape)}")
    return samples.permute(0, 2, 1, 3, 4).contiguous()


def frames_to_images(frames: torch.Tensor) -> torch.Tensor:
    """(B, F, H, W, 3) -> ComfyUI IMAGE (B*F, H, W, 3) float32 in [0, 1]."""
    return frames.reshape(-1, *frames.shape[2:]).float().cpu()


def latent_preview(latents: torch.Tensor) -> torch.Tensor:
    """A coarse (h, w, 3) picture in [-1, 1] of the first latent frame, for progress previews.

    No colour model exists for this latent space: the channels are split in three groups,
    each group's mean becomes one RGB channel, scaled by its largest magnitude. It shows
    layout and motion, not colours.
    """
    frame = latents[0, 0].float()  # (C, h, w)
    groups = torch.stack([g.mean(0) for g in frame.chunk(3, dim=0)], dim=-1)
    return groups / groups.abs().amax().clamp_min(1e-6)
