"""The IITF layers on their own: for front ends whose DiT is not our transformer class.

ComfyUI's native CogVideoX model holds the CogVideoX blocks of an EchoVideo file but drops
the four identity-fusion layers (`face_proj`, `text_proj`, `face_info_proj`,
`face_prj_wofc.*`). `IITFLayers` holds just those, under the checkpoint's names. `fuse_identity_tokens` is the one fusion rule;
`EchoVideoTransformer3DModel.fuse` calls it too. Reading them from a file is
`loading.iitf.read_iitf_layers`.
"""
from __future__ import annotations

from typing import Any, Mapping, Protocol

import torch
from torch import nn

from echovideo_core.fusion import arcface_rows, token_axis_linear
from echovideo_core.resampler import FaceResampler

ARCFACE_ROWS = 144
"""How many identical ArcFace rows the resampler reads (fixed by the release's pipeline)."""
RESAMPLER_DIM_HEAD = 64
"""The resampler's head width: not visible in the tensor shapes; the release's is 64."""


class HasIITFLayers(Protocol):
    face_proj: nn.Linear
    text_proj: nn.Linear
    face_info_proj: nn.Linear
    face_prj_wofc: nn.Module


def fuse_identity_tokens(layers: HasIITFLayers, text_embeds: torch.Tensor, siglip_embeds: torch.Tensor,
                         arcface: torch.Tensor) -> torch.Tensor:
    """IITF: (B,226,Dt) T5, (B,196,768) SigLIP, (B,512) raw ArcFace -> (B,226,Dt) tokens.

    Independent of the timestep and the latents: one call per run and CFG branch. Inputs
    are cast to the weights' dtype only (the as-released rounding happens upstream).
    """
    dtype = layers.face_proj.weight.dtype
    rows = arcface_rows(arcface.to(dtype), ARCFACE_ROWS)
    identity = layers.face_prj_wofc(rows)  # (B, 16, 768)
    face = token_axis_linear(layers.face_info_proj, torch.cat([identity, siglip_embeds.to(dtype)], 1))
    face = layers.face_proj(face)  # (B, 196, Dt)
    return token_axis_linear(layers.text_proj, torch.cat([face, text_embeds.to(dtype)], 1))


class IITFLayers(nn.Module):
    """face_proj, text_proj, face_info_proj and face_prj_wofc, named as in the checkpoint."""

    def __init__(self, *, text_embed_dim: int = 4096, face_embed_dim: int = 768, face_seq_length: int = 196,
                 max_text_seq_length: int = 226, resampler_dim: int = 1024, resampler_depth: int = 4,
                 resampler_heads: int = 12, resampler_dim_head: int = RESAMPLER_DIM_HEAD,
                 resampler_num_queries: int = 16, resampler_ff_mult: int = 4, arcface_dim: int = 512) -> None:
        super().__init__()
        self.face_proj = nn.Linear(face_embed_dim, text_embed_dim)
        self.text_proj = nn.Linear(face_seq_length + max_text_seq_length, max_text_seq_length)
        self.face_info_proj = nn.Linear(resampler_num_queries + face_seq_length, face_seq_length)
        self.face_prj_wofc = FaceResampler(dim=resampler_dim, depth=resampler_depth, dim_head=resampler_dim_head,
                                           heads=resampler_heads, num_queries=resampler_num_queries,
                                           embedding_dim=arcface_dim, output_dim=face_embed_dim, ff_mult=resampler_ff_mult)

    @property
    def text_tokens(self) -> int:
        return self.text_proj.out_features

    @property
    def text_width(self) -> int:
        return self.face_proj.out_features

    def fuse(self, text_embeds: torch.Tensor, siglip_embeds: torch.Tensor, arcface: torch.Tensor) -> torch.Tensor:
        return fuse_identity_tokens(self, text_embeds, siglip_embeds, arcface)


def iitf_config(state_dict: Mapping[str, torch.Tensor], config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """IITFLayers arguments from the IITF tensors' shapes (a saved config, when given, wins:
    it alone knows the resampler's head width)."""
    latents = state_dict["face_prj_wofc.latents"]  # (1, queries, dim)
    inner = state_dict["face_prj_wofc.layers.0.0.to_q.weight"].shape[0]  # heads * dim_head
    face_info = state_dict["face_info_proj.weight"]  # (196, 16 + 196)
    dim_head = int((config or {}).get("resampler_dim_head", RESAMPLER_DIM_HEAD if inner % RESAMPLER_DIM_HEAD == 0 else inner))
    depth = {int(k.split(".")[2]) for k in state_dict if k.startswith("face_prj_wofc.layers.")}
    return {
        "text_embed_dim": state_dict["face_proj.weight"].shape[0],
        "face_embed_dim": state_dict["face_proj.weight"].shape[1],
        "face_seq_length": face_info.shape[0],
        "max_text_seq_length": state_dict["text_proj.weight"].shape[0],
        "resampler_dim": latents.shape[-1],
        "resampler_depth": len(depth),
        "resampler_heads": inner // dim_head,
        "resampler_dim_head": dim_head,
        "resampler_num_queries": latents.shape[1],
        "resampler_ff_mult": state_dict["face_prj_wofc.layers.0.1.1.weight"].shape[0] // latents.shape[-1],
        "arcface_dim": state_dict["face_prj_wofc.proj_in.weight"].shape[1],
    }
