"""The CogVideoX VAE, from a released folder (`vae/`) or a single file: the one VAE loader.

ComfyUI users already keep a CogVideoX VAE file in `models/vae/`; EchoVideo uses the same
VAE as CogVideoX-5B, so that file loads directly. A file's architecture is read from its
tensor shapes (channels per level, blocks per level, latent channels); what shapes cannot
tell comes from the release's fixed values or from our exports' metadata (the tiny test
models keep their toy settings there).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import torch
from diffusers import AutoencoderKLCogVideoX

from echovideo_core.errors import CheckpointMismatchError, require_files
from echovideo_core.loading.state_dict import (assign_strict, config_from_metadata, empty_model, read_folder_weights,
                                               read_json, read_state_dict, strip_common_prefix)

logger = logging.getLogger(__name__)

VAE_PREFIXES = ("first_stage_model.", "vae.")
# CogVideoX VAE settings that the shapes do not show; EchoVideo (like CogVideoX-5B) scales
# latents by 0.7 (CogVideoX-2B files carry the same weights but were used with 1.1526).
VAE_FIXED: dict[str, Any] = dict(norm_num_groups=32, temporal_compression_ratio=4, scaling_factor=0.7)


def vae_config_from_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """CogVideoX VAE constructor arguments from the tensor shapes (+ VAE_FIXED)."""
    try:
        latent_twice = state["encoder.conv_out.conv.weight"].shape[0]
    except KeyError as err:
        raise CheckpointMismatchError("not a CogVideoX VAE checkpoint: no tensor encoder.conv_out.conv.weight") from err
    levels = sorted({int(k.split(".")[2]) for k in state if k.startswith("encoder.down_blocks.")})
    channels = [state[f"encoder.down_blocks.{i}.resnets.0.conv2.conv.weight"].shape[0] for i in levels]
    resnets = {int(k.split(".")[4]) for k in state if k.startswith("encoder.down_blocks.0.resnets.")}
    return dict(
        block_out_channels=tuple(channels), latent_channels=latent_twice // 2, layers_per_block=len(resnets),
        use_quant_conv="quant_conv.weight" in state, use_post_quant_conv="post_quant_conv.weight" in state,
        down_block_types=("CogVideoXDownBlock3D",) * len(channels), up_block_types=("CogVideoXUpBlock3D",) * len(channels),
        **VAE_FIXED,
    )


def load_vae(path: str | Path, torch_dtype: torch.dtype = torch.float32) -> AutoencoderKLCogVideoX:
    """CogVideoX VAE from a diffusers folder (`vae/`, or a released root holding one) or a file."""
    path = Path(path)
    if path.is_dir():
        folder = path / "vae" if (path / "vae" / "config.json").is_file() else path
        require_files(folder, ["config.json"], what="CogVideoX VAE")
        state, _ = read_folder_weights(folder, what="CogVideoX VAE", usual="diffusion_pytorch_model.safetensors")
        config = read_json(folder / "config.json")
        source = folder
    else:
        state, metadata = read_state_dict(path)
        state = strip_common_prefix(state, VAE_PREFIXES)
        config = config_from_metadata(metadata, path) or vae_config_from_state_dict(state)
        source = path
    try:
        vae = empty_model(lambda: AutoencoderKLCogVideoX.from_config(config))
    except (TypeError, ValueError) as err:
        raise CheckpointMismatchError(f"{source}: not a CogVideoX VAE config ({err})") from err
    assign_strict(vae, state, what=f"{source} does not fit AutoencoderKLCogVideoX", dtype=torch_dtype)
    logger.info("loaded CogVideoX VAE from %s (%s)", source, torch_dtype)
    return vae.eval().requires_grad_(False)
