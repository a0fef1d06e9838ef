"""docs/design.md section 3 and docs/parity.md (rotary versions): rotary tables, 0.31 grid."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from echovideo_core import rotary_embeddings
from echovideo_core.rotary import crop_region

CONFIG = {"attention_head_dim": 64, "patch_size": 2}


def spec_tables(head_dim: int, height: int, width: int, num_frames: int, crop) -> tuple[np.ndarray, np.ndarray]:
    """The tables written straight from the spec text, in float64 (independent of the code)."""
    gh, gw, frames = height // 16, width // 16, (num_frames - 1) // 4 + 1
    (top, left), (bottom, right) = crop

    def axis(dim: int, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inv = 1.0 / 10000 ** (np.arange(0, dim, 2)[: dim // 2] / dim)
        angles = np.outer(positions, inv)
        return np.repeat(np.cos(angles), 2, axis=1), np.repeat(np.sin(angles), 2, axis=1)

    t = axis(head_dim // 4, np.arange(frames, dtype=np.float64))
    h = axis(head_dim // 8 * 3, top + (bottom - top) * np.arange(gh) / gh)
    w = axis(head_dim // 8 * 3, left + (right - left) * np.arange(gw) / gw)
    out = []
    for k in range(2):
        grid = np.concatenate(
            [
                np.broadcast_to(t[k][:, None, None, :], (frames, gh, gw, t[k].shape[1])),
                np.broadcast_to(h[k][None, :, None, :], (frames, gh, gw, h[k].shape[1])),
                np.broadcast_to(w[k][None, None, :, :], (frames, gh, gw, w[k].shape[1])),
            ],
            axis=-1,
        )
        out.append(grid.reshape(frames * gh * gw, -1))
    return out[0], out[1]


def test_rotary_tables_match_the_reference_case(case_dir, case_meta, tiny_transformer):
    stored = load_file(str(case_dir / "transformer_case.safetensors"))
    tc = case_meta["transformer_case"]
    h, w = tc["pixel_hw_for_rotary"]
    cos, sin = rotary_embeddings(tiny_transformer.config, height=h, width=w, num_frames=tc["num_frames_for_rotary"])
    assert (cos - stored["in.rotary_cos"]).abs().max() <= 1e-6
    assert (sin - stored["in.rotary_sin"]).abs().max() <= 1e-6


@pytest.mark.parametrize(
    ("height", "width", "start"),
    [(480, 720, (0, 0)), (480, 848, (2, 0)), (480, 640, (0, 2)), (480, 480, (0, 8)), (848, 480, (0, 14)), (640, 480, (0, 12))],
)
def test_crop_region_starts_where_the_reference_readme_says(height, width, start):
    assert crop_region((height // 16, width // 16), (30, 45))[0] == start


def test_portrait_size_with_offset_crop_follows_the_031_grid():
    height, width, frames = 848, 480, 49
    cos, sin = rotary_embeddings(CONFIG, height=height, width=width, num_frames=frames)
    exp_cos, exp_sin = spec_tables(64, height, width, frames, crop_region((53, 30), (30, 45)))
    assert np.abs(cos.numpy() - exp_cos).max() < 1e-5
    assert np.abs(sin.numpy() - exp_sin).max() < 1e-5


def test_tables_differ_from_the_newer_diffusers_grid_where_the_crop_is_offset():
    """Guard against a 'fix' to diffusers >= 0.32 positions: they move the h/w angles."""
    from diffusers.models.embeddings import get_3d_rotary_pos_embed

    (top, left), (bottom, right) = crop_region((53, 30), (30, 45))
    new_cos, _ = get_3d_rotary_pos_embed(64, ((top, left), (bottom, right)), (53, 30), 13)
    ours, _ = rotary_embeddings(CONFIG, height=848, width=480, num_frames=49)
    assert (ours - new_cos).abs().max() > 0.1


def test_tables_cover_video_tokens_only_with_head_dim_columns():
    cos, sin = rotary_embeddings(CONFIG, height=480, width=848, num_frames=49)
    assert cos.shape == sin.shape == (13 * 30 * 53, 64)
    assert cos.dtype == torch.float32


def test_seventeen_pixel_frames_are_five_latent_frames():
    cos, _ = rotary_embeddings(CONFIG, height=64, width=64, num_frames=17)
    assert cos.shape[0] == 5 * 4 * 4


def test_tables_are_cached_per_size_but_callers_get_their_own_copy():
    a, _ = rotary_embeddings(CONFIG, height=480, width=480, num_frames=9)
    a.zero_()
    b, _ = rotary_embeddings(CONFIG, height=480, width=480, num_frames=9)
    assert b.abs().sum() > 0
    assert math.isclose(float(b[0, 0]), 1.0)
