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


# Latent -> RGB factors of the CogVideoX VAE's 16 latent channels (one row per channel: R, G,
# B), for previews of latents in the DiT's space (VAE latents x scaling factor). These
# numbers are from kijai/ComfyUI-CogVideoXWrapper, latent_preview.py (Latent2RGBPreviewer);
# ComfyUI 0.28's own comfy/latent_formats.py CogVideoX / CogVideoX1_5 formats carry no
# latent_rgb_factors (ComfyUI has no latent2rgb preview for CogVideoX).
COGVIDEOX_LATENT_RGB: tuple[tuple[float, float, float], ...] = (
    (0.11945946736445662, 0.09919175788574555, -0.004832707433877734),
    (-0.0011977028264356232, 0.05496505130267682, 0.021321622433638193),
    (-0.014088548986590666, -0.008701477861945644, -0.020991313281459367),
    (0.03063921972519621, 0.12186477097625073, 0.0139593690235148),
    (0.0927403067854673, 0.030293187650929136, 0.05083134241694003),
    (0.0379112441305742, 0.04935199882777209, 0.058562766246777774),
    (0.017749911959153715, 0.008839453404921545, 0.036005638019226294),
    (0.10610119248526109, 0.02339855688237826, 0.057154257614084596),
    (0.1273639464837117, -0.010959856130713416, 0.043268631260428896),
    (-0.01873510946881321, 0.08220930648486932, 0.10613256772247093),
    (0.008429116376722327, 0.07623856561000408, 0.09295712117576727),
    (0.12938137079617007, 0.12360403483892413, 0.04478930933220116),
    (0.04565908794779364, 0.041064156741596365, -0.017695041535528512),
    (0.00019003240570281826, -0.013965147883381978, 0.05329669529635849),
    (0.08082391586738358, 0.11548306825496074, -0.021464170006615893),
    (-0.01517932393230994, -0.0057985555313003236, 0.07216646476618871),
)


def latent_preview(latents: torch.Tensor) -> torch.Tensor:
    """An (h, w, 3) picture in [-1, 1] of the first latent frame of (B, F', C, h, w) latents,
    for progress previews; any channel count C >= 1 gives three colours.

    16 channels (the real CogVideoX VAE): the linear latent -> RGB map above, an
    approximation of the decoded colours. Any other count (the tiny kit's 4): channel c goes
    to colour c mod 3 (a colour without a channel shows the mean of all), each colour the
    mean of its channels, scaled by the largest magnitude: layout and motion, not colours.
    """
    frame = torch.nan_to_num(latents[0, 0].detach().float())  # (C, h, w)
    channels = frame.shape[0]
    if channels == len(COGVIDEOX_LATENT_RGB):
        factors = torch.tensor(COGVIDEOX_LATENT_RGB, dtype=frame.dtype, device=frame.device)
        return torch.einsum("chw,ck->hwk", frame, factors).clamp(-1.0, 1.0)
    colours = [frame[k::3] if k < channels else frame for k in range(3)]
    rgb = torch.stack([c.mean(0) for c in colours], dim=-1)
    return rgb / rgb.abs().amax().clamp_min(1e-6)
