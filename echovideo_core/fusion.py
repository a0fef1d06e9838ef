"""IITF (Identity Image-Text Fusion) math: projections that mix tokens, not channels.

The released `face_info_proj` (212 -> 196) and `text_proj` (422 -> 226) are ordinary
`nn.Linear` layers applied along the sequence axis: the checkpoint stores them as
(out_tokens, in_tokens) matrices. Keeping that as one named pure function stops the
transposes from being "simplified" away.
"""
from __future__ import annotations

import torch
from torch import nn


def token_axis_linear(linear: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Apply `linear` across the token axis: (B, N_in, D) -> (B, N_out, D).

    The module is called (not its weights read), so hooks and adapters on it (peft LoRA,
    offloading) apply; its output is channel-major (B, D, N_out) before the transpose back.
    """
    return linear(tokens.transpose(1, 2).contiguous()).transpose(1, 2)


def arcface_rows(arcface: torch.Tensor, rows: int) -> torch.Tensor:
    """(B, 512) raw ArcFace vectors -> (B, rows, 512) identical rows.

    The release feeds the resampler 144 copies of the vector, not one: with softmax
    attention over [rows ; queries] the copies weigh 144 times as much, so the count
    changes the numbers and is part of the model.
    """
    if arcface.ndim != 2:
        raise ValueError(f"arcface must be (B, 512), got shape {tuple(arcface.shape)}")
    return arcface[:, None, :].expand(-1, rows, -1).contiguous()
