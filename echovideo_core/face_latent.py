"""Identity image -> the shallow face latent concatenated to the noisy latent at every step.

Pad the face with black to the video's aspect ratio, resize to H x W (PIL Lanczos, via
diffusers' VideoProcessor), map to [-1, 1], VAE-encode it as a single frame, take one
sample of the latent distribution with the run's generator (so it is part of the run's
random stream), scale by the VAE's scaling factor and append zero frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from diffusers import AutoencoderKLCogVideoX
from diffusers.video_processor import VideoProcessor

from echovideo_core.face_features import check_identity_image
from echovideo_core.geometry import latent_frame_count, vae_spatial_factor, vae_temporal_factor


@dataclass(frozen=True)
class FaceLatent:
    """latents: (B, F', C, H/8, W/8) float32, frame-major; frame 0 holds the encoded face
    (already multiplied by the VAE scaling factor), frames 1.. are zeros."""

    latents: torch.Tensor


def pad_to_aspect(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad (h, w, 3) with black to the aspect ratio W/H of the video, centred.

    Rule of the release: with r = W/H > 1 the new height is the image's shorter side and
    the new width int(new_height * r); otherwise the new width is the shorter side and the
    new height int(new_width / r). Each is then raised to at least the current size (so a
    tall image in a wide video keeps its height). Top/left get floor(pad / 2).
    """
    h, w = image.shape[:2]
    ratio = width / height
    short = min(h, w)
    if ratio > 1:
        new_h, new_w = short, int(short * ratio)
    else:
        new_w, new_h = short, int(short / ratio)
    new_h, new_w = max(new_h, h), max(new_w, w)
    top, left = (new_h - h) // 2, (new_w - w) // 2
    padded = np.zeros((new_h, new_w, image.shape[2]), dtype=image.dtype)
    padded[top : top + h, left : left + w] = image
    return padded


def preprocess_face(image: np.ndarray, height: int, width: int, spatial_factor: int) -> torch.Tensor:
    """Padded + resized face in [-1, 1]: (1, 3, H, W) float32."""
    padded = pad_to_aspect(check_identity_image(image), height, width)
    processor = VideoProcessor(vae_scale_factor=spatial_factor)
    return processor.preprocess(PIL.Image.fromarray(padded), height=height, width=width)


@torch.no_grad()
def encode_face_latent(
    vae: AutoencoderKLCogVideoX,
    identity_image: np.ndarray,
    *,
    height: int,
    width: int,
    num_frames: int,
    generator: torch.Generator | None,
) -> FaceLatent:
    """The face latent for one identity image; draws one sample from `generator`."""
    pixels = preprocess_face(identity_image, height, width, vae_spatial_factor(vae))
    video = pixels.unsqueeze(2).to(vae.device, vae.dtype)  # (1, 3, 1, H, W)
    dist = vae.encode(video).latent_dist
    sample = dist.sample(generator=generator)  # (1, C, 1, h, w)
    face = sample.permute(0, 2, 1, 3, 4).float() * vae.config.scaling_factor
    return FaceLatent(latents=with_zero_frames(face, latent_frame_count(num_frames, vae_temporal_factor(vae))))


def with_zero_frames(face: torch.Tensor, latent_frames: int) -> torch.Tensor:
    """(..., 1, C, h, w) one encoded face frame -> (..., F', C, h, w), zero frames after it:
    the shallow path's layout (the face is the video's first latent frame)."""
    zeros = face.new_zeros((*face.shape[:-4], latent_frames - 1, *face.shape[-3:]))
    return torch.cat([face, zeros], dim=-4)
