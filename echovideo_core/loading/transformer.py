"""The EchoVideo DiT from a released `transformer/` folder, a single file or a `.pth`.

The model is built on the meta device (22 GB in float32 at full size would otherwise be
allocated twice) and the checkpoint's tensors are assigned in, cast one by one to the
requested dtype. Single files from other tools (ComfyUI's `model.diffusion_model.` prefix,
...) load too; without a config beside them the config is read from their metadata or
inferred from the tensor shapes.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import torch

from echovideo_core.errors import CheckpointMismatchError, MissingModelFilesError
from echovideo_core.loading.state_dict import (assign_strict, cast_floating, config_from_metadata,
                                               empty_model, read_folder_weights, read_json, read_state_dict,
                                               save_with_config, strip_common_prefix)
from echovideo_core.native_layout import to_release_layout
from echovideo_core.transformer import EchoVideoTransformer3DModel

logger = logging.getLogger(__name__)

WEIGHT_NAME = "diffusion_pytorch_model.safetensors"
INDEX_NAME = "diffusion_pytorch_model.safetensors.index.json"
# Prefixes that other tools put in front of the transformer's keys in single files.
FOREIGN_PREFIXES = ("model.diffusion_model.", "transformer.", "diffusion_model.")


def read_transformer_weights(path: str | Path, dtype: torch.dtype | None = None
                             ) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """State dict (and config, when the source has one) from a folder or a single file."""
    path = Path(path)
    if path.is_dir():
        folder = path / "transformer" if (path / "transformer").is_dir() and not (path / "config.json").exists() else path
        tensors, metadata = read_folder_weights(folder, dtype, what="EchoVideo transformer", usual=WEIGHT_NAME)
        config = read_json(folder / "config.json") if (folder / "config.json").exists() else None
        return tensors, config or config_from_metadata(metadata, folder)
    if not path.exists():
        raise MissingModelFilesError(
            f"No EchoVideo transformer at {path}. Put the released `transformer/` folder there "
            f"(config.json + {INDEX_NAME} + shards) or a single .safetensors file."
        )
    tensors, metadata = read_state_dict(path, dtype)
    # to_release_layout: a file written for ComfyUI core (echovideo export-native) reads too
    return to_release_layout(strip_common_prefix(tensors, FOREIGN_PREFIXES)), config_from_metadata(metadata, path)


def infer_config(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Rebuild the shape-bearing config arguments from the tensors of a single-file checkpoint."""
    try:
        proj = state_dict["patch_embed.proj.weight"]  # (inner, in_channels, p, p)
        head_dim = state_dict["transformer_blocks.0.attn1.norm_q.weight"].shape[0]
        resampler_inner = state_dict["face_prj_wofc.layers.0.0.to_q.weight"].shape[0]  # heads * dim_head
    except KeyError as err:
        raise CheckpointMismatchError(f"not an EchoVideo transformer checkpoint: no tensor {err.args[0]}") from err
    inner, in_channels, patch, _ = proj.shape
    layers = {int(k.split(".")[1]) for k in state_dict if k.startswith("transformer_blocks.")}
    resampler_layers = {int(k.split(".")[2]) for k in state_dict if k.startswith("face_prj_wofc.layers.")}
    # Head width is not visible in the shapes; the release's is 64 (our exports carry a config).
    resampler_dim_head = 64 if resampler_inner % 64 == 0 else resampler_inner
    latents = state_dict["face_prj_wofc.latents"]
    face_info = state_dict["face_info_proj.weight"]
    text_proj = state_dict["text_proj.weight"]
    return {
        "num_attention_heads": inner // head_dim,
        "attention_head_dim": head_dim,
        "in_channels": in_channels,
        "out_channels": state_dict["proj_out.weight"].shape[0] // (patch * patch),
        "patch_size": patch,
        "num_layers": len(layers),
        "text_embed_dim": state_dict["patch_embed.text_proj.weight"].shape[1],
        "time_embed_dim": state_dict["time_embedding.linear_1.weight"].shape[0],
        "face_embed_dim": state_dict["face_proj.weight"].shape[1],
        "face_seq_length": face_info.shape[0],
        "max_text_seq_length": text_proj.shape[0],
        "resampler_dim": latents.shape[-1],
        "resampler_num_queries": latents.shape[1],
        "resampler_depth": len(resampler_layers),
        "resampler_heads": resampler_inner // resampler_dim_head,
        "resampler_dim_head": resampler_dim_head,
        "resampler_ff_mult": state_dict["face_prj_wofc.layers.0.1.1.weight"].shape[0] // latents.shape[-1],
        "arcface_dim": state_dict["face_prj_wofc.proj_in.weight"].shape[1],
        "use_rotary_positional_embeddings": True,
    }


def build_on_meta(config: Mapping[str, Any]) -> EchoVideoTransformer3DModel:
    """The model with no storage allocated (any size, instantly)."""
    try:
        return empty_model(lambda: EchoVideoTransformer3DModel.from_config(dict(config)))
    except (TypeError, ValueError) as err:
        raise CheckpointMismatchError(f"the transformer config does not describe an EchoVideo model ({err})") from err


def load_transformer(
    path: str | Path,
    *,
    torch_dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    config: Mapping[str, Any] | None = None,
    extra_tensors: Mapping[str, torch.Tensor] | None = None,
) -> EchoVideoTransformer3DModel:
    """Load a transformer from a released `transformer/` folder or a single weight file.

    `config` overrides the folder's `config.json` (a single file without one gets its config
    inferred from tensor shapes). `extra_tensors` are merged in before the strict check
    (the tiny reference folder stores its resampler as a recipe). Any missing, unexpected or
    mis-shaped key raises `CheckpointMismatchError` naming the keys.
    """
    state_dict, found_config = read_transformer_weights(path, dtype=torch_dtype)
    if extra_tensors:
        state_dict.update({k: cast_floating(v, torch_dtype) for k, v in extra_tensors.items()})
    model = build_on_meta(dict(config or found_config or infer_config(state_dict)))
    assign_strict(model, state_dict, what=f"{path} does not fit EchoVideoTransformer3DModel")
    if torch.device(device).type != "cpu":
        model = model.to(device=device)
    model.eval()
    logger.info("loaded EchoVideo transformer from %s (%s, %d tensors)", path, torch_dtype, len(state_dict))
    return model


def save_single_file(model: EchoVideoTransformer3DModel, path: str | Path) -> Path:
    """Write the weights as one .safetensors file with the config in its metadata (atomic)."""
    return save_with_config(model, dict(model.config), path)
