"""Only the identity-fusion layers of a transformer file (the native ComfyUI path).

ComfyUI's core CogVideoX model loads the DiT blocks of an EchoVideo file and drops the four
IITF layers; `read_iitf_layers` reads only their tensors (tens of MB at full size) from the
same file, so the DiT is never loaded a second time.
"""
from __future__ import annotations

from pathlib import Path

import torch

from echovideo_core.errors import CheckpointMismatchError
from echovideo_core.iitf import IITFLayers, iitf_config
from echovideo_core.loading.state_dict import (assign_strict, cast_floating, config_from_metadata, empty_model,
                                               open_tensors, read_metadata)
from echovideo_core.loading.transformer import FOREIGN_PREFIXES
from echovideo_core.native_layout import IITF_PREFIXES


class MissingIITFError(CheckpointMismatchError):
    """The file has no identity-fusion layers (not an EchoVideo transformer file)."""


def read_iitf_layers(path: str | Path, dtype: torch.dtype = torch.float32) -> IITFLayers:
    """Only the IITF tensors of a .safetensors transformer file (either key layout, with or
    without a checkpoint prefix such as `model.diffusion_model.`) -> IITFLayers in `dtype`."""
    path = Path(path)
    tensors = {}
    with open_tensors(path) as f:
        for key in f.keys():
            name = next((key[len(p):] for p in FOREIGN_PREFIXES if key.startswith(p)), key)
            if name.startswith(IITF_PREFIXES):
                tensors[name] = cast_floating(f.get(key), dtype)
    if "face_prj_wofc.latents" not in tensors or "text_proj.weight" not in tensors:
        raise MissingIITFError(
            f"{path} has no EchoVideo identity layers (face_proj, text_proj, face_info_proj, face_prj_wofc): "
            "load the EchoVideo transformer file, not a plain CogVideoX one")
    layers = empty_model(lambda: IITFLayers(**iitf_config(tensors, config_from_metadata(read_metadata(path), path))))
    assign_strict(layers, tensors, what=f"{path}: the identity layers do not fit")
    return layers.eval().requires_grad_(False)
