"""`EchoVideoTransformer3DModel`: the CogVideoX-5B DiT of diffusers plus the IITF layers.

The block stack, time embedding, patch embedding, final norms and unpatchify are
diffusers' `CogVideoXTransformer3DModel`, inherited unchanged. This class adds the four
IITF layers under the checkpoint's names and a `fuse` step that turns (T5, SigLIP, ArcFace)
into the 226 tokens the stack reads in place of T5.
"""
from __future__ import annotations

from typing import Any

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.transformers.cogvideox_transformer_3d import CogVideoXTransformer3DModel
from torch import nn

from echovideo_core.iitf import ARCFACE_ROWS, fuse_identity_tokens
from echovideo_core.resampler import FaceResampler

__all__ = ["ARCFACE_ROWS", "EchoVideoTransformer3DModel"]


class EchoVideoTransformer3DModel(CogVideoXTransformer3DModel):
    """EchoVideo's DiT. The `__init__` signature is the config schema (diffusers).

    Arguments up to `use_rotary_positional_embeddings` are the release's, with its defaults
    (the released `transformer/config.json` loads unchanged). Notes on the odd ones:

    - in_channels: 16 noisy + 16 face-latent channels; the release's default (16) is kept for
      compatibility, its checkpoint config says 32.
    - face_embed_dim: width of the SigLIP tokens and of the resampler output (768).
    - face_features_embed_dim, face_features_seq_length: registered by the release but
      without effect there (the resampler input is fixed at 512 wide, 16 queries). Accepted
      and ignored.
    - face_seq_length: SigLIP token count (196); max_text_seq_length: T5 tokens (226).
    - use_learned_positional_embeddings: always False for EchoVideo (rotary only).

    Added by this project, defaulting to the release's hard-coded resampler, so tiny test
    models can shrink it: resampler_dim, resampler_depth, resampler_heads,
    resampler_dim_head, resampler_num_queries, resampler_ff_mult, arcface_dim.

    Passed through to diffusers' parent (CogVideoX 1.5 options), named here so a saved
    config reloads without "unexpected key" warnings; EchoVideo keeps their defaults:
    patch_size_t, patch_bias, ofs_embed_dim.
    """

    @register_to_config
    def __init__(
        self,
        num_attention_heads: int = 48,
        attention_head_dim: int = 64,
        in_channels: int = 16,
        out_channels: int = 16,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        time_embed_dim: int = 512,
        text_embed_dim: int = 4096,
        face_embed_dim: int = 768,
        face_features_embed_dim: int = 512,
        num_layers: int = 42,
        dropout: float = 0.0,
        attention_bias: bool = True,
        sample_width: int = 90,
        sample_height: int = 60,
        sample_frames: int = 49,
        patch_size: int = 2,
        temporal_compression_ratio: int = 4,
        max_text_seq_length: int = 226,
        face_seq_length: int = 196,
        face_features_seq_length: int = 144,
        activation_fn: str = "gelu-approximate",
        timestep_activation_fn: str = "silu",
        norm_elementwise_affine: bool = True,
        norm_eps: float = 1e-5,
        spatial_interpolation_scale: float = 1.875,
        temporal_interpolation_scale: float = 1.0,
        use_rotary_positional_embeddings: bool = True,
        use_learned_positional_embeddings: bool = False,
        resampler_dim: int = 1024,
        resampler_depth: int = 4,
        resampler_heads: int = 12,
        resampler_dim_head: int = 64,
        resampler_num_queries: int = 16,
        resampler_ff_mult: int = 4,
        arcface_dim: int = 512,
        patch_size_t: int | None = None,
        patch_bias: bool = True,
        ofs_embed_dim: int | None = None,
    ) -> None:
        super().__init__(
            num_attention_heads=num_attention_heads,
            attention_head_dim=attention_head_dim,
            in_channels=in_channels,
            out_channels=out_channels,
            flip_sin_to_cos=flip_sin_to_cos,
            freq_shift=freq_shift,
            time_embed_dim=time_embed_dim,
            text_embed_dim=text_embed_dim,
            num_layers=num_layers,
            dropout=dropout,
            attention_bias=attention_bias,
            sample_width=sample_width,
            sample_height=sample_height,
            sample_frames=sample_frames,
            patch_size=patch_size,
            temporal_compression_ratio=temporal_compression_ratio,
            max_text_seq_length=max_text_seq_length,
            activation_fn=activation_fn,
            timestep_activation_fn=timestep_activation_fn,
            norm_elementwise_affine=norm_elementwise_affine,
            norm_eps=norm_eps,
            spatial_interpolation_scale=spatial_interpolation_scale,
            temporal_interpolation_scale=temporal_interpolation_scale,
            use_rotary_positional_embeddings=use_rotary_positional_embeddings,
            use_learned_positional_embeddings=use_learned_positional_embeddings,
            patch_size_t=patch_size_t,
            patch_bias=patch_bias,
            ofs_embed_dim=ofs_embed_dim,
        )
        # Registration order is the checkpoint's key order.
        self.face_proj = nn.Linear(face_embed_dim, text_embed_dim)
        self.text_proj = nn.Linear(face_seq_length + max_text_seq_length, max_text_seq_length)
        self.face_info_proj = nn.Linear(resampler_num_queries + face_seq_length, face_seq_length)
        self.face_prj_wofc = FaceResampler(
            dim=resampler_dim,
            depth=resampler_depth,
            dim_head=resampler_dim_head,
            heads=resampler_heads,
            num_queries=resampler_num_queries,
            embedding_dim=arcface_dim,
            output_dim=face_embed_dim,
            ff_mult=resampler_ff_mult,
        )

    _execution_device: torch.device | None = None

    @property
    def device(self) -> torch.device:
        """Where the math runs: under sequential offload the weights wait on the offload
        device and this is the device they are brought to, layer by layer."""
        return self._execution_device or super().device

    def enable_sequential_offload(self, execution_device: torch.device | str, offload_device: torch.device | str = "cpu") -> None:
        """Keep every weight on `offload_device` and move each layer to `execution_device`
        only for its own forward (diffusers' leaf-level group offloading): the DiT then needs
        about one layer of GPU memory, at the cost of a transfer per layer per step.
        Callers put inputs on `self.device`, as they would without offloading."""
        self.to(offload_device)
        self.enable_group_offload(onload_device=torch.device(execution_device),
                                  offload_device=torch.device(offload_device), offload_type="leaf_level")
        self._execution_device = torch.device(execution_device)

    def fuse(
        self, text_embeds: torch.Tensor, siglip_embeds: torch.Tensor, arcface: torch.Tensor
    ) -> torch.Tensor:
        """IITF: (B,226,Dt) T5, (B,196,768) SigLIP, (B,512) raw ArcFace -> (B,226,Dt) tokens.

        Independent of the timestep and the latents: call it once per run and CFG branch and
        pass the result as `conditioning` to every step. Inputs are cast to the weights'
        dtype only (no other rounding; the pipeline's as-released mode does that).
        """
        return fuse_identity_tokens(self, text_embeds, siglip_embeds, arcface)

    def forward(  # type: ignore[override]
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor | int,
        conditioning: torch.Tensor | None = None,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        *,
        text_embeds: torch.Tensor | None = None,
        siglip_embeds: torch.Tensor | None = None,
        arcface: torch.Tensor | None = None,
        attention_kwargs: dict[str, Any] | None = None,
        return_dict: bool = True,
    ) -> Transformer2DModelOutput | tuple[torch.Tensor]:
        """Predict v for (B, F', 2C, H/8, W/8) latents [noisy ; face latent] -> (B, F', C, H/8, W/8).

        `conditioning` is the output of `fuse`; when it is omitted the raw inputs
        (`text_embeds`, `siglip_embeds`, `arcface`) are fused here (convenient for training,
        wasteful in a sampling loop). `image_rotary_emb` comes from `rotary_embeddings`.
        """
        if conditioning is None:
            if text_embeds is None or siglip_embeds is None or arcface is None:
                raise ValueError("pass `conditioning` (from fuse) or all of text_embeds, siglip_embeds, arcface")
            conditioning = self.fuse(text_embeds, siglip_embeds, arcface)
        return super().forward(
            hidden_states=hidden_states,
            encoder_hidden_states=conditioning,
            timestep=timestep,
            image_rotary_emb=image_rotary_emb,
            attention_kwargs=attention_kwargs,
            return_dict=return_dict,
        )
