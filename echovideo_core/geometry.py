"""VAE geometry: how pixel sizes and frame counts map to latent ones.

The CogVideoX VAE compresses space x8 (2 ** (levels - 1)) and time x4 around a kept first
frame; the DiT then groups 2x2 latent cells into one token. Every module that turns pixels
into latents (noise, face latent, rotary tables, training data) asks here.
"""
from __future__ import annotations

from typing import Any

VAE_SPATIAL_COMPRESSION = 8
VAE_TEMPORAL_COMPRESSION = 4


def latent_frame_count(num_frames: int, temporal_compression: int = VAE_TEMPORAL_COMPRESSION) -> int:
    """Pixel frames -> latent frames (first frame kept, then one per `temporal_compression`): 49 -> 13."""
    return (num_frames - 1) // temporal_compression + 1


def vae_spatial_factor(vae: Any) -> int:
    """Pixels per latent cell on each side (8 for CogVideoX), from the VAE's config."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def vae_temporal_factor(vae: Any) -> int:
    """Pixel frames per latent frame after the first (4 for CogVideoX)."""
    return int(vae.config.temporal_compression_ratio)


def latent_shape(vae: Any, latent_channels: int, height: int, width: int, num_frames: int) -> tuple[int, int, int, int, int]:
    """(1, F', C, H/8, W/8): the shape of one video's latents (frame-major, as the DiT reads them)."""
    factor = vae_spatial_factor(vae)
    return (1, latent_frame_count(num_frames, vae_temporal_factor(vae)), latent_channels, height // factor, width // factor)
