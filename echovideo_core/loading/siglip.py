"""The SigLIP vision tower and its image processor (the release's `clip_visual_encoder/`).

Also a Hugging Face SigLIP folder (e.g. in ComfyUI's `models/clip_vision/`): a full SigLIP
model's config and weights are reduced to the vision tower (`vision_config`,
`vision_model.*` keys), since only the tower is used.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import SiglipVisionConfig, SiglipVisionModel

try:  # transformers >= 5: the PIL backend by name (the default one needs torchvision)
    from transformers import SiglipImageProcessorPil as SiglipProcessor
except ImportError:  # transformers 4.x: the PIL-based processor is the default class
    from transformers import SiglipImageProcessor as SiglipProcessor

from echovideo_core.errors import require_files
from echovideo_core.loading.state_dict import (assign_strict, empty_model, read_folder_weights, read_json,
                                               strip_common_prefix)

SIGLIP_FOLDER = "clip_visual_encoder"


@dataclass(frozen=True)
class SiglipEncoder:
    """The SigLIP image processor and vision tower, loaded together."""

    processor: SiglipProcessor
    model: SiglipVisionModel


def load_siglip(path: str | Path, torch_dtype: torch.dtype = torch.float32) -> SiglipEncoder:
    """Processor + vision tower from `clip_visual_encoder/` (or a released root holding it)."""
    path = Path(path)
    folder = path / SIGLIP_FOLDER if (path / SIGLIP_FOLDER).is_dir() else path
    require_files(folder, ["config.json", "preprocessor_config.json"], what=f"SigLIP ({SIGLIP_FOLDER})")
    config = read_json(folder / "config.json")
    config = SiglipVisionConfig.from_dict(config.get("vision_config", config))
    state, _ = read_folder_weights(folder, what="SigLIP vision tower")
    if any(k.startswith("text_model.") for k in state):
        state = {k: v for k, v in state.items() if k.startswith("vision_model.")}
    model = empty_model(lambda: SiglipVisionModel(config))
    if not any(k.startswith("vision_model.") for k in model.state_dict()):
        # transformers 5 names the tower's tensors without the `vision_model.` the files carry
        state = strip_common_prefix(state, ("vision_model.",))
    assign_strict(model, state, what=f"{folder} does not fit a SigLIP vision tower", dtype=torch_dtype)
    processor = SiglipProcessor.from_pretrained(str(folder), local_files_only=True)
    return SiglipEncoder(processor=processor, model=model.eval().requires_grad_(False))
