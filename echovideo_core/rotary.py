"""3-D rotary position tables for the video tokens, with diffusers 0.31 grid semantics.

diffusers >= 0.32 places the n grid positions at start + (stop*(n-1)/n - start) * k/(n-1);
the release (diffusers 0.31) used start + (stop - start) * k/n. They differ whenever the
crop region does not start at 0 (for example 480x848, the release's default size), so the
grid is built here the 0.31 way and only the 1-D frequency tables come from diffusers.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import torch
from diffusers.models.embeddings import get_1d_rotary_pos_embed

from echovideo_core.geometry import VAE_SPATIAL_COMPRESSION, latent_frame_count

BASE_HEIGHT, BASE_WIDTH = 480, 720  # the CogVideoX training size the crop is fitted into


def crop_region(grid_hw: tuple[int, int], base_hw: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """Fit a (h, w) patch grid inside the base grid keeping aspect; centred (top, left), (bottom, right)."""
    h, w = grid_hw
    base_h, base_w = base_hw
    if h / w > base_h / base_w:
        resized_h, resized_w = base_h, int(round(base_h / h * w))
    else:
        resized_h, resized_w = int(round(base_w / w * h)), base_w
    top = int(round((base_h - resized_h) / 2.0))
    left = int(round((base_w - resized_w) / 2.0))
    return (top, left), (top + resized_h, left + resized_w)


def _grid(start: float, stop: float, n: int) -> np.ndarray:
    return np.linspace(start, stop, n, endpoint=False, dtype=np.float32)


@lru_cache(maxsize=32)
def _tables(head_dim: int, patch_size: int, height: int, width: int, num_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    grid_h = height // (VAE_SPATIAL_COMPRESSION * patch_size)
    grid_w = width // (VAE_SPATIAL_COMPRESSION * patch_size)
    patch = VAE_SPATIAL_COMPRESSION * patch_size
    (top, left), (bottom, right) = crop_region((grid_h, grid_w), (BASE_HEIGHT // patch, BASE_WIDTH // patch))
    frames = latent_frame_count(num_frames)

    dim_t, dim_hw = head_dim // 4, head_dim // 8 * 3
    axes = (
        (dim_t, _grid(0, frames, frames)),
        (dim_hw, _grid(top, bottom, grid_h)),
        (dim_hw, _grid(left, right, grid_w)),
    )
    cos_parts, sin_parts = [], []
    for axis, (dim, positions) in enumerate(axes):
        cos, sin = get_1d_rotary_pos_embed(dim, positions, use_real=True)
        shape = [1, 1, 1, -1]
        shape[axis] = cos.shape[0]
        cos_parts.append(cos.view(shape).expand(frames, grid_h, grid_w, -1))
        sin_parts.append(sin.view(shape).expand(frames, grid_h, grid_w, -1))
    cos = torch.cat(cos_parts, dim=-1).reshape(frames * grid_h * grid_w, -1)
    sin = torch.cat(sin_parts, dim=-1).reshape(frames * grid_h * grid_w, -1)
    return cos, sin


def rotary_embeddings(
    config: Any,
    *,
    height: int,
    width: int,
    num_frames: int,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin), each (F' * H/16 * W/16, head_dim) float32, for a video of pixel size H x W x num_frames.

    `config` is the transformer's config (or anything with `attention_head_dim` and
    `patch_size`). Pure and cached per size; callers get fresh tensors.
    """
    head_dim = int(_config_value(config, "attention_head_dim"))
    patch_size = int(_config_value(config, "patch_size"))
    cos, sin = _tables(head_dim, patch_size, int(height), int(width), int(num_frames))
    return cos.to(device=device, copy=True), sin.to(device=device, copy=True)


def _config_value(config: Any, name: str) -> Any:
    return config[name] if isinstance(config, dict) else getattr(config, name)
