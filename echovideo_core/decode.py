"""Final latents -> video frames (B, F, H, W, 3) float32 in [0, 1].

The release casts its VAE to float16 *in place* to decode (and leaves it in bfloat16), so a
second call runs with rounded weights. Here the caller's VAE is never changed: another
dtype is decoded on a temporary copy, and float32 decodes with the untouched float32
weights. Tiling/slicing switches are set for the duration of the call and restored.
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from diffusers import AutoencoderKLCogVideoX

from echovideo_core.geometry import vae_spatial_factor


@dataclass(frozen=True)
class DecodedFrames:
    """frames: (B, F, H, W, 3) float32 in [0, 1]; F = 4 * (F' - 1) + 1 for odd F'."""

    frames: torch.Tensor


@contextmanager
def _vae_in_dtype(vae: AutoencoderKLCogVideoX, dtype: torch.dtype) -> Iterator[AutoencoderKLCogVideoX]:
    """The VAE itself when it already has `dtype`, else a temporary cast copy."""
    if vae.dtype == dtype:
        yield vae
        return
    # nn.Module.to, not ModelMixin.to: the copy is ours, diffusers' warning about casting
    # a loaded model in place does not apply to it.
    temporary = torch.nn.Module.to(copy.deepcopy(vae), dtype)
    try:
        yield temporary
    finally:
        del temporary


@contextmanager
def _switches(vae: AutoencoderKLCogVideoX, tiling: bool, slicing: bool) -> Iterator[None]:
    """Set `use_tiling` / `use_slicing` for the call and put the caller's values back."""
    saved = (vae.use_tiling, vae.use_slicing)
    vae.use_tiling, vae.use_slicing = tiling, slicing
    try:
        yield
    finally:
        vae.use_tiling, vae.use_slicing = saved


def postprocess(decoded: torch.Tensor) -> torch.Tensor:
    """(B, 3, F, H, W) in [-1, 1] -> (B, F, H, W, 3) float32 in [0, 1].

    The mapping runs in the decode dtype before the cast to float32, as the release's
    video post-processing does.
    """
    frames = (decoded / 2 + 0.5).clamp(0, 1)
    return frames.permute(0, 2, 3, 4, 1).float()


@torch.no_grad()
def decode_latents(
    vae: AutoencoderKLCogVideoX,
    latents: torch.Tensor,
    *,
    dtype: torch.dtype = torch.float16,
    tiling: bool = False,
    slicing: bool = False,
) -> DecodedFrames:
    """Decode (B, F', C, h, w) latents with the VAE in `dtype`; the caller's VAE is unchanged."""
    with _vae_in_dtype(vae, dtype) as decoder, _switches(decoder, tiling, slicing):
        z = latents.to(decoder.device, dtype).permute(0, 2, 1, 3, 4)
        z = 1 / decoder.config.scaling_factor * z
        decoded = decoder.decode(z).sample
    expected = (z.shape[-2] * vae_spatial_factor(decoder), z.shape[-1] * vae_spatial_factor(decoder))
    if tuple(decoded.shape[-2:]) != expected:
        raise RuntimeError(
            f"VAE decode gave {tuple(decoded.shape[-2:])} frames instead of {expected}"
            + (" (tiling on a size below the VAE's tile size: decode without tiling)" if tiling else "")
        )
    return DecodedFrames(frames=postprocess(decoded).cpu())
