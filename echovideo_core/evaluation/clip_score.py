"""CLIPScore: how well the frames follow the prompt, with a local transformers CLIP.

The folder is a transformers CLIP checkpoint (config.json, weights, tokenizer files and
the image processor config, e.g. a copy of openai/clip-vit-large-patch14), read offline.
Per frame: the cosine between CLIP's projected image and text embeddings (the number
transformers' `logits_per_image` divides by its logit scale). The score is the torchmetrics
convention, 100 x max(cosine, 0), averaged over the scored frames (faces or not); prompts
longer than the text tower's 77 tokens are truncated, as CLIP was trained.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typing import Any

import numpy as np
import torch

from echovideo_core.errors import require_files

CLIP_DIR = "clip"
BATCH = 16


@dataclass(frozen=True)
class ClipScorer:
    """CLIP's image processor, tokenizer and dual encoder (`transformers.CLIPModel`), loaded
    together. transformers is imported only when a CLIP is loaded: the other metrics and the
    ComfyUI node do without it."""

    processor: Any
    tokenizer: Any
    model: Any


def load_clip(folder: str | Path, device: torch.device | str = "cpu") -> ClipScorer:
    """Processor, tokenizer and model from a local folder (nothing is downloaded)."""
    from transformers import AutoTokenizer, CLIPModel

    try:  # transformers >= 5: the PIL backend by name (the default one needs torchvision)
        from transformers import CLIPImageProcessorPil as ClipImageProcessor
    except ImportError:  # transformers 4.x: the PIL-based processor is the default class
        from transformers import CLIPImageProcessor as ClipImageProcessor

    folder = Path(folder)
    require_files(folder, ["config.json"], what="CLIP for CLIPScore")
    processor = ClipImageProcessor.from_pretrained(str(folder), local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = CLIPModel.from_pretrained(str(folder), local_files_only=True)
    return ClipScorer(processor=processor, tokenizer=tokenizer, model=model.eval().requires_grad_(False).to(device))


def _projected(output: object) -> torch.Tensor:
    """transformers 5 returns a model output whose pooler_output is projected; 4.x a tensor."""
    return getattr(output, "pooler_output", output)


@torch.no_grad()
def clip_cosines(scorer: ClipScorer, frames: list[np.ndarray], prompt: str) -> np.ndarray:
    """(N,) float64 cosine between each RGB uint8 frame and the prompt."""
    model = scorer.model
    tokens = scorer.tokenizer([prompt], padding=True, truncation=True,
                              max_length=model.config.text_config.max_position_embeddings, return_tensors="pt")
    text = _projected(model.get_text_features(**{k: v.to(model.device) for k, v in tokens.items()}))
    text = text / text.norm(dim=-1, keepdim=True)
    cosines = []
    for start in range(0, len(frames), BATCH):
        pixels = scorer.processor(images=list(frames[start : start + BATCH]), return_tensors="pt").pixel_values
        image = _projected(model.get_image_features(pixel_values=pixels.to(model.device, model.dtype)))
        image = image / image.norm(dim=-1, keepdim=True)
        cosines.append((image.float() @ text.float().T)[:, 0].double().cpu())
    return torch.cat(cosines).numpy() if cosines else np.zeros(0)


def clip_score(cosines: np.ndarray) -> float | None:
    """100 x mean of max(cosine, 0) (torchmetrics' CLIPScore); None without frames."""
    values = np.asarray(cosines, np.float64)
    return float(100.0 * np.clip(values, 0.0, None).mean()) if values.size else None
